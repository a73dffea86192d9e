#!/usr/bin/env bash
# CycleGAN photo <-> painting: landscape photos (Endless Sky landing photos, PD + CC-BY-SA) vs painted
# story art (Wesnoth, GPL-2+). cpu-small preset (ngf 32, 6 blocks, 128 px crops); on a GPU set
# PRESET=paper. Both directions are exported.
# Generator with the input skip (the trainer's default: out = tanh(net(x) + atanh(x))) and no
# identity loss (the skip keeps each photo's colours, which is what that loss was for); see training/README.md.
source "$(dirname "$0")/../common.sh"
fetch space-photos paintings
domain space-photos landscape mountain valley fields hills canyon forest sea beach water badlands desert dune snow fog lava bwerner myrabella mfield dmottl
style_pair photo2painting "$DATA/domains/landscape" "$DATA/paintings" 12000
