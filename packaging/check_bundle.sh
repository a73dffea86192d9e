#!/usr/bin/env bash
# Checks the desktop bundle in dist/imgtrans/ as a user would run it: with an empty environment (no
# venv, no PYTHONPATH, PATH=/usr/bin:/bin, a fresh HOME) and from a folder that is not the repository.
# `make bundle-check` builds the bundle first when it is missing or older than the sources.
#
#   1. `imgtrans --version` and `imgtrans models` (the bundled model is listed, its file inside the bundle)
#   2. `imgtrans convert --model sr-x2-quick SAMPLE -o OUT`: the output exists and is exactly 2x the input,
#      and (when strace is installed) no file of a venv or site-packages was opened; the same with
#      `--backend onnx` when the bundle has onnxruntime
#   3. the GUI starts under Xvfb on the real xcb platform plugin and stays up; a screenshot is saved;
#      the .desktop entry and icons install into a throw-away XDG_DATA_HOME and validate
#   4. the bundle size and its biggest parts
#
# Needs: xvfb-run, xwininfo (x11-utils) and ImageMagick's `import` for step 3
#   (apt-get install -y xvfb x11-utils imagemagick libxcb-cursor0 libxkbcommon-x11-0 ...),
#   /usr/bin/python3 (stdlib only) to read image sizes. strace is optional.
# Usage: packaging/check_bundle.sh [BUNDLE_DIR]   (default dist/imgtrans)
#   SHOT=path.png   where the GUI screenshot goes (default build/bundle-check/gui.png)
CHECK=bundle-check EXE_NAME=imgtrans DEFAULT_BUNDLE=dist/imgtrans
source "$(dirname "$0")/check_common.sh" "${1:-}"
SHOT="${SHOT:-$REPO/build/bundle-check/gui.png}"
on_exit() {
    if [ -n "${GUI_PID:-}" ] && kill -0 "$GUI_PID" 2>/dev/null; then kill "$GUI_PID" 2>/dev/null || true; fi
}
mkdir -p "$WORK/out"

# 1. version and model list -------------------------------------------------------------------------
version="$("${clean_env[@]}" "$EXE" --version)" || fail "imgtrans --version"
pass "$version"
"${clean_env[@]}" "$EXE" models > "$WORK/models.txt" || fail "imgtrans models"
cat "$WORK/models.txt"
grep -q "sr-x2-quick" "$WORK/models.txt" || fail "imgtrans models does not list sr-x2-quick"
"${clean_env[@]}" "$EXE" models --json > "$WORK/models.json" || fail "imgtrans models --json"
"$SYSPY" - "$WORK/models.json" "$BUNDLE" <<'EOF' || fail "bundled model file is not inside the bundle"
import json, os, sys
models = {m["id"]: m for m in json.load(open(sys.argv[1]))}
path = os.path.realpath(models["sr-x2-quick"]["path"])
bundle = os.path.realpath(sys.argv[2])
assert path.startswith(bundle + os.sep) and os.path.isfile(path), path
print("bundle-check: ok: sr-x2-quick is", os.path.relpath(path, bundle))
EOF

# 2. convert a bundled sample with the bundled model ------------------------------------------------
SAMPLE="$BUNDLE/_internal/resources/samples/mars_nasa.jpg"
[ -f "$SAMPLE" ] || fail "sample $SAMPLE is not in the bundle"
convert_cmd=("${clean_env[@]}" "$EXE" convert --model sr-x2-quick "$SAMPLE" -o "$WORK/out" --no-progress)
start=$(date +%s%N)
if command -v strace >/dev/null 2>&1; then
    strace -f -qq -e trace=open,openat -o "$WORK/strace.log" "${convert_cmd[@]}" || fail "imgtrans convert"
    if grep -E "(\.venv|site-packages|$REPO/imgtrans/|$REPO/resources/)" "$WORK/strace.log" | grep -v ENOENT | head -5 | grep .; then
        fail "the bundle opened files outside itself (above)"
    fi
    pass "convert opened no venv/site-packages/source file (strace)"
else
    "${convert_cmd[@]}" || fail "imgtrans convert"
    echo "bundle-check: note: strace not installed, file-access check skipped"
fi
end=$(date +%s%N)
OUTFILE="$WORK/out/mars_nasa.jpg"
[ -s "$OUTFILE" ] || { ls -la "$WORK/out"; fail "no output $OUTFILE"; }
cat > "$WORK/is2x.py" <<'EOF'
import struct, sys

def jpeg_size(path):
    data = open(path, "rb").read()
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise SystemExit(f"{path}: no JPEG frame header")

(w, h), (W, H) = jpeg_size(sys.argv[1]), jpeg_size(sys.argv[2])
print(f"bundle-check: input {w}x{h} -> output {W}x{H}")
assert (W, H) == (2 * w, 2 * h)
EOF
"$SYSPY" "$WORK/is2x.py" "$SAMPLE" "$OUTFILE" || fail "output is not 2x the input"
pass "convert with sr-x2-quick: 2x output in $(( (end - start) / 1000000 )) ms (wall, start-up included)"

