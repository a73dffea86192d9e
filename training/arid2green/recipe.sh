#!/usr/bin/env bash
# CycleGAN arid <-> green landscapes: deserts, dunes, badlands and canyons vs fields, forests, hills and
# valleys, all real photos (Endless Sky landing photos, PD + CC-BY-SA). cpu-small preset; PRESET=paper
# on a GPU. Both directions are exported.
# Generator with the input skip (the trainer's default since 2026-12-02: out = tanh(net(x) + atanh(x))) and no
# identity loss (the skip keeps each photo's colours, which is what that loss was for); see training/README.md.
source "$(dirname "$0")/../common.sh"
fetch space-photos
domain space-photos arid desert dune badlands canyon
domain space-photos green fields forest hills valley
carry_in arid2green
"${RUN[@]}" --domain-a "$DATA/domains/arid" --domain-b "$DATA/domains/green" --name arid2green \
    --preset "${PRESET:-cpu-small}" --load-size "${LOAD_SIZE:-286}" --steps "${STEPS:-12000}" --device "$DEVICE" --amp "${AMP:-bf16}" \
    --lambda-grid "${LAMBDA_GRID:-300}" --lambda-identity "${LAMBDA_IDENTITY:-0}" --lambda-cycle "${LAMBDA_CYCLE:-5}" \
    --eval-every 2000 --no-export --quiet
export_to_resources arid2green
