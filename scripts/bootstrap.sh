#!/usr/bin/env bash
# Set up (or update) the project's virtual environment in .venv: Python packages from PyPI, and the
# few system libraries Qt needs on a bare Debian/Ubuntu machine. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "ECMS Desktop needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "== Creating the virtual environment in .venv"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.ecms-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== Installing ECMS Desktop and its test tools into .venv (pip's output: .venv/pip-install.log)"
  # pip's own output goes to a log, shown when it fails: what it says on success is setuptools' one notice about
  # editable installs and, on some machines, the warnings of a pip configuration that names missing folders.
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip "setuptools>=77" wheel &&
         .venv/bin/python -m pip install --quiet -e ".[test]"; } >.venv/pip-install.log 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" .venv/pip-install.log | tail -40 >&2
    echo "Installing into .venv failed; pip's whole output is in .venv/pip-install.log." >&2
    exit 1
  fi
  touch "$stamp"
fi

# Qt's offscreen and xcb platforms need a few shared libraries that minimal images lack: the tests need
# offscreen, a desktop (DISPLAY set) needs xcb as well (libxcb-cursor0 is missing from many installs).
qt_starts() {
  ( QT_QPA_PLATFORM="$1" .venv/bin/python -c 'from PySide6.QtWidgets import QApplication; QApplication([])' \
    >/dev/null 2>&1 ) 2>/dev/null
}
if ! qt_starts offscreen || { [ -n "${DISPLAY:-}" ] && ! qt_starts xcb; }; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "== Installing the system libraries Qt needs (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 \
      libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 fonts-dejavu-core >/dev/null
  else
    echo "Qt cannot start: install libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3" \
      "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 (as root: apt-get)." >&2
    exit 1
  fi
fi

# Tesseract reads scanned and photographed certificates (the Debian package tesseract-ocr, ~22 MB, English and
# orientation detection included). The program works without it and says that OCR is unavailable, so a
# machine where it cannot be installed here is told what to install and set-up carries on.
if ! command -v tesseract >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "== Installing Tesseract OCR (apt-get install tesseract-ocr)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        tesseract-ocr >/dev/null; }; then
      echo "Tesseract could not be installed; scans will not be read (OCR is unavailable)." >&2
    fi
  fi
  if ! command -v tesseract >/dev/null 2>&1; then
    echo "Tesseract OCR is not installed, so scanned certificates will not be read. Install it to read them:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install tesseract-ocr   Fedora: sudo dnf install tesseract" >&2
    echo "  macOS: brew install tesseract   Windows: https://github.com/UB-Mannheim/tesseract/wiki" >&2
  fi
fi
