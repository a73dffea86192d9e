#!/usr/bin/env bash
# Super-resolution x4, deeper (issue 31's frontier: within 0.5 dB of DAT-light at no more than 1 s per output
# megapixel): the bundled sr-x4 (8 residual blocks; run sr_x4/recipe.sh first) grown to 16 blocks (--init-from
# with more --n-blocks: the 8 new blocks start as identities, so iteration 0 is sr-x4's picture, +1.34 dB over
# bicubic), then trained on as sr-x4 was (L1, 128 px HR crops, batch 16) at half its learning rate, falling
# linearly to 0 over the second half. The x4 network's time is mostly its two upsampling convolutions, so 8 more
# blocks cost about 1.45x sr-x4's arithmetic (sr-x4: 0.45 s/MP), and the model stays under 1 s/MP.
# MAX_MINUTES=N stops it with a checkpoint; the same command continues exactly.
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in sr-x4-deep
train sr --data "$DATA/space-photos" --scale 4 --nf 32 --n-blocks 16 --size 128 --batch-size 16 \
    --init-from "$OUT/sr-x4.safetensors" --steps "${STEPS:-5000}" --lr 1e-4 --name sr-x4-deep --device "$DEVICE" \
    --eval-every 500 --no-export --quiet
export_to_resources sr-x4-deep
