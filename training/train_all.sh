#!/usr/bin/env bash
# Train every bundled model, one after the other (each uses all cores). Safe to kill at any time and
# to start again: each recipe resumes its run from the last checkpoint, and a finished run only
# re-exports. Log: training/train_all.log
cd "$(dirname "$0")"
for recipe in denoise sr_x4 photo2painting sr_x2 arid2green sr_x4_sharp; do
    echo "=== $(date -u +%FT%TZ) $recipe" | tee -a train_all.log
    bash "$recipe/recipe.sh" >>train_all.log 2>&1 || echo "=== $recipe failed (see above)" | tee -a train_all.log
done
