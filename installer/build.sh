#!/usr/bin/env bash
# Build the desktop bundle with PyInstaller into dist/ecms-desktop/ and pack it as a .tar.gz
# (Linux) — on Windows run the same spec, then installer/windows/ecms-desktop.iss with Inno Setup.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/python -m pip install --quiet ".[packaging]"
.venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller installer/ecms-desktop.spec
# THIRD-PARTY-NOTICES.md, licenses/, SOURCE-OFFER.md and the source archive, from what the bundle holds (stops on
# a file whose licence it cannot name).
.venv/bin/python installer/notices.py dist/ecms-desktop
install -m 0644 installer/linux/ecms-desktop.desktop dist/ecms-desktop/
version=$(.venv/bin/python -c 'import ecms_desktop; print(ecms_desktop.__version__)')
tar -C dist -czf "dist/ecms-desktop-${version}-linux-$(uname -m).tar.gz" ecms-desktop
echo "Built dist/ecms-desktop-${version}-linux-$(uname -m).tar.gz"
# A quick check that the bundle runs without the source tree:
dist/ecms-desktop/ecms --version
