#!/usr/bin/env bash
# CycleGAN photo <-> Van Gogh: landscape photos (Endless Sky landing photos, PD + CC-BY-SA) vs nine Van Gogh
# paintings (from GCompris's data package, GPL-3 as packaged; public-domain paintings), split 6/2/1 by file.
# A single painter's style: strong colour and brush texture, where the Wesnoth paintings of photo2painting
# are smooth digital art close to a photo. cpu-small preset (ngf 32, 6 blocks, 128 px crops); on a GPU set
# PRESET=paper. Both directions are exported. Same objective as photo2painting (training/README.md).
source "$(dirname "$0")/../common.sh"
fetch space-photos vangogh
domain space-photos landscape mountain valley fields hills canyon forest sea beach water badlands desert dune snow fog lava bwerner myrabella mfield dmottl
# stage 1: 10000 iterations as photo2painting, the generators padding with zeros at the crop edges
style_train photo2vangogh "$DATA/domains/landscape" "$DATA/vangogh" 10000
# stage 2: 2000 more with the 32-px mirrored border the app runs style models with (--edge-context 32): without
# it the pair learns to reconstruct relative to the zero padding, which the app never shows it (training/README.md)
style_pair photo2vangogh "$DATA/domains/landscape" "$DATA/vangogh" 12000 32
