#!/usr/bin/env bash
# Adds the bundle to the desktop's application menu for the current user: installs
# packaging/imgtrans.desktop (Exec pointing at the bundle's executable) and the icons from the bundle's
# resources/icons into $XDG_DATA_HOME (default ~/.local/share). Nothing outside that folder is touched.
#
# Usage: packaging/install-desktop.sh [BUNDLE_DIR]      (default: dist/imgtrans next to this script)
#        packaging/install-desktop.sh --uninstall
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA/applications"
ICONS="$DATA/icons/hicolor"

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$APPS/imgtrans.desktop" "$ICONS"/*/apps/imgtrans.png "$ICONS/scalable/apps/imgtrans.svg"
    echo "removed imgtrans from $APPS and $ICONS"
    exit 0
fi

BUNDLE="$(cd "${1:-$HERE/../dist/imgtrans}" && pwd)"
EXE="$BUNDLE/imgtrans"
RES="$BUNDLE/_internal/resources"
[ -x "$EXE" ] || { echo "install-desktop: $EXE not found (make bundle)" >&2; exit 1; }
[ -d "$RES/icons" ] || { echo "install-desktop: $RES/icons not found" >&2; exit 1; }

mkdir -p "$APPS"
# Exec/TryExec get the absolute path (quoted for the desktop-entry spec if it has spaces).
quoted="$EXE"
case "$EXE" in *" "*) quoted="\"$EXE\"" ;; esac
sed -e "s|^Exec=imgtrans |Exec=$quoted |" -e "s|^TryExec=imgtrans$|TryExec=$EXE|" \
    "$BUNDLE/_internal/share/applications/imgtrans.desktop" > "$APPS/imgtrans.desktop.tmp"
mv "$APPS/imgtrans.desktop.tmp" "$APPS/imgtrans.desktop"

for png in "$RES"/icons/imgtrans-*.png; do
    size="$(basename "$png" .png)"; size="${size#imgtrans-}"
    mkdir -p "$ICONS/${size}x${size}/apps"
    cp "$png" "$ICONS/${size}x${size}/apps/imgtrans.png"
done
if [ -f "$RES/icons/imgtrans.svg" ]; then
    mkdir -p "$ICONS/scalable/apps"
    cp "$RES/icons/imgtrans.svg" "$ICONS/scalable/apps/imgtrans.svg"
fi

if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$APPS/imgtrans.desktop"
fi
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true
echo "installed $APPS/imgtrans.desktop (Exec=$EXE) and icons in $ICONS"
