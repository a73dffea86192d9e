#!/usr/bin/env bash
# Blind colour denoiser for Gaussian noise sigma 0-50 with a noise-level map input (one model, the
# strength is a user setting), DnCNN-style, on real photos (see ../sr_x2/recipe.sh).
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in denoise-color
train denoise --data "$DATA/space-photos" --sigma 0-50 --noise-map --nf 32 --depth 12 --size 64 --batch-size 16 \
    --steps "${STEPS:-8000}" --name denoise-color --device "$DEVICE" --eval-every 1000 --no-export --quiet
export_to_resources denoise-color
