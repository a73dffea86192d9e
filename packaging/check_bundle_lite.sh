#!/usr/bin/env bash
# Checks the lite bundle in dist/imgtrans-lite/ (onnxruntime, no torch) as a user would run it: with an
# empty environment (env -i, PATH=/usr/bin:/bin, a fresh HOME), from a folder that is not the repository.
# `make bundle-lite-check` builds the bundle first when it is missing or older than its sources.
#
#   1. `imgtrans-lite --version` and `models` (the bundled sr and denoise models are listed, their
#      graphs inside the bundle)
#   2. convert a bundled sample with the bundled sr model and with the bundled denoise model (noise
#      level 15), as PNG: outputs exist, 2x / 1x the input; (with strace) no file of a venv,
#      site-packages, the source checkout or torch was opened; the default output format (JPEG) too
#   3. the same conversions through the torch engine of the source checkout
#      (`$REF_PY -m imgtrans convert --backend eager`, default .venv-bundle/bin/python, the build venv, which has torch): every pixel of the
#      lite outputs within 1/255 of the torch ones
#   4. the size and biggest parts; no torch, Qt or CUDA library in the bundle
#
# Needs /usr/bin/python3 (stdlib only, reads PNG sizes) and the project's .venv for step 3.
# Usage: packaging/check_bundle_lite.sh [BUNDLE_DIR]   (default dist/imgtrans-lite)
CHECK=bundle-lite-check EXE_NAME=imgtrans-lite DEFAULT_BUNDLE=dist/imgtrans-lite
source "$(dirname "$0")/check_common.sh" "${1:-}"
REF_PY="${REF_PY:-$REPO/.venv-bundle/bin/python}"
[ -x "$REF_PY" ] || fail "$REF_PY (the torch engine to compare with) not found; set REF_PY"
mkdir -p "$WORK/refhome"

# 1. version and model list ---------------------------------------------------------------------
version="$("${clean_env[@]}" "$EXE" --version)" || fail "imgtrans-lite --version"
pass "$version"
"${clean_env[@]}" "$EXE" models || fail "imgtrans-lite models"
"${clean_env[@]}" "$EXE" models --json > "$WORK/models.json" || fail "imgtrans-lite models --json"
read -r SR_ID DN_ID < <("$SYSPY" - "$WORK/models.json" "$BUNDLE" <<'PY'
import json, os, sys
models = json.load(open(sys.argv[1]))
bundle = os.path.realpath(sys.argv[2])
for m in models:
    p = os.path.realpath(m["path"])
    assert p.startswith(bundle + os.sep) and os.path.isfile(p), f"{m['id']}: {p} not inside the bundle"
sr = [m["id"] for m in models if m["task"] == "sr"]
dn = [m["id"] for m in models if m["task"] == "denoise" and m["takes_noise_level"]]
assert sr and dn, "need a bundled sr model and a bundled denoise model with a noise level"
print(sr[0], dn[0])
PY
) || fail "model list"
pass "models $SR_ID (sr) and $DN_ID (denoise), graphs inside the bundle"

