"""Sharded converts (``--shard``, torchrun, Slurm): which shard this process is, its part of the
plan, its summary file in the output folder, the combined summary rank 0 prints under torchrun,
and ``imgtrans summary`` that combines the files afterwards."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgtrans.cli.common import EXIT_USAGE, UsageError, err
from imgtrans.cli_args import printable


def shard_tag(shard) -> str:
    """What this process's lines start with: ``imgtrans``, or ``imgtrans[I/N]`` in a shard."""
    return f"imgtrans[{shard.label}]" if shard.active else "imgtrans"


def resolve_shard(args: argparse.Namespace):
    """The :class:`~imgtrans.shard.Shard` this process converts: ``--shard``, else the launcher's
    (torchrun, a Slurm array, srun), else the whole batch (an inactive shard). ``--shard`` wins over
    a launcher (said on stderr) but keeps its local rank, so each process still takes its own GPU."""
    from imgtrans.shard import ShardError, from_env

    try:
        launcher = from_env()
    except ShardError as exc:
        if args.shard is None:
            raise UsageError(str(exc)) from None
        launcher = None
    shard = args.shard or launcher
    if args.shard is not None and launcher is not None and launcher.active:
        message = f"--shard {args.shard.label} given: the {launcher.source} shard {launcher.label} is not used"
        print(f"{shard_tag(shard)}: {printable(message)}", file=sys.stderr)
        shard = type(shard)(shard.index, shard.count, shard.source, launcher.local_rank, launcher.local_world)
    return shard


def node_threads(local_world: int) -> int:
    """Compute threads for one of ``local_world`` processes on this node: the CPUs this process may
    use, divided among the node's processes unless the launcher already bound each to its own CPUs
    (srun's CPU binding leaves fewer CPUs in the affinity mask than the machine has)."""
    import os

    try:
        mine = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mine = os.cpu_count() or 1
    if mine >= (os.cpu_count() or mine):
        return max(1, mine // max(local_world, 1))
    return max(1, mine)


def shard_plan(plan, shard, inputs: list[str]):
    """The part of ``plan`` (a :class:`~imgtrans.engine.Plan`) that ``shard`` converts and reports:
    its jobs, and the planning skips keyed the same way, so each is reported by one shard only."""
    from imgtrans.engine import Plan
    from imgtrans.shard import relative_key

    roots = [Path(raw).expanduser() for raw in inputs]
    jobs = [job for job in plan.jobs if shard.owns(job.rel if job.rel is not None else Path(job.src.name))]
    kept = {id(job) for job in jobs}
    return Plan(jobs=jobs,
                skipped=[(p, r) for p, r in plan.skipped if shard.owns(relative_key(p, roots))],
                unsearched=plan.unsearched if shard.index == 0 else [],
                renamed=[job for job in plan.renamed if id(job) in kept])


def open_torchrun_group(shard, planned: int, note) -> bool:
    """Under torchrun, join the process group that rank 0's combined summary needs (False: none).
    Rank 0 warns when the processes found different numbers of inputs."""
    if shard.source != "torchrun" or shard.count <= 1:  # (in an array task, the group is only part of the run)
        return False
    from imgtrans.run_summary import all_planned, open_group

    group = open_group()
    if group:
        seen = all_planned(planned)
        if len(set(seen)) > 1 and shard.index == 0:
            note(f"warning: the processes found different numbers of inputs ({', '.join(map(str, seen))}): "
                 "are the input paths the same on every node? Files that arrive during the run are "
                 "converted by the next run")
    return group


def start_record(shard, folder: Path, note, **fields) -> dict | None:
    """Write a shard's summary file as the batch starts (None outside a sharded run): a shard
    killed later is seen as such by ``imgtrans summary``. ``fields``: :func:`~imgtrans.run_summary.new_record`'s."""
    if not shard.active:
        return None
    from imgtrans.imageio import ImageWriteError
    from imgtrans.run_summary import new_record, write_record

    record = new_record(shard, command=sys.argv[1:], **fields)
    try:
        write_record(folder, record)
    except ImageWriteError as exc:
        note(f"warning: cannot write the shard summary: {exc}")
    return record


def finish_record(record, folder: Path, status: str, tally, code: int, note) -> dict | None:
    """Write a shard's final summary file (nothing outside a sharded run)."""
    if record is None:
        return None
    from imgtrans.imageio import ImageWriteError
    from imgtrans.run_summary import finish_record as finish, write_record

    finish(record, status=status, converted=tally.converted, existing=tally.existing, skipped=tally.skipped,
           failed=tally.failed, stopped=tally.stopped, seconds=tally.seconds, exit_code=code)
    try:
        write_record(folder, record)
    except ImageWriteError as exc:
        note(f"warning: cannot write the shard summary: {exc}")
    return record


def combine_group(record: dict, shard, output_label, reporter, code: int) -> int:
    """Under torchrun: gather every shard's record; rank 0 prints the whole run's summary (and its
    ``--json`` event) and returns the whole run's exit code, the others their own ``code``."""
    from imgtrans.run_summary import close_group, combine, describe, gather

    records = gather(record)
    if records is not None:  # rank 0: the whole run
        combined = combine(records)
        for line in describe(combined, output_label):
            print(f"imgtrans[all {shard.count} shards]: {printable(line)}", file=sys.stderr)
        reporter.emit("combined_summary", **combined)
        code = combined["exit_code"]
    close_group()
    return code


def cmd_summary(args: argparse.Namespace) -> int:
    from imgtrans.run_summary import combine, describe, read_records

    folder = args.output.expanduser()
    if not folder.is_dir():
        err(f"{args.output} is not a folder")
        return EXIT_USAGE
    records, problems = read_records(folder)
    for problem in problems:
        print(f"imgtrans: {printable(problem)}", file=sys.stderr)
    if not records:
        err(f"no shard summaries (imgtrans-shard-I-of-N.json) in {args.output}: was it the output folder "
            "of a sharded convert (--shard, torchrun, Slurm)?")
        return EXIT_USAGE
    combined = combine(records)
    if args.json:
        print(json.dumps(combined, indent=2))
    else:
        for line in describe(combined, args.output):
            print(printable(line))
    return combined["exit_code"]
