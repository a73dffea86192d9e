#!/usr/bin/env bash
# CycleGAN arid <-> green landscapes: deserts, dunes, badlands and canyons vs fields, forests, hills and
# valleys, all real photos (Endless Sky landing photos, PD + CC-BY-SA). cpu-small preset; PRESET=paper
# on a GPU. Both directions are exported.
# Generator with the input skip (the trainer's default: out = tanh(net(x) + atanh(x))) and no
# identity loss (the skip keeps each photo's colours, which is what that loss was for); see training/README.md.
source "$(dirname "$0")/../common.sh"
fetch space-photos
domain space-photos arid desert dune badlands canyon
domain space-photos green fields forest hills valley
style_pair arid2green "$DATA/domains/arid" "$DATA/domains/green" 12000
