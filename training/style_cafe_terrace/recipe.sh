#!/usr/bin/env bash
# Style learnt from one painting: Vincent van Gogh, Cafe Terrace at Night (1888; public domain), the copy in
# gcompris-qt-data 3.1-2 (details.rcc, Gogh4.webp, 401x500; GPL-3 as packaged, Bruno Coudoin and others, per the
# package's Debian copyright file: the 'vangogh' set, training/data/README.md). common.sh's learn_style: 6000
# iterations, about 2.5 hours on one thread; resumable.
source "$(dirname "$0")/../common.sh"
fetch vangogh
learn_style style-cafe-terrace "$DATA/vangogh/Gogh4.webp" 6000 \
    "Vincent van Gogh, Cafe Terrace at Night (1888), public domain; copy from gcompris-qt-data (GPL-3)"
