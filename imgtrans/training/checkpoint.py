"""Checkpoints that survive crashes, full disks and Ctrl-C.

A checkpoint is a folder ``<run>/checkpoints/step_00001234/`` with

* ``weights.safetensors``: every network's weights, keys prefixed by the network's name
  (``G_A.model.1.weight``), the header's metadata holding ``info`` as JSON;
* ``state.pt``: everything else needed to continue exactly - optimizer and LR-schedule states, the
  image pool, the RNG states of torch (CPU and CUDA), numpy and Python, AMP scaler, epoch and step.
  It holds only tensors, dicts, lists, numbers and strings, so it loads with
  ``torch.load(weights_only=True)``: nothing is ever unpickled;
* ``info.json``: step, epoch, task, networks (arch + hyper-parameters), metric, options.

The folder is written under a hidden temporary name, fsynced, then renamed into place
(:func:`imgtrans.atomic.replacing_folder`), so a checkpoint either exists complete or not at all; a
failed write (e.g. a full disk) removes its temporary folder and leaves every earlier checkpoint
untouched. After a successful save only the last ``keep`` checkpoints plus the best by metric are kept.
"""

from __future__ import annotations

import errno
import io
import json
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgtrans import atomic
from imgtrans.training.errors import CheckpointError

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
INFO = "info.json"
PREFIX = "step_"


# ------------------------------------------------------------------------------------ RNG states


