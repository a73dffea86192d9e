#!/usr/bin/env bash
# Train every bundled model, one after the other (each uses all cores). Safe to kill at any time and
# to start again: each recipe resumes its run from the last checkpoint, and a finished run only
# re-exports. Log: training/train_all.log
cd "$(dirname "$0")"
# The sharp SR variants start from their L1 models, so they come after them. Not here: sr-x2-quick
# (training/quick_sr/train.py, 15 CPU minutes) and the unbundled photo2painting and arid2green pairs.
for recipe in denoise denoise_gray sr_x2 sr_x4 sr_x2_sharp sr_x4_sharp photo2vangogh photo2ukiyoe; do
    echo "=== $(date -u +%FT%TZ) $recipe" | tee -a train_all.log
    bash "$recipe/recipe.sh" >>train_all.log 2>&1 || echo "=== $recipe failed (see above)" | tee -a train_all.log
done
