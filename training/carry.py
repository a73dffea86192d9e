#!/usr/bin/env python3
"""Carry unfinished training runs from one machine to the next, through the repository.

Runs live in ``~/.local/share/imgtrans/runs/<name>/``, which a fresh machine does not have: a run
that takes longer than one session would start again from zero every time. ``pack`` copies the
latest checkpoint of a run into ``training/carry/<name>/`` (committed); the recipes call ``unpack``
before training, which puts it back as the run's checkpoint when the machine has nothing newer, so
the same recipe command simply continues.

    .venv/bin/python training/carry.py pack photo2painting arid2green
    .venv/bin/python training/carry.py unpack photo2painting      # the recipes do this themselves
    .venv/bin/python training/carry.py list

What is carried:

* a checkpoint of at most ``--exact-limit`` MB (default 8: the SR and denoise runs) is copied
  byte for byte, so the next machine continues exactly as an uninterrupted run would;
* a larger one (a CycleGAN pair with its four networks, Adam moments and image pools: ~85 MB) is
  carried *slim*: the networks' weights as float16 (a rounding of ~5e-4 relative, below one Adam
  step at the usual LR), the iteration, LR schedule and RNG states; the optimizers' moments and the
  fake-image pools are left out, so Adam and the pools start afresh at the carried iteration. The
  checkpoint's ``info.json`` says so (``carried``), and the trainer prints which states are fresh.

The run's ``config.json``, ``eval.csv`` and ``losses.csv`` (gzipped) go along, so the logs and
``imgtrans-train``'s stored options continue too.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARRY = ROOT / "training" / "carry"
SIDE_FILES = ("config.json", "eval.csv")  # copied as they are; losses.csv travels gzipped


def _runs_dir() -> Path:
    from imgtrans.paths import runs_dir

    return runs_dir()


def _latest(run: Path):
    from imgtrans.training.checkpoint import Checkpointer

    return Checkpointer(run / "checkpoints").latest()


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20


def _write_atomically(dest: Path, fill) -> None:
    """Build ``dest`` (a folder) in a temporary sibling with ``fill(tmp)``, then swap it in
    (:func:`imgtrans.atomic.replacing_folder`; not fsynced: these are copies of files that exist)."""
    from imgtrans.atomic import replacing_folder

    with replacing_folder(dest, durable=False) as tmp:
        fill(tmp)
        for path in [tmp, *tmp.rglob("*")]:  # mkdtemp and safetensors make owner-only files
            path.chmod(0o755 if path.is_dir() else 0o644)


def _convert_weights(src: Path, dst: Path, convert) -> None:
    """Copy the safetensors file ``src`` to ``dst`` with ``convert`` applied to every tensor, header
    metadata kept."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as fh:
        metadata = fh.metadata() or {}
    save_file({k: convert(v) for k, v in load_file(str(src)).items()}, str(dst), metadata=metadata)


def _slim_checkpoint(src: Path, dst: Path) -> list[str]:
    """Write a slim copy of checkpoint folder ``src`` into ``dst``; returns what was left out."""
    import torch

    from imgtrans.training.checkpoint import INFO, STATE, WEIGHTS

    _convert_weights(src / WEIGHTS, dst / WEIGHTS, lambda v: v.half() if v.is_floating_point() else v)
    state = torch.load(src / STATE, map_location="cpu", weights_only=True)
    dropped = [f"optimizer state {name}" for name in state.get("optimizers", {})]
    if state.get("task_state"):
        dropped.append("task state (" + ", ".join(sorted(state["task_state"])) + ")")
    slim = {k: v for k, v in state.items() if k not in ("optimizers", "task_state")}
    slim["optimizers"], slim["task_state"] = {}, {}
    buf = io.BytesIO()
    torch.save(slim, buf)
    (dst / STATE).write_bytes(buf.getvalue())
    info = json.loads((src / INFO).read_text(encoding="utf-8"))
    info["carried"] = {"slim": True, "weights": "float16", "left_out": dropped}
    (dst / INFO).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return dropped


