#!/usr/bin/env bash
# Super-resolution x2 for real photos (issue 31): the bundled sr-x2 (run sr_x2/recipe.sh first) fine-tuned on
# inputs degraded as phone and web pictures are (--degrade realworld), 3000 iterations of L1, then 1500 of the
# sharp variant's objective (common.sh's sr_photo). Why both stages, and why GAN + perceptual: see
# ../sr_x4_photo/recipe.sh. Real-ESRGAN x2plus used the same degradation settings as x4plus, and so does this.
#
# Measured 2026-12-07 on the shared 2-core CPU (load average 6-7, fp32), one thread, 40-iteration smoke run:
# 1.36 s/it in the L1 stage (median), 3.9 s/it in the GAN stage (an x2 model works on 4x the LR pixels of an x4
# one for the same 96 px HR crop): 3000 x 1.4 + 1500 x 3.9 s = about 2.8 h here, less on a quiet machine.
source "$(dirname "$0")/../common.sh"
sr_photo sr-x2-photo 2 3000 4500
