#!/usr/bin/env bash
# Super-resolution x4, "sharper" SRGAN variant: starts from the bundled L1 model (sr_x4/recipe.sh, run
# it first) and fine-tunes it with ESRGAN's weights (common.sh's srgan_sharp), plus --lambda-grid 300:
# without it the fine-tune grows a visible 4-pixel grid (benchmarks/README.md, History 2026-12-02). Same data
# as sr_x4; 96 px HR crops at batch 8, a third of the time per iteration of 128 px x 16; bf16 autocast where
# the CPU has it (benchmarks/README.md, "Training speed").
source "$(dirname "$0")/../common.sh"
srgan_sharp sr-x4-sharp 4 3000