def rng_state() -> dict[str, Any]:
    """The global RNG states as plain tensors/lists (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss_next": gauss_next},
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda = list(state["cuda"])[: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda + [cuda[-1]] * (torch.cuda.device_count() - len(cuda)))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ------------------------------------------------------------------------------------ writing


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "no permission to write there"
    return exc.strerror or str(exc)


@dataclass
class CheckpointInfo:
    path: Path
    step: int
    info: dict[str, Any]

    @property
    def metric(self) -> dict[str, Any] | None:
        return self.info.get("metric")


class Checkpointer:
    """Saves, lists and prunes the checkpoints of one run (only rank 0 writes)."""

    def __init__(self, folder: Path, keep: int = 3):
        self.folder = Path(folder)
        self.keep = max(1, keep)
        atomic.recover_folders(self.folder)  # leftovers of a save that a crash interrupted

    def list(self) -> list[CheckpointInfo]:
        """Complete checkpoints, oldest first."""
        return list_checkpoints(self.folder)

    def latest(self) -> CheckpointInfo | None:
        items = self.list()
        return items[-1] if items else None

    def best(self) -> CheckpointInfo | None:
        return best_of(self.list())

    def save(self, step: int, nets: Mapping[str, nn.Module], state: Mapping[str, Any], info: Mapping[str, Any]) -> Path:
        """Write checkpoint ``step`` atomically, then prune. Raises :class:`CheckpointError` (with the
        earlier checkpoints intact) when it cannot be written."""
        from safetensors.torch import save as safetensors_bytes

        final = self.folder / f"{PREFIX}{step:08d}"
        info = dict(info, step=step, saved=time.strftime("%Y-%m-%dT%H:%M:%S"))
        tensors = {
            f"{name}.{key}": value.detach().to("cpu").contiguous().clone()
            for name, net in nets.items()
            for key, value in net.state_dict().items()
        }
        buf = io.BytesIO()
        torch.save(dict(state), buf)
        blobs = {
            WEIGHTS: safetensors_bytes(tensors, metadata={"info": json.dumps(info, sort_keys=True)}),
            STATE: buf.getvalue(),
            INFO: (json.dumps(info, indent=1, sort_keys=True) + "\n").encode("utf-8"),
        }
        try:
            # an existing folder of this step is replaced (e.g. Ctrl-C right after a periodic save)
            with atomic.replacing_folder(final) as tmp:
                for name, data in blobs.items():
                    atomic.write_synced(tmp / name, data)
        except OSError as exc:
            last = self.latest()
            kept = f"the previous checkpoint ({last.path.name}) is intact" if last else "no earlier checkpoint exists"
            raise CheckpointError(
                f"could not write the checkpoint of step {step} to {self.folder}: {_reason(exc)}; {kept}"
            ) from None
        self.prune()
        return final

    def prune(self) -> None:
        items = self.list()
        keep = {c.path for c in items[-self.keep :]}
        best = best_of(items)
        if best is not None:
            keep.add(best.path)
        for c in items:
            if c.path not in keep:
                shutil.rmtree(c.path, ignore_errors=True)


def list_checkpoints(folder: Path) -> list[CheckpointInfo]:
    out = []
    if not Path(folder).is_dir():
        return out
    for path in Path(folder).iterdir():
        if not (path.name.startswith(PREFIX) and path.name[len(PREFIX) :].isdigit()):
            continue
        if not all((path / f).is_file() for f in (WEIGHTS, STATE, INFO)):
            continue
        try:
            info = json.loads((path / INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append(CheckpointInfo(path=path, step=int(path.name[len(PREFIX) :]), info=info))
    return sorted(out, key=lambda c: c.step)


def best_of(items: list[CheckpointInfo]) -> CheckpointInfo | None:
    """The checkpoint with the best metric (among those sharing the newest one's metric name)."""
    scored = [c for c in items if c.metric and isinstance(c.metric.get("value"), (int, float))]
    if not scored:
        return None
    name = scored[-1].metric["name"]
    scored = [c for c in scored if c.metric["name"] == name and c.metric["value"] == c.metric["value"]]  # no NaN
    if not scored:
        return None
    higher = bool(scored[-1].metric.get("higher_is_better", True))
    return (max if higher else min)(scored, key=lambda c: (c.metric["value"], c.step))


# ------------------------------------------------------------------------------------ reading


@dataclass
class Loaded:
    path: Path
    info: dict[str, Any]
    weights: dict[str, dict[str, torch.Tensor]]  # net name -> state dict
    state: dict[str, Any]


def find_checkpoint(where: str | Path, which: str = "latest") -> Path:
    """A checkpoint folder from a checkpoint folder, a run folder or its ``checkpoints`` folder.
    ``which``: ``latest``, ``best`` or a step number."""
    where = Path(where)
    if (where / INFO).is_file():
        return where
    folder = where / "checkpoints" if (where / "checkpoints").is_dir() else where
    items = list_checkpoints(folder)
    if not items:
        raise CheckpointError(f"no checkpoint found in {where}")
    if which == "latest":
        return items[-1].path
    if which == "best":
        best = best_of(items)
        if best is None:
            raise CheckpointError(f"no checkpoint in {where} has an evaluation metric yet; use --checkpoint latest")
        return best.path
    try:
        step = int(which)
    except ValueError:
        raise CheckpointError(f"--checkpoint must be latest, best or a step number, not {which!r}") from None
    for c in items:
        if c.step == step:
            return c.path
    raise CheckpointError(f"no checkpoint of step {step} in {where} (have: {', '.join(str(c.step) for c in items)})")


def read_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None


def load_checkpoint(path: str | Path, load_state: bool = True) -> Loaded:
    """Read a checkpoint folder (weights on the CPU). ``state.pt`` is read with ``weights_only=True``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    info = read_info(path)
    try:
        flat = load_file(str(path / WEIGHTS), device="cpu")
        state = torch.load(path / STATE, map_location="cpu", weights_only=True) if load_state else {}
    except (OSError, SafetensorError, RuntimeError, ValueError, EOFError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: damaged checkpoint ({first[:200]})") from None
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        net, _, rest = key.partition(".")
        weights.setdefault(net, {})[rest] = value
    return Loaded(path=path, info=info, weights=weights, state=state)


def _default_hparams(arch: str | None) -> dict[str, Any]:
    """The registered generator family's defaults (discriminators are not registered: none)."""
    from imgtrans.archs import get_arch

    try:
        return dict(get_arch(str(arch)).default_hparams)
    except KeyError:
        return {}


def check_compatible(info: Mapping[str, Any], task: str, nets: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Refuse a checkpoint whose task or network shapes differ from this run's ``nets``
    (name -> {"arch", "hparams"}). Networks missing on either side are not compared."""
    if info.get("task") != task:
        raise CheckpointError(
            f"{path} is a {info.get('task')!r} checkpoint, not {task!r}: resume it with "
            f"`imgtrans-train {info.get('task')}` or start a new run with another --name"
        )
    saved = info.get("nets", {})
    diffs = []
    for name, desc in nets.items():
        if name not in saved:
            continue
        old = saved[name]
        if old.get("arch") != desc.get("arch"):
            diffs.append(f"{name}: {old.get('arch')} in the checkpoint, {desc.get('arch')} now")
            continue
        default = _default_hparams(desc.get("arch"))  # what a checkpoint from before an option existed used
        for key in sorted(set(old.get("hparams", {})) | set(desc.get("hparams", {}))):
            a, b = old.get("hparams", {}).get(key, default.get(key)), desc.get("hparams", {}).get(key, default.get(key))
            if a != b:
                diffs.append(f"{name} {key}: {a} in the checkpoint, {b} now")
    if diffs:
        raise CheckpointError(
            f"{path} belongs to a different architecture ({'; '.join(diffs[:4])}). "
            "Resume with the run's own settings (omit the architecture options), or start a new run with another --name"
        )
