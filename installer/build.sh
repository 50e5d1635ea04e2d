#!/usr/bin/env bash
# Build the desktop bundle with PyInstaller into dist/ecms-desktop/ and pack it as a Debian package,
# dist/ecms-desktop_<version>_<arch>.deb (see installer/README.md). On Windows run the same spec, then
# installer/windows/ecms-desktop.iss with Inno Setup.
#
#   installer/build.sh [--tarball]    --tarball: also dist/ecms-desktop-<version>-linux-<arch>.tar.gz
#   installer/build.sh --tools        only install the packaging tools (the `packaging` extra: PyInstaller)
#
# The bundle is built again only when its inputs changed (the sources, resources, docs, the installer
# files, pyproject.toml and the packages installed in the virtual environment): dist/ecms-desktop.inputs
# keeps the checksum of the inputs dist/ecms-desktop/ was built from. ECMS_VENV=DIR uses that virtual
# environment as it
# is (no ./scripts/bootstrap.sh); ECMS_REBUILD=1 builds again whatever the checksum says.
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=no
tools_only=no
for arg in "$@"; do
  case "$arg" in
    --tarball) tarball=yes ;;
    --tools) tools_only=yes ;;
    *) echo "build.sh: unknown option $arg (known: --tarball, --tools)" >&2; exit 2 ;;
  esac
done
venv=${ECMS_VENV:-.venv}
if [ -z "${ECMS_VENV:-}" ]; then
  ./scripts/bootstrap.sh
fi
python="$venv/bin/python"
# The packaging extra (PyInstaller) without installing the project over its editable install.
"$python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]
               ["optional-dependencies"]["packaging"]))' | xargs "$python" -m pip install --quiet 2>&1 |
  { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
"$venv/bin/pyinstaller" --version >/dev/null
if [ "$tools_only" = yes ]; then
  exit 0
fi

bundle=dist/ecms-desktop
stamp=dist/ecms-desktop.inputs
inputs=$( {
  "$python" --version
  "$python" -m pip freeze --exclude-editable 2>/dev/null
  find ecms_desktop resources docs installer pyproject.toml LICENSE THIRD-PARTY-NOTICES.md -type f \
    -not -path '*/__pycache__/*' \
    -not -path installer/smoke_test.py -not -path installer/build_deb.sh -not -path 'installer/*.md' -print0 |
    sort -z | xargs -0 sha256sum
} | sha256sum | cut -d' ' -f1)
if [ "${ECMS_REBUILD:-0}" != 1 ] && [ -d "$bundle" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]
then
  echo "== $bundle is up to date (built from the same inputs)"
else
  echo "== Building $bundle with PyInstaller"
  rm -rf "$bundle" "$stamp"
  "$venv/bin/pyinstaller" --noconfirm --clean --log-level ERROR --distpath dist --workpath build/pyinstaller \
    installer/ecms-desktop.spec
  install -m 0644 installer/linux/ecms-desktop.desktop "$bundle/"
  install -m 0644 resources/icons/ecms-desktop.svg resources/icons/ecms-desktop-256.png "$bundle/"

  # THIRD-PARTY-NOTICES.md, licenses/, SOURCE-OFFER.md and the source archive, from what the bundle holds,
  # while it is complete and before it is packed (stops on a file whose licence it cannot name).
  "$python" installer/notices.py "$bundle"

  echo "$inputs" > "$stamp"
fi

# The .deb is packed again when the bundle or the packing changed (xz takes a while).
deb_inputs=$(cat "$stamp" installer/build_deb.sh CHANGELOG.md | sha256sum | cut -d' ' -f1)
deb_stamp=dist/ecms-desktop.deb-inputs
version=$("$python" -c 'import ecms_desktop; print(ecms_desktop.__version__)')
deb="dist/ecms-desktop_${version}_$(dpkg --print-architecture).deb"
if [ "${ECMS_REBUILD:-0}" != 1 ] && [ -f "$deb" ] && [ -f "$deb_stamp" ] && [ "$(cat "$deb_stamp")" = "$deb_inputs" ]
then
  echo "== $deb is up to date (packed from the same bundle)"
else
  rm -f "$deb" "$deb_stamp"
  PYTHON="$python" installer/build_deb.sh "$bundle" dist
  echo "$deb_inputs" > "$deb_stamp"
fi
if [ "$tarball" = yes ]; then
  tar -C dist -czf "dist/ecms-desktop-${version}-linux-$(uname -m).tar.gz" ecms-desktop
  echo "Built dist/ecms-desktop-${version}-linux-$(uname -m).tar.gz"
fi
