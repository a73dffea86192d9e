#!/usr/bin/env bash
# CycleGAN photo <-> ukiyo-e: landscape photos (Endless Sky landing photos, PD + CC-BY-SA) vs nine Japanese
# woodblock prints by Hokusai and Hiroshige (from GCompris's data package, GPL-3+ as packaged; public-domain
# prints), split 7/1/1 by file. Flat colour areas, dark outlines and paper tone: a style unlike both the photos
# and photo2vangogh's brushwork. cpu-small preset (ngf 32, 6 blocks, 128 px crops); on a GPU set PRESET=paper.
# Both directions are exported. Same objective as photo2painting (training/README.md).
source "$(dirname "$0")/../common.sh"
fetch space-photos ukiyoe
domain space-photos landscape mountain valley fields hills canyon forest sea beach water badlands desert dune snow fog lava bwerner myrabella mfield dmottl
# stage 1: 10000 iterations as photo2painting, the generators padding with zeros at the crop edges
style_train photo2ukiyoe "$DATA/domains/landscape" "$DATA/ukiyoe" 10000
# stage 2: 2000 more with the 32-px mirrored border the app runs style models with (--edge-context 32): without
# it the pair learns to reconstruct relative to the zero padding, which the app never shows it (training/README.md)
style_pair photo2ukiyoe "$DATA/domains/landscape" "$DATA/ukiyoe" 12000 32
