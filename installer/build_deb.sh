#!/usr/bin/env bash
# Pack the PyInstaller bundle (dist/ecms-desktop/) as a Debian package with dpkg-deb:
#   /opt/ecms-desktop/                          the bundle
#   /usr/bin/ecms, /usr/bin/ecms-desktop        links to its two executables
#   /usr/share/applications/ecms-desktop.desktop, /usr/share/icons/hicolor/*/apps/ecms-desktop.{png,svg}
#   /usr/share/doc/ecms-desktop/copyright       the licences (and where the third-party notices are)
# Depends names the package of every library the bundle needs from the system (found by reading the
# bundle's ELF files: a library missing from the table below stops the build), libc6 at least the
# newest glibc version any file needs, and Recommends tesseract-ocr (OCR of scans).
# Usage: installer/build_deb.sh BUNDLE_DIR OUT_DIR     (called by installer/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:?usage: build_deb.sh BUNDLE_DIR OUT_DIR}
out=${2:?usage: build_deb.sh BUNDLE_DIR OUT_DIR}
python=${PYTHON:-.venv/bin/python}

# soname -> package (the name on Debian 12 / Ubuntu 22.04, with the 64-bit time_t name of Debian 13 /
# Ubuntu 24.04 first where the package was renamed)
declare -A PACKAGE_OF=(
  [libc.so.6]=libc6 [libm.so.6]=libc6 [libdl.so.2]=libc6 [libpthread.so.0]=libc6 [librt.so.1]=libc6
  [libutil.so.1]=libc6 [libresolv.so.2]=libc6 [ld-linux-x86-64.so.2]=libc6 [ld-linux-aarch64.so.1]=libc6
  [libstdc++.so.6]=libstdc++6 [libgcc_s.so.1]=libgcc-s1 [libz.so.1]=zlib1g [libexpat.so.1]=libexpat1
  [libglib-2.0.so.0]="libglib2.0-0t64 | libglib2.0-0" [libgthread-2.0.so.0]="libglib2.0-0t64 | libglib2.0-0"
  [libgobject-2.0.so.0]="libglib2.0-0t64 | libglib2.0-0" [libgio-2.0.so.0]="libglib2.0-0t64 | libglib2.0-0"
  [libgmodule-2.0.so.0]="libglib2.0-0t64 | libglib2.0-0" [libdbus-1.so.3]=libdbus-1-3
  [libfontconfig.so.1]=libfontconfig1 [libfreetype.so.6]=libfreetype6 [libpng16.so.16]="libpng16-16t64 | libpng16-16"
  [libEGL.so.1]=libegl1 [libGL.so.1]=libgl1 [libOpenGL.so.0]=libopengl0
  [libX11.so.6]=libx11-6 [libX11-xcb.so.1]=libx11-xcb1 [libXau.so.6]=libxau6 [libXdmcp.so.6]=libxdmcp6
  [libXext.so.6]=libxext6 [libXrender.so.1]=libxrender1
  [libxcb.so.1]=libxcb1 [libxcb-cursor.so.0]=libxcb-cursor0 [libxcb-icccm.so.4]=libxcb-icccm4
  [libxcb-image.so.0]=libxcb-image0 [libxcb-keysyms.so.1]=libxcb-keysyms1 [libxcb-randr.so.0]=libxcb-randr0
  [libxcb-render.so.0]=libxcb-render0 [libxcb-render-util.so.0]=libxcb-render-util0 [libxcb-shape.so.0]=libxcb-shape0
  [libxcb-shm.so.0]=libxcb-shm0 [libxcb-sync.so.1]=libxcb-sync1 [libxcb-xfixes.so.0]=libxcb-xfixes0
  [libxcb-xkb.so.1]=libxcb-xkb1 [libxcb-util.so.1]=libxcb-util1 [libxcb-glx.so.0]=libxcb-glx0
  [libxkbcommon.so.0]=libxkbcommon0 [libxkbcommon-x11.so.0]=libxkbcommon-x11-0
  [libwayland-client.so.0]=libwayland-client0 [libwayland-cursor.so.0]=libwayland-cursor0
  [libwayland-egl.so.1]=libwayland-egl1 [libdrm.so.2]=libdrm2
)

