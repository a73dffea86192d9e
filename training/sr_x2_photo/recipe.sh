#!/usr/bin/env bash
# Super-resolution x2 for real photos (issue 31): the bundled sr-x2 (run sr_x2/recipe.sh first) fine-tuned on
# inputs degraded as phone and web pictures are (--degrade realworld), 3000 iterations of L1, then 1500 of the
# sharp variant's objective (common.sh's sr_photo). Why both stages, and why GAN + perceptual: see
# ../sr_x4_photo/recipe.sh. Real-ESRGAN x2plus used the same degradation settings as x4plus, and so does this.
# The same objective as sr_x4_photo; unsharp-masked targets as there.
#
# Measured 2026-12-07 on the shared 2-core CPU, one thread, with the recipe's settings (bf16 autocast, --usm-target)
# in a 40-iteration smoke run, load average 4.6-5.2: medians 1.41 s/it in the L1 stage (an x2 model works on 4x the
# LR pixels of an x4 one for the same 96 px HR crop) and 2.4 s/it in the GAN stage: 3000 x 1.4 + 1500 x 2.4 s =
# about 2.2 h. In fp32 (AMP=off; load 6-7): 1.36 and 3.9 s/it, about 2.8 h.
source "$(dirname "$0")/../common.sh"
sr_photo sr-x2-photo 2 3000 4500
