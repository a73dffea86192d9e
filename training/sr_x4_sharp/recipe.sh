#!/usr/bin/env bash
# Super-resolution x4, "sharper" SRGAN variant: starts from the bundled L1 model (sr_x4/recipe.sh, run
# it first) and fine-tunes it with ESRGAN's weights (common.sh's srgan_sharp), plus --lambda-grid 300:
# without it the fine-tune grew a visible 4-pixel grid (9.2 grey levels by grid_artifact_amplitude on the
# test photos at 3000 iterations, 7.3 at 1048; the photos' own: 1.2). Same data as sr_x4; 96 px HR crops,
# batch 8 (~1.5 s/it on an idle 2-core CPU, against ~5 s/it at 128 px x 16; bf16 autocast, where the CPU
# has it: 1.35 against 2.16 s/it at one thread beside other training).
source "$(dirname "$0")/../common.sh"
srgan_sharp sr-x4-sharp 4 3000
