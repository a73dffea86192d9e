#!/usr/bin/env bash
# Part of the benchmarks: other processes on a 2-core machine distort every timing.
# quiet.sh CMD...: pause the background trainer (SIGSTOP) while CMD runs, resume it after (always).
# For timing measurements on this 2-core machine. Prints the load of other processes first.
pids=$(pgrep -f "imgtrans.training.cli" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; true; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids
sleep 2
echo "quiet.sh: trainer paused ($pids); other busy processes:" >&2
ps -eo pcpu,args --sort=-pcpu | awk 'NR>1 && $1>5' | head -5 >&2
"$@"
