#!/usr/bin/env bash
# Super-resolution x4 (SRResNet, L1) on real photos (see ../sr_x2/recipe.sh), 128 px HR crops.
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in sr-x4
train sr --data "$DATA/space-photos" --scale 4 --nf 32 --n-blocks 8 --size 128 --batch-size 16 \
    --steps "${STEPS:-10000}" --lr 2e-4 --name sr-x4 --device "$DEVICE" --eval-every 1000 --no-export --quiet
export_to_resources sr-x4