# 2b. the fast CPU backend (onnxruntime), when the bundle has it: export to ONNX inside the bundle, run
if [ -d "$BUNDLE/_internal/onnxruntime" ]; then
    mkdir -p "$WORK/out-onnx"
    "${clean_env[@]}" "$EXE" convert --backend onnx --model sr-x2-quick "$SAMPLE" -o "$WORK/out-onnx" --no-progress \
        || fail "imgtrans convert --backend onnx"
    "$SYSPY" "$WORK/is2x.py" "$SAMPLE" "$WORK/out-onnx/mars_nasa.jpg" || fail "onnx output is not 2x the input"
    find "$WORK/home" -name '*.onnx' | grep -q . || fail "no ONNX graph was exported into the user cache"
    pass "convert --backend onnx (exported with torch.onnx, run by onnxruntime, in the bundle)"
else
    echo "bundle-check: note: no onnxruntime in this bundle (built with BUNDLE_FAST=): onnx backend not checked"
fi

# 3. the GUI under Xvfb ----------------------------------------------------------------------------
if ! command -v xvfb-run >/dev/null || ! command -v xwininfo >/dev/null || ! command -v import >/dev/null; then
    fail "GUI check needs xvfb-run, xwininfo and import (apt-get install -y xvfb x11-utils imagemagick)"
fi
mkdir -p "$(dirname "$SHOT")"
cat > "$WORK/gui.sh" <<'EOF'
#!/usr/bin/env bash
# Runs under xvfb-run (DISPLAY/XAUTHORITY set): start the bundle's GUI with a clean environment,
# wait for its window, let it settle, screenshot the screen, check it is still alive, close it.
set -u
EXE="$1"; SAMPLE="$2"; SHOT="$3"; WORK="$4"
env -i "HOME=$WORK/home" "PATH=/usr/bin:/bin" "LANG=C.UTF-8" "DISPLAY=$DISPLAY" "XAUTHORITY=${XAUTHORITY:-}" \
    QT_QPA_PLATFORM=xcb "$EXE" gui "$SAMPLE" > "$WORK/gui.log" 2>&1 &
pid=$!
t0=$(date +%s%N)
for _ in $(seq 1 240); do  # up to 60 s
    if xwininfo -root -tree 2>/dev/null | grep -qi '"imgtrans'; then
        echo "bundle-check: GUI window mapped $(( ($(date +%s%N) - t0) / 1000000 )) ms after start"
        break
    fi
    kill -0 $pid 2>/dev/null || { echo "GUI exited early:"; cat "$WORK/gui.log"; exit 1; }
    sleep 0.25
done
xwininfo -root -tree | grep -i '"imgtrans' || { echo "no imgtrans window"; cat "$WORK/gui.log"; kill $pid; exit 1; }
sleep 5  # let the window lay out and the first thumbnail load
kill -0 $pid 2>/dev/null || { echo "GUI died after showing its window:"; cat "$WORK/gui.log"; exit 1; }
import -window root "$SHOT" || { kill $pid; exit 1; }
kill -TERM $pid
for _ in $(seq 1 40); do kill -0 $pid 2>/dev/null || break; sleep 0.25; done
kill -KILL $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if grep -q "Traceback" "$WORK/gui.log"; then echo "Traceback in the GUI log:"; cat "$WORK/gui.log"; exit 1; fi
exit 0
EOF
chmod +x "$WORK/gui.sh"
xvfb-run --auto-servernum --server-args="-screen 0 1400x900x24 -dpi 96 -nolisten tcp" \
    "$WORK/gui.sh" "$EXE" "$SAMPLE" "$SHOT" "$WORK" || fail "GUI under Xvfb"
[ -s "$SHOT" ] || fail "no screenshot"
pass "GUI started under Xvfb (xcb); screenshot: $SHOT"

# 3b. the desktop entry and icons install (into a throw-away XDG_DATA_HOME) --------------------------
XDG_DATA_HOME="$WORK/xdg" "$REPO/packaging/install-desktop.sh" "$BUNDLE" > "$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log"; fail "packaging/install-desktop.sh"; }
grep -q "^Exec=$EXE gui %F$" "$WORK/xdg/applications/imgtrans.desktop" || fail "installed .desktop has the wrong Exec"
[ -f "$WORK/xdg/icons/hicolor/256x256/apps/imgtrans.png" ] || fail "icon not installed"
if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$WORK/xdg/applications/imgtrans.desktop" || fail "desktop-file-validate"
    pass "desktop entry valid (desktop-file-validate) and installs with its icons"
else
    pass "desktop entry and icons install (desktop-file-validate not installed: not validated)"
fi

# 4. size ------------------------------------------------------------------------------------------
set +o pipefail  # `sort | head` closes the pipe early on purpose
echo "bundle-check: size of $BUNDLE: $(du -sh "$BUNDLE" | cut -f1) ($(du -sb "$BUNDLE" | cut -f1) bytes, $(find "$BUNDLE" -type f | wc -l) files)"
echo "bundle-check: biggest parts of _internal/:"
du -sh "$BUNDLE"/_internal/* | sort -rh | head -12 | sed 's/^/    /'
echo "bundle-check: biggest files:"
find "$BUNDLE" -type f -printf '%s %P\n' | sort -rn | head -10 | awk '{printf "    %7.1f MB  %s\n", $1/1048576, $2}'
if find "$BUNDLE" -type f \( -name 'libcuda*' -o -name 'libcudnn*' -o -name 'libcublas*' -o -name 'libnccl*' -o -name 'libtorch_cuda*' -o -name 'libc10_cuda*' \) | grep .; then
    fail "CUDA libraries in the CPU bundle (above)"
fi
pass "no CUDA library in the bundle"
echo "bundle-check: all checks passed"
