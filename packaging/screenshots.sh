#!/usr/bin/env bash
# Screenshots of the real imgtrans window, for the README: runs the window under a virtual X server
# (Xvfb), drives it with packaging/screenshot_driver.py (samples converted with the bundled model and
# shown before/after, a short training run, the model list) and saves PNGs.
#
# It installs nothing. On Debian/Ubuntu it needs:
#   apt-get install -y xvfb imagemagick libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
#       libxcb-xinerama0 libxkbcommon-x11-0 libxcb-cursor0
# and the project's venv with the GUI extra (`make venv`).
#
# Usage: packaging/screenshots.sh [OUTPUT_DIR]        (default: docs/screenshots)
#   PYTHON=path/to/python   the interpreter (default: .venv/bin/python)
#   DARK=1                  also save main-window-dark.png and models-tab-dark.png with a dark theme
#   TRAIN_STEPS=40          length of the demo training run (a few minutes on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-docs/screenshots}"
PY="${PYTHON:-.venv/bin/python}"
SIZE=1400x900

if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "screenshots.sh: xvfb-run not found; install: apt-get install -y xvfb imagemagick libxcb-cursor0 ..." >&2
    exit 2
fi
if ! "$PY" -c "import PySide6" 2>/dev/null; then
    echo "screenshots.sh: $PY has no PySide6; run 'make venv' (or set PYTHON)" >&2
    exit 2
fi

mkdir -p "$OUT"

# The real xcb platform plugin on the virtual screen (not Qt's offscreen renderer); 96 dpi, no scaling.
export QT_QPA_PLATFORM=xcb QT_SCALE_FACTOR=1 QT_ENABLE_HIGHDPI_SCALING=0
unset WAYLAND_DISPLAY
run() {
    xvfb-run --auto-servernum --server-args="-screen 0 ${SIZE}x24 -dpi 96 -nolisten tcp" \
        "$PY" packaging/screenshot_driver.py --out "$OUT" --size "$SIZE" "$@"
}
run --train-steps "${TRAIN_STEPS:-40}"
if [ "${DARK:-0}" = "1" ]; then
    run --dark
fi

# Optional: shrink the PNGs a little for the README when ImageMagick is there (lossless).
if command -v mogrify >/dev/null 2>&1; then
    mogrify -strip "$OUT"/*.png
fi
echo "screenshots in $OUT"
