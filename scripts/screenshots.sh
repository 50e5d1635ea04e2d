#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/screenshots/) from a demo database, offscreen.
#   ./scripts/screenshots.sh sqlite:////tmp/demo.db [OUT_DIR]
# The database: `ecms demo --certificates 2000 --seed 7 --as-of 2026-11-22`, `ecms validate --all --as-of
# 2026-11-22`, a few invoice lines imported and decided (`ecms transactions import`, `ecms determine`),
# a few renewal requests sent through a local mail server and a few files taken in (`ecms intake`), so
# that the exposure report, the outbox and the inbox show something. Pictures are quantised to 256
# colours (Pillow) to keep the repository small.
set -euo pipefail
cd "$(dirname "$0")/.."
db="$1"; out="${2:-docs/screenshots}"
sst="${ECMS_SHOT_SST:-64}"       # a multi-state SST certificate of the first company
pending="${ECMS_SHOT_PENDING:-7}"  # a pending certificate with a document
shot() {  # FILE ARGS...
  local file="$1"; shift
  QT_QPA_PLATFORM=offscreen .venv/bin/ecms-desktop --db "$db" --as-of 2026-11-22 --size 1440x900 \
    --screenshot "$out/$file" "$@"
  .venv/bin/python -c 'import sys; from PIL import Image; p = sys.argv[1]; Image.open(p).convert("RGB").quantize(256).save(p, optimize=True)' "$out/$file"
  echo "$out/$file"
}
mkdir -p "$out"
shot main-window.png --select "$pending"
shot review-queue.png --view review
shot worklist.png --view worklist --select "$pending"
shot findings.png --view findings --select "$sst"
shot form-sst.png --view findings --select "$sst" --size 1440x1500  # the whole form, taller
shot renewal-center.png --view renewals
shot outbox.png --view outbox
shot exposure.png --view exposure
shot audit-pack-dialog.png --view audit-pack
shot settings.png --view settings
shot shortcuts.png --view shortcuts
shot customers.png --view customers
shot customer.png --view customer --select "${ECMS_SHOT_CUSTOMER:-1384}"  # a customer with expired, missing and requested states
shot inbox.png --view inbox
shot about.png --view about
