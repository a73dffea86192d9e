#!/usr/bin/env bash
# The release check of the wheel (issue 29's "done when"): a new venv with only the built wheel and its
# declared dependencies (versions from constraints.txt, whose torch/torchvision wheels lie on this
# machine's disk), `pip check`, then, from a folder outside the checkout, `imgtrans models` and every
# bundled model converting the samples shipped inside the wheel. Not part of `make test` (it installs
# PyTorch: minutes); tests/test_wheel.py is the fast version that borrows the dependencies.
#
#   packaging/check_wheel.sh [dist/imgtrans-*.whl] [EXTRAS]      e.g. packaging/check_wheel.sh "" gui,fast
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WHEEL="${1:-}"
EXTRAS="${2:-}"
[ -n "$WHEEL" ] || WHEEL="$(ls -t "$REPO"/dist/imgtrans-*.whl 2>/dev/null | head -1)"
[ -f "$WHEEL" ] || { echo "check_wheel: no wheel (run make dist first)" >&2; exit 2; }
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check_wheel: FAIL: $*" >&2; exit 1; }

echo "check_wheel: $WHEEL ($(du -h "$WHEEL" | cut -f1)) into a new venv in $WORK"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
start=$(date +%s)
"$VPY" -m pip install -q -c "$REPO/constraints.txt" "$WHEEL${EXTRAS:+[$EXTRAS]}" 2>&1 | grep -v "is ignored: it is neither" || true
"$VPY" -c "import imgtrans" || fail "imgtrans did not install"
echo "check_wheel: installed in $(( $(date +%s) - start )) s: $("$VPY" -m pip list 2>/dev/null | tail -n +3 | wc -l) distributions, $(du -sh "$WORK/venv" | cut -f1)"
"$VPY" -m pip check || fail "pip check"

cd "$WORK"  # outside the checkout: nothing may come from it
export IMGTRANS_HOME="$WORK/home"
where="$("$VPY" -c 'import imgtrans, imgtrans.paths as p; print(imgtrans.__file__, p.resources_dir())')"
case "$where" in "$WORK"/venv/*) ;; *) fail "imgtrans is not the installed copy: $where";; esac
echo "check_wheel: module and resources: $where"
"$WORK/venv/bin/imgtrans" models || fail "imgtrans models"
SAMPLES="$("$VPY" -c 'import imgtrans.paths as p; print(p.resources_dir() / "samples")')"
ids="$("$WORK/venv/bin/imgtrans" models --json | "$VPY" -c 'import json, sys; print(" ".join(e["id"] for e in json.load(sys.stdin)))')"
n_samples=$(ls "$SAMPLES"/*.jpg | wc -l)
for id in $ids; do
    t0=$(date +%s)
    "$WORK/venv/bin/imgtrans" convert "$SAMPLES" -o "$WORK/out/$id" -m "$id" --no-progress 2>"$WORK/$id.log" \
        || { cat "$WORK/$id.log" >&2; fail "convert with $id"; }
    made=$(ls "$WORK/out/$id" | wc -l)
    [ "$made" -eq "$n_samples" ] || fail "$id wrote $made of $n_samples outputs"
    echo "check_wheel: $id: $made/$n_samples samples converted in $(( $(date +%s) - t0 )) s"
done
echo "check_wheel: OK ($(echo $ids | wc -w) models)"
