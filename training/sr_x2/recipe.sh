#!/usr/bin/env bash
# Super-resolution x2 (SRResNet, L1) on real photos: Endless Sky landing photos (PD + CC-BY-SA),
# LR made on the fly by antialiased bicubic downscaling of random 96 px HR crops.
# Re-running continues the run exactly where it stopped (checkpoints every 10 minutes).
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in sr-x2
train sr --data "$DATA/space-photos" --scale 2 --nf 32 --n-blocks 8 --size 96 --batch-size 16 \
    --steps "${STEPS:-8000}" --lr 2e-4 --name sr-x2 --device "$DEVICE" --eval-every 1000 --no-export --quiet
export_to_resources sr-x2
