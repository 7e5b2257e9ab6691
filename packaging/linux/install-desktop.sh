#!/bin/sh
# Put Berth in the person's application menu: the desktop entry, the AppStream metainfo and the icon,
# under $XDG_DATA_HOME (default ~/.local/share). No root needed; run it again after moving Berth.
#
#   packaging/linux/install-desktop.sh [EXECUTABLE]
#
# EXECUTABLE is the `berth` the menu entry starts (an absolute path); by default the bundle in
# dist/berth/ if `make package` built one, else the virtual environment's, else `berth` on PATH.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
app_id=io.github.berth.Berth
data=${XDG_DATA_HOME:-$HOME/.local/share}

exe=${1:-}
if [ -z "$exe" ]; then
    if [ -x "$root/dist/berth/berth" ]; then
        exe=$root/dist/berth/berth
    elif [ -x "$root/.venv/bin/berth" ]; then
        exe=$root/.venv/bin/berth
    else
        exe=berth
    fi
fi

# The Exec key's quoting (Desktop Entry spec): quote an argument with reserved characters, escape
# ", `, $ and \ inside it, then escape every backslash once more for the key's string value.
case $exe in
    *[!A-Za-z0-9_./+-]*)
        exe_field=$(printf '%s' "$exe" | sed -e 's/[\\"`$]/\\&/g' -e 's/\\/\\\\/g')
        exe_field="\"$exe_field\""
        ;;
    *) exe_field=$exe ;;
esac

mkdir -p "$data/applications" "$data/metainfo" "$data/icons/hicolor/scalable/apps"
entry="$data/applications/$app_id.desktop"
# (ENVIRON, not awk -v: -v would undo the backslash escapes.)
EXEC_LINE="Exec=$exe_field" awk '/^Exec=/ { print ENVIRON["EXEC_LINE"]; next } { print }' \
    "$here/$app_id.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
chmod 644 "$entry"
install -m 644 "$here/$app_id.metainfo.xml" "$data/metainfo/$app_id.metainfo.xml"
install -m 644 "$root/resources/icons/berth.svg" "$data/icons/hicolor/scalable/apps/$app_id.svg"

# Refresh the menu's caches where the tools exist (desktop environments also notice by themselves).
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$data/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$data/icons/hicolor/index.theme" ]; then
    gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
fi
echo "installed $entry (runs $exe)"