version=$("$python" -c 'import ecms_desktop; print(ecms_desktop.__version__)')
arch=$(dpkg --print-architecture)
glibc=$("$python" installer/elfinfo.py glibc "$bundle" | cut -d' ' -f1)
depends=("libc6 (>= $glibc)")
declare -A named=([libc6]=1)
missing=()
while IFS=$'\t' read -r soname needed_by; do
  package=${PACKAGE_OF[$soname]:-}
  if [ -z "$package" ]; then
    missing+=("$soname (needed by $needed_by)")
  elif [ -z "${named[$package]:-}" ]; then
    named[$package]=1
    depends+=("$package")
  fi
done < <("$python" installer/elfinfo.py system "$bundle")
if [ ${#missing[@]} -gt 0 ]; then
  echo "build_deb: the bundle needs libraries from the system that Depends would not name:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "Add each to PACKAGE_OF in installer/build_deb.sh (dpkg -S <soname> tells its package)." >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/opt" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/doc/ecms-desktop" \
  "$root/DEBIAN"
cp -a "$bundle" "$root/opt/ecms-desktop"
ln -s /opt/ecms-desktop/ecms "$root/usr/bin/ecms"
ln -s /opt/ecms-desktop/ecms-desktop "$root/usr/bin/ecms-desktop"
install -m 0644 installer/linux/ecms-desktop.desktop "$root/usr/share/applications/ecms-desktop.desktop"
for size in 16 32 48 64 128 256 512; do
  install -D -m 0644 "resources/icons/ecms-desktop-$size.png" \
    "$root/usr/share/icons/hicolor/${size}x${size}/apps/ecms-desktop.png"
done
install -D -m 0644 resources/icons/ecms-desktop.svg "$root/usr/share/icons/hicolor/scalable/apps/ecms-desktop.svg"

year=$(date -u +%Y)
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: ECMS Desktop"
  echo "Comment: The program bundles Python, Qt 6 (PySide6, LGPL-3.0), MuPDF (PyMuPDF, AGPL-3.0) and other"
  echo " libraries, each under its own licence: /opt/ecms-desktop/_internal/licenses/THIRD-PARTY-NOTICES.md"
  echo " and the licence files beside it and in each package's *.dist-info folder list them."
  echo " The complete corresponding source is offered as described in THIRD-PARTY-NOTICES.md."
  echo
  echo "Files: *"
  echo "Copyright: $year The ECMS Desktop authors"
  echo "License: AGPL-3.0-or-later"
  sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' LICENSE
} > "$root/usr/share/doc/ecms-desktop/copyright"
chmod 0644 "$root/usr/share/doc/ecms-desktop/copyright"
gzip -9n < CHANGELOG.md > "$root/usr/share/doc/ecms-desktop/changelog.gz"
chmod 0644 "$root/usr/share/doc/ecms-desktop/changelog.gz"

installed_kb=$(du -sk "$root" --exclude=DEBIAN | cut -f1)
joined=$(printf '%s, ' "${depends[@]}")
cat > "$root/DEBIAN/control" <<EOF
Package: ecms-desktop
Version: $version
Architecture: $arch
Maintainer: ECMS Desktop maintainers <maintainers@ecms-desktop.invalid>
Installed-Size: $installed_kb
Depends: ${joined%, }
Recommends: tesseract-ocr
Section: misc
Priority: optional
Description: sales-tax exemption certificates, audit-ready
 ECMS Desktop collects, reads, validates and renews sales-tax exemption
 certificates and keeps an audit trail a state auditor can verify. The desk
 (ecms-desktop) and the command line (ecms) share one database, SQLite or
 PostgreSQL. Tesseract OCR, when installed, reads scanned certificates.
EOF

mkdir -p "$out"
deb="$out/ecms-desktop_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "Built $deb (needs glibc $glibc or newer)"
