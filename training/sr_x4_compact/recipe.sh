#!/usr/bin/env bash
# Super-resolution x4, compact (imgtrans/archs/srvgg.py: a plain stack of 3x3 convolutions + PReLU, all at the
# input's resolution, one PixelShuffle, residual over bilinear upsampling), L1 from scratch on real photos
# (space-photos, LR made on the fly by antialiased bicubic downscaling). The goal (issue 31): PSNR-Y within
# 0.5 dB of DAT-light on benchmarks/quality.py's held-out split, i.e. above 31.34 dB at x4 (sr-x4: 31.26).
#
# Why these settings (measured 2026-12-08 on the shared 2-core CPU, load average ~5, so absolute figures are
# high; ratios against the bundled sr-x4 in the same loop carry over):
# - nf 64, 24 body convolutions (0.92M parameters, 4x sr-x4's): inference x4 on a 256 px input, eager +
#   channels_last, 2 threads, 1.28 s/MP against sr-x4's 0.92 in the same loop (1.4x; sr-x4 is 0.40 s/MP on a
#   quiet machine, so about 0.56 s/MP), inside the ~0.8 s/MP bound with room for a slower CPU; 32 convolutions
#   would be ~0.72 s/MP quiet, too close to it. 16 convolutions (0.62M) train barely faster (1.73 against 1.93
#   s/it at 1 thread in the smoke runs below, load varying) for two thirds of the body.
# - 192 px HR crops (48 px LR), batch 8: the receptive radius is 26 LR pixels, so in a 32 px LR crop (128 px
#   HR, sr-x4's) no output pixel sees its whole field without the zero padding; 48 px LR at batch 8 costs the
#   same per iteration as 32 px at batch 16 (1.73 against 1.70 s/it for nf 64 x 16 convolutions).
# - lr 2e-4 (as sr-x4's), not higher: see the probes below, where 4e-4 shrank the features fastest.
# - 9000 iterations: 20-iteration smoke runs with THREADS=1 (throwaway --name, deleted): nf 64 x 24 convs at
#   192 px x 8, 1.93 s/it median, beside sr-x4's SRResNet settings at 1.92 s/it in the same conditions (which
#   took 1.4-1.5 s/it at 1 thread beside two CycleGAN recipes when it was trained): 9000 iterations are
#   3.75-4.8 h at one thread.
#
# NOT READY for the long run. 200-iteration probes at one thread (eval on 8 held-out images every 100; bilinear
# gives 29.18 dB there, bicubic 29.71), 2026-12-08: sr-x4's SRResNet settings reached 29.32 dB. This network
# stayed at bilinear: nf 64 x 24 at lr 4e-4 29.18 (also over 150 iterations with PyTorch's default init, and
# with a zero tail), at 2e-4 29.20, at 1e-4 29.19; nf 64 x 16 at 2e-4 29.21. In every run the features
# shrink through the body as it trains (std 0.54 after the head, 0.01-0.05 after the last body conv at
# iteration 200, where a fresh net keeps ~0.7-0.9 throughout), and the residual it adds falls from 0.004 to
# 0.0001-0.001: the plain stack trains towards doing nothing. Before spending 4-5 h on it, a longer probe
# (1000 iterations) must show the PSNR leaving bilinear's; if it does not, the usual remedy for plain SR nets
# is identity/1x1 branches beside each 3x3 conv during training, folded into the one conv at export
# (RepVGG/ECBSR re-parameterisation), which keeps this inference graph.
# Re-running continues the run exactly where it stopped (checkpoints every 10 minutes).
source "$(dirname "$0")/../common.sh"
fetch space-photos
carry_in sr-x4-compact
train sr --data "$DATA/space-photos" --arch srvgg --scale 4 --nf 64 --n-blocks 24 --size 192 --batch-size 8 \
    --steps "${STEPS:-9000}" --lr 2e-4 --name sr-x4-compact --device "$DEVICE" --eval-every 1000 --no-export --quiet
export_to_resources sr-x4-compact
