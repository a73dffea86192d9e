#!/usr/bin/env bash
# Style learnt from one print: Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831; public domain), the copy
# in gcompris-qt-data 3.1-2 (paintings.rcc, put together from its painting puzzle by fetch.py as GreatWave.png,
# 665x450; GPL-3+ as packaged, from the WebMuseum, per the package's Debian copyright file: the 'ukiyoe' set,
# training/data/README.md). common.sh's learn_style: 6000 iterations, about 2.5 hours on one thread; resumable.
source "$(dirname "$0")/../common.sh"
fetch ukiyoe
learn_style style-great-wave "$DATA/ukiyoe/GreatWave.png" 6000 \
    "Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831), public domain; copy from gcompris-qt-data (GPL-3+)"
