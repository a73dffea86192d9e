#!/usr/bin/env bash
# CycleGAN photo <-> painting: landscape photos (Endless Sky landing photos, PD + CC-BY-SA) vs painted
# story art (Wesnoth, GPL-2+). cpu-small preset (ngf 32, 6 blocks, 128 px crops); on a GPU set
# PRESET=paper. Both directions are exported.
# Generator with the input skip (the trainer's default since 2026-12-02: out = tanh(net(x) + atanh(x))) and no
# identity loss (the skip keeps each photo's colours, which is what that loss was for); see training/README.md.
source "$(dirname "$0")/../common.sh"
fetch space-photos paintings
domain space-photos landscape mountain valley fields hills canyon forest sea beach water badlands desert dune snow fog lava bwerner myrabella mfield dmottl
carry_in photo2painting
"${RUN[@]}" --domain-a "$DATA/domains/landscape" --domain-b "$DATA/paintings" --name photo2painting \
    --preset "${PRESET:-cpu-small}" --load-size "${LOAD_SIZE:-286}" --steps "${STEPS:-12000}" --device "$DEVICE" --amp "${AMP:-bf16}" \
    --lambda-grid "${LAMBDA_GRID:-300}" --lambda-identity "${LAMBDA_IDENTITY:-0}" --lambda-cycle "${LAMBDA_CYCLE:-5}" \
    --eval-every 2000 --no-export --quiet
export_to_resources photo2painting
