"""One picture of a sharded batch: each shard's summary file, and their combination.

Each shard process writes ``OUTPUT/imgtrans-shard-I-of-N.json`` (atomically, through
:func:`imgtrans.imageio.write_bytes_atomic`): once at its start with ``status: "running"``, and again at
its end with ``finished``, ``cancelled`` or ``stopped`` and what it did. A shard that was killed leaves
its ``running`` file, so the combination can tell "killed or still running" from "never started"
(no file). Outputs are not listed (they are on disk, and ``--json`` streams them); failures and the
skips that need attention are, so the file stays small for a 200,000-image run.

:func:`combine` adds the shards of the latest launch (the shard count of the newest file; files of
another count are left out and said so) and gives the exit code of the whole run by the rules of one
process: 130 when any shard was cancelled, else 1 when any file failed, a shard stopped (disk full),
was killed or never reported, else 0. ``imgtrans summary OUT/`` prints it; under torchrun with a
process group, rank 0 prints it at the end (:func:`gather`).

Standard library only, except :func:`open_group`/:func:`gather`, which import torch.distributed.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from imgtrans.shard import Shard

FORMAT = 1
_NAME_RE = re.compile(r"^imgtrans-shard-(\d+)-of-(\d+)\.json$")
EXIT_OK, EXIT_FAILURES, EXIT_CANCELLED = 0, 1, 130


def summary_path(output: Path, shard: Shard) -> Path:
    return Path(output) / f"imgtrans-shard-{shard.index}-of-{shard.count}.json"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def new_record(shard: Shard, *, command: list[str], model: str, device: str, output: Path, planned: int,
               assigned: int, to_convert: int) -> dict[str, Any]:
    """A shard's record at its start (``status: running``). ``planned``: inputs of the whole run,
    ``assigned``: this shard's, ``to_convert``: this shard's without an output yet."""
    return {
        "imgtrans_shard_summary": FORMAT,
        "shard": {"index": shard.index, "count": shard.count, "source": shard.source},
        "status": "running",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": now_iso(),
        "updated": now_iso(),
        "command": command,
        "model": model,
        "device": device,
        "output": str(output),
        "planned": planned,
        "assigned": assigned,
        "to_convert": to_convert,
        "converted": 0,
        "existing": 0,
        "skipped": [],
        "failed": [],
        "stopped": "",
        "seconds": 0.0,
        "exit_code": None,
    }


def finish_record(record: dict[str, Any], *, status: str, converted: int, existing: int,
                  skipped: list[tuple[str, str]], failed: list[tuple[str, str]], stopped: str, seconds: float,
                  exit_code: int) -> dict[str, Any]:
    """The record at the shard's end. ``existing``: inputs skipped because their output exists (a
    resumed run), counted; ``skipped``: the other skips ``(path, reason)``, listed."""
    record.update(status=status, updated=now_iso(), converted=converted, existing=existing,
                  skipped=[{"path": p, "reason": r} for p, r in skipped],
                  failed=[{"path": p, "reason": r} for p, r in failed], stopped=stopped,
                  seconds=round(seconds, 3), exit_code=exit_code)
    return record


def write_record(output: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``output``'s summary file for its shard, atomically; raises
    :class:`~imgtrans.imageio.ImageWriteError`."""
    from imgtrans.imageio import write_bytes_atomic

    s = record["shard"]
    path = summary_path(output, Shard(s["index"], s["count"]))
    return write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"))


