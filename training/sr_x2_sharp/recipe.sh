#!/usr/bin/env bash
# Super-resolution x2, "sharper" SRGAN variant: starts from the bundled L1 model (sr_x2/recipe.sh, run it
# first) and fine-tunes it with the same objective as sr_x4_sharp (common.sh's srgan_sharp), on the same
# data and 96 px HR crops as sr_x2. Times and figures: training/README.md.
source "$(dirname "$0")/../common.sh"
srgan_sharp sr-x2-sharp 2 2000
