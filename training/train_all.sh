#!/usr/bin/env bash
# Train every bundled model, one after the other (each uses all cores). Safe to kill at any time and
# to start again: each recipe resumes its run from the last checkpoint, and a finished run only
# re-exports. Log: training/train_all.log. MAX_MINUTES=N: stop cleanly (checkpoint saved, exit 75)
# once N minutes have passed in all, for a session that ends at a fixed time; run it again to go on.
cd "$(dirname "$0")"
deadline=""
if [ -n "${MAX_MINUTES:-}" ]; then deadline=$(( $(date +%s) + ${MAX_MINUTES%.*} * 60 )); fi
# The sharp SR variants start from their L1 models, so they come after them. Not here: sr-x2-quick
# (training/quick_sr/train.py, 15 CPU minutes) and the unbundled photo2painting and arid2green pairs.
for recipe in denoise denoise_gray sr_x2 sr_x4 sr_x2_sharp sr_x4_sharp photo2vangogh photo2ukiyoe; do
    if [ -n "$deadline" ]; then  # each recipe gets the time that is left
        left=$(( (deadline - $(date +%s)) / 60 ))
        if [ "$left" -lt 1 ]; then echo "=== time up before $recipe (MAX_MINUTES)" | tee -a train_all.log; exit 75; fi
        export MAX_MINUTES="$left"
    fi
    echo "=== $(date -u +%FT%TZ) $recipe" | tee -a train_all.log
    bash "$recipe/recipe.sh" >>train_all.log 2>&1
    rc=$?
    if [ "$rc" = 75 ]; then echo "=== time up in $recipe (MAX_MINUTES): checkpoint saved, run train_all.sh again" | tee -a train_all.log; exit 75; fi
    if [ "$rc" != 0 ]; then echo "=== $recipe failed (see above)" | tee -a train_all.log; fi
done