# 2. conversions with the bundle ------------------------------------------------------------------
SAMPLE="$BUNDLE/_internal/resources/samples/mars_nasa.jpg"
[ -f "$SAMPLE" ] || fail "sample $SAMPLE is not in the bundle"
cat > "$WORK/size.py" <<'PY'
import struct, sys
def png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    return struct.unpack(">II", head[16:24])
w, h = png_size(sys.argv[1])
s = int(sys.argv[4])
print(f"bundle-lite-check: {sys.argv[1].rsplit('/', 2)[-2]}: {w}x{h}")
assert (w, h) == (int(sys.argv[2]) * s, int(sys.argv[3]) * s), f"expected {s}x the input"
PY
read -r SW SH < <("$SYSPY" -c "import sys, struct
d = open(sys.argv[1], 'rb').read(); i = 2
while True:
    m, n = d[i + 1], struct.unpack('>H', d[i + 2:i + 4])[0]
    if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
        h, w = struct.unpack('>HH', d[i + 5:i + 9]); print(w, h); break
    i += 2 + n" "$SAMPLE")
echo "bundle-lite-check: sample $(basename "$SAMPLE") ${SW}x${SH}"

run_lite() {  # name model scale [args...]
    local name="$1" model="$2" scale="$3"; shift 3
    local cmd=("${clean_env[@]}" "$EXE" convert "$SAMPLE" -o "$WORK/lite-$name" --model "$model" "$@")
    local t0; t0=$(date +%s%N)
    if command -v strace >/dev/null 2>&1; then
        strace -f -qq -e trace=open,openat -o "$WORK/strace-$name.log" "${cmd[@]}" || fail "imgtrans-lite convert ($name)"
        if grep -E "(\.venv|site-packages|$REPO/imgtrans/|$REPO/resources/|libtorch|/torch/|PySide6)" "$WORK/strace-$name.log" \
                | grep -v ENOENT | head -5 | grep .; then
            fail "the bundle opened files outside itself or of torch/Qt (above)"
        fi
    else
        "${cmd[@]}" || fail "imgtrans-lite convert ($name)"
    fi
    pass "lite $name: $(( ($(date +%s%N) - t0) / 1000000 )) ms wall (start-up included)$(command -v strace >/dev/null && echo ', no venv/site-packages/source/torch file opened (strace)')"
}
run_lite sr "$SR_ID" 2 --format png
run_lite denoise "$DN_ID" 1 --format png --noise-level 15
"$SYSPY" "$WORK/size.py" "$WORK/lite-sr/mars_nasa.png" "$SW" "$SH" 2 || fail "sr output size"
"$SYSPY" "$WORK/size.py" "$WORK/lite-denoise/mars_nasa.png" "$SW" "$SH" 1 || fail "denoise output size"
"${clean_env[@]}" "$EXE" convert "$SAMPLE" -o "$WORK/lite-jpg" --model "$SR_ID" > /dev/null 2>&1 || fail "convert to the default format"
[ -s "$WORK/lite-jpg/mars_nasa.jpg" ] || fail "no JPEG output"
pass "sr and denoise outputs have the right sizes; default format (JPEG) written"

# 3. the same through the torch engine (source checkout) ------------------------------------------
(cd "$REPO" && env HOME="$WORK/refhome" "$REF_PY" -m imgtrans convert "$SAMPLE" -o "$WORK/torch-sr" --model "$SR_ID" \
    --format png --backend eager --device cpu --no-progress) 2> "$WORK/ref.log" || { cat "$WORK/ref.log"; fail "torch engine (sr)"; }
(cd "$REPO" && env HOME="$WORK/refhome" "$REF_PY" -m imgtrans convert "$SAMPLE" -o "$WORK/torch-denoise" --model "$DN_ID" \
    --format png --backend eager --device cpu --noise-level 15 --no-progress) 2>> "$WORK/ref.log" || { cat "$WORK/ref.log"; fail "torch engine (denoise)"; }
"$REF_PY" - "$WORK" <<'PY' || fail "lite and torch outputs differ by more than 1/255"
import sys
import numpy as np
from PIL import Image
work = sys.argv[1]
for name in ("sr", "denoise"):
    a = np.asarray(Image.open(f"{work}/lite-{name}/mars_nasa.png")).astype(np.int32)
    b = np.asarray(Image.open(f"{work}/torch-{name}/mars_nasa.png")).astype(np.int32)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    d = np.abs(a - b)
    print(f"bundle-lite-check: {name}: lite vs torch (eager): max |diff| {d.max()}/255, "
          f"{(d > 0).mean() * 100:.4f}% of values differ")
    assert d.max() <= 1, name
PY
pass "lite outputs match the torch engine within 1/255"

# 4. size ----------------------------------------------------------------------------------------
set +o pipefail
echo "bundle-lite-check: size of $BUNDLE: $(du -sh "$BUNDLE" | cut -f1) ($(du -sb "$BUNDLE" | cut -f1) bytes, $(find "$BUNDLE" -type f | wc -l) files)"
echo "bundle-lite-check: biggest parts of _internal/:"
du -sh "$BUNDLE"/_internal/* | sort -rh | head -10 | sed 's/^/    /'
if find "$BUNDLE" \( -name 'libtorch*' -o -name 'libc10*' -o -name 'libQt6*' -o -name 'libcud*' -o -path '*/torch/*' -o -path '*/PySide6/*' \) | grep .; then
    fail "torch, Qt or CUDA files in the lite bundle (above)"
fi
pass "no torch, Qt or CUDA file in the bundle"
echo "bundle-lite-check: all checks passed"