def read_records(output: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The shard summary files in ``output`` and the problems reading them (one line each)."""
    records, problems = [], []
    try:
        names = sorted(e.name for e in os.scandir(output) if _NAME_RE.match(e.name))
    except OSError as exc:
        return [], [f"cannot list {output}: {exc.strerror or exc}"]
    for name in names:
        try:
            record = json.loads((Path(output) / name).read_text(encoding="utf-8"))
            if record.get("imgtrans_shard_summary") != FORMAT or "shard" not in record:
                raise ValueError("not an imgtrans shard summary")
        except (OSError, ValueError, AttributeError) as exc:
            problems.append(f"{name}: unreadable ({exc})")
            continue
        records.append(record)
    return records, problems


def _alive(record: dict[str, Any]) -> bool | None:
    """Whether a ``running`` shard's process still exists: True/False on this host, None elsewhere."""
    if record.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(record.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return None
    return True


def combine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the shard records of the latest launch (see the module docstring). Returns a dict:
    ``shards`` (N), ``reported``, ``missing`` (indices with no file), ``unfinished`` (``running``
    files: ``{shard, host, pid, state}``, state ``killed``/``running``/``unknown``), ``cancelled``,
    ``stopped``, ``converted``, ``existing``, ``skipped``, ``failed`` (counts), ``failures``
    (``{shard, path, reason}``), ``planned``, ``seconds`` (the slowest shard), ``notes`` and
    ``exit_code``."""
    if not records:
        return {"shards": 0, "reported": [], "missing": [], "unfinished": [], "cancelled": [], "stopped": [],
                "converted": 0, "existing": 0, "skipped": 0, "failed": 0, "failures": [], "planned": 0,
                "seconds": 0.0, "notes": ["no shard summaries"], "exit_code": EXIT_FAILURES}
    latest = max(records, key=lambda r: str(r.get("started", "")))
    count = int(latest["shard"]["count"])
    notes = []
    others = sorted({int(r["shard"]["count"]) for r in records} - {count})
    if others:
        notes.append(f"left out the summaries of an earlier launch with {', '.join(map(str, others))} shard(s)")
    mine = {int(r["shard"]["index"]): r for r in records if int(r["shard"]["count"]) == count}
    out: dict[str, Any] = {"shards": count, "reported": sorted(mine),
                           "missing": [i for i in range(count) if i not in mine],
                           "unfinished": [], "cancelled": [], "stopped": [], "converted": 0, "existing": 0,
                           "skipped": 0,
                           "failed": 0, "failures": [], "planned": 0, "seconds": 0.0, "notes": notes}
    for i, r in sorted(mine.items()):
        status = r.get("status")
        if status == "running":
            alive = _alive(r)
            state = "running" if alive else "killed" if alive is False else "unknown"
            out["unfinished"].append({"shard": i, "host": r.get("host"), "pid": r.get("pid"), "state": state})
        elif status == "cancelled":
            out["cancelled"].append(i)
        elif status == "stopped":
            out["stopped"].append(i)
        out["converted"] += int(r.get("converted", 0))
        out["existing"] += int(r.get("existing", 0))
        out["skipped"] += len(r.get("skipped", []))
        out["failed"] += len(r.get("failed", []))
        out["failures"] += [{"shard": i, **f} for f in r.get("failed", [])]
        out["planned"] = max(out["planned"], int(r.get("planned", 0)))
        out["seconds"] = max(out["seconds"], float(r.get("seconds", 0.0)))
    planned = {int(r.get("planned", 0)) for r in mine.values()}
    if len(planned) > 1:
        notes.append(f"the shards saw different numbers of inputs ({', '.join(map(str, sorted(planned)))}): "
                     "files were added or removed while they ran, or their input paths differ; run again to "
                     "convert what was missed")
    models = {str(r.get("model", "")) for r in mine.values()}
    if len(models) > 1:
        notes.append(f"the shards ran different models ({', '.join(sorted(models))})")
    if out["cancelled"]:
        out["exit_code"] = EXIT_CANCELLED
    elif out["failed"] or out["stopped"] or out["missing"] or out["unfinished"]:
        out["exit_code"] = EXIT_FAILURES
    else:
        out["exit_code"] = EXIT_OK
    return out


def describe(combined: dict[str, Any], output: Path | str) -> list[str]:
    """The combined summary as lines for a person."""
    c = combined
    lines = [f"{c['shards']} shard(s): {c['converted']} converted, {c['existing']} already done, "
             f"{c['skipped']} skipped, {c['failed']} failed of {c['planned']} input(s); "
             f"slowest shard {c['seconds']:.1f} s; outputs in {output}"]
    if c["missing"]:
        lines.append(f"no summary from shard(s) {', '.join(map(str, c['missing']))} of {c['shards']}: not run yet, "
                     "or killed before it started; run the same command for them")
    for u in c["unfinished"]:
        what = {"killed": "was killed", "running": "is still running",
                "unknown": "is still running or was killed"}[u["state"]]
        lines.append(f"shard {u['shard']} {what} (pid {u['pid']} on {u['host']}); "
                     "run the same command again to finish it")
    if c["cancelled"]:
        lines.append(f"cancelled: shard(s) {', '.join(map(str, c['cancelled']))}")
    if c["stopped"]:
        lines.append(f"stopped early (disk full?): shard(s) {', '.join(map(str, c['stopped']))}")
    lines += [f"note: {n}" for n in c["notes"]]
    if c["failures"]:
        lines.append("failures:")
        lines += [f"  {f['path']}: {f['reason']}" for f in c["failures"]]
    return lines


# --------------------------------------------------------------------------- torchrun process group

_GROUP_TIMEOUT = datetime.timedelta(days=7)  # the fastest shard waits for the slowest at the end


def open_group() -> bool:
    """Join torchrun's process group over gloo (CPU tensors: works beside CUDA, needs no GPU) unless
    one is already up; False (and a log line) when it cannot be had, and the shards then only write
    their files. The timeout is long because the first shard to finish waits in :func:`gather` for
    the last; a rank that dies makes torchrun stop the others."""
    import logging

    try:
        import torch.distributed as dist

        if not dist.is_available():
            return False
        if not dist.is_initialized():
            dist.init_process_group(backend="gloo", timeout=_GROUP_TIMEOUT)
        return True
    except Exception as exc:  # noqa: BLE001 - no group: the summary files still combine
        logging.getLogger(__name__).warning("no torchrun process group (%s); combine with `imgtrans summary`", exc)
        return False


def all_planned(planned: int) -> list[int]:
    """Every rank's number of planned inputs (for a consistency check at the start)."""
    import torch.distributed as dist

    counts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(counts, planned)
    return [int(c) for c in counts]


def gather(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every rank's final record on rank 0 (None on the others)."""
    import torch.distributed as dist

    rank = dist.get_rank()
    records: list[Any] | None = [None] * dist.get_world_size() if rank == 0 else None
    dist.gather_object(record, records, dst=0)
    return records


def close_group() -> None:
    """Wait until every rank is here (rank 0 has printed the combined summary), then leave the group:
    the ranks exit together, so torchrun does not stop a slower one with SIGTERM when rank 0's
    exit code is not 0."""
    import torch.distributed as dist

    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