def pack(name: str, exact_limit_mb: float) -> str:
    run = _runs_dir() / name
    latest = _latest(run)
    if latest is None:
        return f"{name}: no checkpoint in {run}; nothing carried"
    dest = CARRY / name
    old = _carried_step(dest)
    if old is not None and old >= latest.step:
        return f"{name}: training/carry already holds iteration {old} (the run's latest is {latest.step})"
    exact = _size_mb(latest.path) <= exact_limit_mb
    left_out: list[str] = []

    def fill(tmp: Path) -> None:
        nonlocal left_out
        ck = tmp / latest.path.name
        ck.mkdir()
        if exact:
            for p in latest.path.iterdir():
                shutil.copy2(p, ck / p.name)
        else:
            left_out = _slim_checkpoint(latest.path, ck)
        for side in SIDE_FILES:
            if (run / side).is_file():
                shutil.copy2(run / side, tmp / side)
        if (run / "losses.csv").is_file():
            with open(run / "losses.csv", "rb") as fin, gzip.GzipFile(tmp / "losses.csv.gz", "wb", mtime=0) as fout:
                shutil.copyfileobj(fin, fout)

    _write_atomically(dest, fill)
    how = "exact copy" if exact else "slim (float16 weights; fresh " + ", ".join(left_out) + ")"
    size = _size_mb(dest / latest.path.name)
    return f"{name}: carried iteration {latest.step} to {_shown(dest)} ({size:.1f} MB, {how})"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _carried(dest: Path) -> Path | None:
    from imgtrans.training.checkpoint import PREFIX

    found = sorted(p for p in dest.glob(f"{PREFIX}*") if p.is_dir()) if dest.is_dir() else []
    return found[-1] if found else None


def _carried_step(dest: Path) -> int | None:
    ck = _carried(dest)
    return None if ck is None else int(json.loads((ck / "info.json").read_text(encoding="utf-8"))["step"])


def unpack(name: str) -> str:
    import torch

    from imgtrans.training.checkpoint import WEIGHTS

    src = CARRY / name
    ck = _carried(src)
    if ck is None:
        return f"{name}: nothing carried"
    step = _carried_step(src)
    run = _runs_dir() / name
    latest = _latest(run)
    if latest is not None and latest.step >= step:
        return (f"{name}: this machine's run is at iteration {latest.step}, the carried one at {step}: "
                "kept this machine's")

    def fill(tmp: Path) -> None:
        for p in ck.iterdir():
            if p.name != WEIGHTS:
                shutil.copy2(p, tmp / p.name)
        _convert_weights(ck / WEIGHTS, tmp / WEIGHTS, lambda v: v.float() if v.dtype == torch.float16 else v)

    _write_atomically(run / "checkpoints" / ck.name, fill)
    for side in SIDE_FILES:
        if (src / side).is_file():
            shutil.copy2(src / side, run / side)
    if (src / "losses.csv.gz").is_file():
        with gzip.open(src / "losses.csv.gz", "rb") as fin, open(run / "losses.csv", "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return f"{name}: continuing from the carried iteration {step} ({run / 'checkpoints' / ck.name})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="copy runs' latest checkpoints into training/carry/")
    p.add_argument("names", nargs="+")
    p.add_argument("--exact-limit", type=float, default=8.0, metavar="MB",
                   help="checkpoints up to this size are copied exactly (default 8)")
    u = sub.add_parser("unpack", help="continue runs from training/carry/ when this machine has nothing newer")
    u.add_argument("names", nargs="+")
    sub.add_parser("list", help="what training/carry/ holds")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for dest in sorted(CARRY.iterdir()) if CARRY.is_dir() else []:
            if _carried(dest) is not None:
                print(f"{dest.name}: iteration {_carried_step(dest)}")
        return 0
    for name in args.names:
        print(pack(name, args.exact_limit) if args.cmd == "pack" else unpack(name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
