"""Leave out of the Linux bundle what ECMS Desktop never loads (called by installer/ecms-desktop.spec).

1. Qt plugins for platforms and devices a desktop does not use (eglfs, linuxfb, vnc, evdev input, network
   information, TLS backends, the GTK 3 theme that pulls in GTK's own libraries, SVG and WebP images) and
   Qt's translations (the app is in English and loads no QTranslator).
2. The system libraries every Linux desktop has and the .deb names in its Depends (glibc's companions
   libstdc++ and libgcc, zlib, GLib, D-Bus, fontconfig, FreeType, X11/xcb, xkbcommon): a copy from the
   build machine would shadow the system's own and raise the glibc the bundle needs.
3. Then every shared library that nothing left in the bundle names in its DT_NEEDED entries (read with
   installer/elfinfo.py): the libraries only the removed plugins and libraries needed.
The executables' libpython is always kept (the bootloader opens it by name).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from elfinfo import is_elf, needed

QT = "PySide6/Qt/"
#: Qt plugins kept: the X11 (xcb) and Wayland platforms and their GL integration, offscreen (screenshot
#: mode, tests), the XDG desktop portal theme (file dialogs under Flatpak/GNOME), input methods and the
#: image formats a scanned certificate may come in.
KEPT_PLUGINS = re.compile(r"plugins/(platforms/lib(qxcb|qwayland[-\w]*|qoffscreen)\.so"
                          r"|platformthemes/libqxdgdesktopportal\.so"
                          r"|platforminputcontexts/.*"
                          r"|xcbglintegrations/.*"
                          r"|wayland-[-\w]+/.*"
                          r"|imageformats/libq(jpeg|tiff|gif|ico)\.so)$")

#: System libraries the .deb depends on instead of carrying them (see installer/build_deb.sh, Depends).
SYSTEM_LIBRARIES = re.compile(
    r"lib(stdc\+\+\.so\.6|gcc_s\.so\.1|z\.so\.1|expat\.so\.1"
    r"|(glib|gthread|gobject|gio|gmodule)-2\.0\.so\.0|dbus-1\.so\.3|systemd\.so\.0"
    r"|fontconfig\.so\.1|freetype\.so\.6|png16\.so\.16"
    r"|X11\.so\.6|X11-xcb\.so\.1|Xau\.so\.6|Xdmcp\.so\.6|Xext\.so\.6|Xrender\.so\.1"
    r"|xcb(-[a-z-]+)?\.so\.\d+|xkbcommon(-x11)?\.so\.0)$")

Entry = tuple[str, str, str]


def _left_out_by_rule(dest: str) -> bool:
    path = PurePosixPath(dest)
    if dest.startswith(QT + "translations/"):
        return True
    if dest.startswith(QT + "plugins/"):
        return not KEPT_PLUGINS.search(dest)
    return len(path.parts) == 1 and bool(SYSTEM_LIBRARIES.match(path.name))


def _is_library(dest: str) -> bool:
    """A shared library loaded because something names it (not a plugin, not a Python extension module)."""
    name = PurePosixPath(dest).name
    return name.startswith("lib") and ".so" in name and "/plugins/" not in dest and not name.startswith("libpython")


def slim_linux_bundle(*analyses: Any) -> None:
    """Remove the entries described above from the analyses' binaries and datas, in place."""
    entries: list[Entry] = [e for a in analyses for e in (*a.binaries, *a.datas)]
    kept = [e for e in entries if not _left_out_by_rule(e[0])]
    libraries = {PurePosixPath(dest).name for dest, _src, _kind in kept if _is_library(dest)}
    by_name: dict[str, str] = {}  # a library's name: its file, to read what it needs
    link_to: dict[str, str] = {}  # a symbolic link's name: its target's name
    for dest, src, kind in kept:
        if not _is_library(dest):
            continue
        if kind == "SYMLINK":
            link_to[PurePosixPath(dest).name] = PurePosixPath(src).name
        elif is_elf(Path(src)):
            by_name.setdefault(PurePosixPath(dest).name, src)
    # what the roots (extension modules, plugins, libpython) need, and what that needs in turn
    reached: set[str] = set()
    todo = [src for dest, src, kind in kept if kind in ("BINARY", "EXTENSION") and not _is_library(dest)
            and is_elf(Path(src))]
    seen: set[str] = set()
    while todo:
        src = todo.pop()
        if src in seen:
            continue
        seen.add(src)
        for name in needed(Path(src)):
            while name in libraries and name not in reached:
                reached.add(name)
                if name in by_name:
                    todo.append(by_name[name])
                name = link_to.get(name, "")
    unused = libraries - reached
    # a library's other names (symlinks such as libQt6Core.so.6 at the top level) go with it
    removed = {dest for dest, _src, _kind in entries if _left_out_by_rule(dest) or
               (_is_library(dest) and PurePosixPath(dest).name in unused)}
    for analysis in analyses:
        analysis.binaries[:] = [e for e in analysis.binaries if e[0] not in removed]
        analysis.datas[:] = [e for e in analysis.datas if e[0] not in removed]
    print(f"slim: left out {len(removed)} files (Qt plugins and translations the app does not use, system "
          f"libraries the package depends on, and {len(unused)} libraries nothing left needs)")
