#!/usr/bin/env bash
# Super-resolution x4 for real photos (issue 31): the bundled sr-x4 (run sr_x4/recipe.sh first) fine-tuned on
# inputs degraded as phone and web pictures are (Real-ESRGAN's second-order blur/resize/noise/JPEG pipeline,
# --degrade realworld), 3000 iterations of L1, then 2000 of the sharp variant's objective (common.sh's sr_photo).
#
# Why the sharp (GAN + perceptual) objective and not L1 alone: from a blurred, noisy, blocky input many pictures
# are possible, and an L1 model returns their average: smooth, waxy surfaces (Real-ESRNet against Real-ESRGAN in
# the paper). Real-world SR is judged by eye (the issue's blind A/B against Real-ESRGAN x4plus, itself a GAN), so
# the model needs the adversarial and perceptual terms that give texture. The L1 stage comes first, as Real-ESRGAN
# trains Real-ESRNet before its GAN: the network learns to remove noise and blocks before a discriminator rewards
# detail it could otherwise take the noise for, and an L1 iteration costs ~1/3 of a GAN one. The objective is the
# bundled sr-x4-sharp's, with its periodic-pattern penalty (--lambda-grid 300): its first run without it grew a
# visible 4-pixel grid.
#
# Measured 2026-12-07 on the shared 2-core CPU, one thread, with the recipe's settings (bf16 autocast: the trainer
# found native bf16 on this machine; --usm-target) in a 40-iteration smoke run, load average 3.4-4.6: medians 0.91
# s/it in the L1 stage (the degradation and sharpening cost ~14 ms a patch of it) and 2.7 s/it in the GAN stage:
# 3000 x 0.9 + 2000 x 2.7 s = about 2.3 h. In fp32 (AMP=off, or a CPU without bf16; load 5-7): 1.08 and 3.2 s/it,
# about 2.7 h. MAX_MINUTES=N stops it with a checkpoint; the same command continues exactly.
source "$(dirname "$0")/../common.sh"
sr_photo sr-x4-photo 4 3000 5000
