#!/usr/bin/env bash
# Style learnt from one print: Katsushika Hokusai, Ejiri in Suruga Province (Thirty-six Views of Mount Fuji,
# c. 1832; public domain), the copy in gcompris-qt-data 3.1-2 (paintings.rcc, put together from its painting
# puzzle by fetch.py as EjiriSuruga.png, 662x450; GPL-3+ as packaged, from the WebMuseum, per the package's Debian
# copyright file: the 'ukiyoe' set, training/data/README.md). common.sh's learn_style: 6000 iterations, about
# 2.5 hours on one thread; resumable.
source "$(dirname "$0")/../common.sh"
fetch ukiyoe
learn_style style-ejiri "$DATA/ukiyoe/EjiriSuruga.png" 6000 \
    "Katsushika Hokusai, Ejiri in Suruga Province (c. 1832), public domain; copy from gcompris-qt-data (GPL-3+)"
