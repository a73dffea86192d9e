#!/usr/bin/env bash
# Blind grey denoiser (one channel) for Gaussian noise sigma 0-50 with a noise-level map input, on the
# luma of the same real photos as the colour model (../denoise/recipe.sh); the app runs it on grey
# images and on each channel of colour ones.
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in denoise-gray
train denoise --data "$DATA/space-photos" --gray --sigma 0-50 --noise-map --nf 32 --depth 12 --size 64 --batch-size 16 \
    --steps "${STEPS:-6000}" --name denoise-gray --device "$DEVICE" --eval-every 1000 --no-export --quiet
export_to_resources denoise-gray
