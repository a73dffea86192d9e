#!/usr/bin/env bash
# Style learnt from one painting: Vincent van Gogh, The Church at Auvers (1890; public domain), the copy in
# gcompris-qt-data 3.1-2 (details.rcc, Eglise_dAuvers-sur-Oise_background.webp, 397x500; GPL-3 as packaged, Bruno
# Coudoin and others, per the package's Debian copyright file: the 'vangogh' set, training/data/README.md).
# imgtrans-train style on the landscape photos, 7000 iterations of the cpu-small preset (~1.3-1.6 s each on one
# thread): about 3 hours; resumable: run it again (MAX_MINUTES stops it with a checkpoint, exit 75).
source "$(dirname "$0")/../common.sh"
fetch vangogh
learn_style style-vangogh-church "$DATA/vangogh/Eglise_dAuvers-sur-Oise.webp" 7000 \
    "Vincent van Gogh, The Church at Auvers (1890), public domain; copy from gcompris-qt-data (GPL-3)"
