"""``imgtrans convert``: check the command line, build the engine's options, plan, load the model
only when there is work, run :func:`imgtrans.engine.convert` with the console reporter
(:mod:`imgtrans.cli_report`), and end with the summary and the exit code. Every usage problem is
found before anything is created (exit 2)."""

from __future__ import annotations

import argparse
import os
import threading

from imgtrans.cli.checks import check_paths, check_values, warn_unused_options
from imgtrans.cli.common import EXIT_CANCELLED, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, UsageError, err
from imgtrans.cli.loading import find_model, load_model
from imgtrans.cli.shards import (
    combine_group,
    finish_record,
    node_threads,
    open_torchrun_group,
    resolve_shard,
    shard_plan,
    shard_tag,
    start_record,
)


def cmd_convert(args: argparse.Namespace) -> int:
    try:
        return _convert(args)
    except UsageError as exc:
        err(str(exc))
        return EXIT_USAGE


def build_options(args: argparse.Namespace, local_world: int | None):
    """The engine's :class:`~imgtrans.engine.ConvertOptions` from the command line. ``local_world``:
    the processes a launcher started on this node, which share its CPUs."""
    from imgtrans.engine import ConvertOptions
    from imgtrans.imageio import DEFAULT_MAX_PIXELS

    threads = args.threads
    if threads is None and (local_world or 0) > 1 and not os.environ.get("IMGTRANS_THREADS"):
        threads = node_threads(local_world)  # the node's processes share its CPUs
    options = ConvertOptions(
        output_dir=args.output,
        fmt=args.fmt,
        jpeg_quality=args.jpeg_quality,
        overwrite=args.overwrite,
        suffix=args.suffix,
        recursive=args.recursive,
        keep_tree=not args.flat,
        tile=args.tile,
        device=args.device,
        half=False if args.fp32 else None,
        noise_level=args.noise_level,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        backend=args.backend,
        threads=threads,
    )
    if args.style_size is not None:
        options.style_size = args.style_size
    if args.strength is not None:
        options.style_strength = args.strength
    return options


def plan_batch(args: argparse.Namespace, options, shard, note):
    """The engine's plan for this shard, and how many inputs the whole run has. Every output
    landing on its own input is a usage error; sub-folders left out and renamed outputs are said."""
    from imgtrans.engine import OVERWRITES_INPUT, make_plan

    plan = make_plan(args.inputs, options)
    planned = len(plan.jobs)
    refused = [path for path, reason in plan.skipped if OVERWRITES_INPUT in reason]
    if refused and not plan.jobs:
        raise UsageError(f"every output in {args.output} would overwrite its own input; choose another output "
                         "folder or a --suffix")
    if shard.count > 1:
        plan = shard_plan(plan, shard, args.inputs)
    for root, count in plan.unsearched:
        note(f"{count} sub-folder{'s' if count != 1 else ''} of {root} not searched (use --recursive)")
    for job in plan.renamed:
        note(f"{job.src} -> {job.dst.name} (another input has the same output name)")
    return plan, planned


def _convert(args: argparse.Namespace) -> int:
    from imgtrans.catalog import recorded_id
    from imgtrans.cli_report import ConsoleReporter
    from imgtrans.engine import convert

    check_values(args)  # setup errors first, cheap, before torch or the model is loaded and before anything is created
    shard = resolve_shard(args)
    tag = shard_tag(shard)
    console = ConsoleReporter(tag, verbose=args.verbose, json_lines=args.json,
                              shard=shard.label if shard.active else None)
    check_paths(args)
    wanted = find_model(args.model)
    label, model_id = wanted.label, recorded_id(wanted.found, wanted.meta)
    options = build_options(args, shard.local_world)
    plan, planned = plan_batch(args, options, shard, console.note)
    todo = [job for job in plan.jobs if options.overwrite or not job.dst.exists()]
    group = open_torchrun_group(shard, planned, console.note)
    model = None
    if todo:
        model, label = load_model(wanted, options, shard.local_rank)
    warn_unused_options(args, label, wanted.facts, tag)
    output = args.output.expanduser()
    if model is not None or shard.active:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create output folder {args.output}: {exc.strerror or exc}") from None
    where = f"{len(plan.jobs)}"
    if shard.active:
        where = f"shard {shard.label} ({shard.source}): {where} of {planned}"
    if model is not None:
        console.note(f"{model.describe()} from {label}; {where} image(s) -> {args.output}")
    else:
        console.note(f"{label}; {where} image(s) -> {args.output}, nothing to convert")
    record = start_record(shard, output, console.note, model=model_id, device=options.device, output=args.output,
                          planned=planned, assigned=len(plan.jobs), to_convert=len(todo))
    console.emit("start", model=label, output=str(args.output), device=options.device, inputs=planned,
                 assigned=len(plan.jobs), to_convert=len(todo))
    if not args.no_progress and todo:
        console.start_progress(len(todo))
    cancel = threading.Event()
    summary = console.follow(convert(args.inputs, model, options, model_ref=label, cancel=cancel,
                                     plan=(plan.jobs, plan.skipped), model_id=model_id), cancel)
    if summary is None:  # a second Ctrl-C: no engine summary, the tally says what was done
        finish_record(record, output, "cancelled", console.tally, EXIT_CANCELLED, console.note)
        console.emit("summary", **console.tally.as_json(), cancelled=True, exit_code=EXIT_CANCELLED)
        return EXIT_CANCELLED
    console.print_summary(args.output)
    code, status = exit_status(summary)
    record = finish_record(record, output, status, console.tally, code, console.note)
    console.emit("summary", **console.tally.as_json(), cancelled=summary.cancelled, exit_code=code)
    if group and record is not None and not summary.cancelled:
        code = combine_group(record, shard, args.output, console, code)
    return code


def exit_status(summary) -> tuple[int, str]:
    """The exit code and the shard file's status for an engine :class:`~imgtrans.engine.Summary`."""
    if summary.cancelled:
        return EXIT_CANCELLED, "cancelled"
    code = EXIT_FAILURES if (summary.failed or summary.stopped) else EXIT_OK
    return code, "stopped" if summary.stopped else "finished"
