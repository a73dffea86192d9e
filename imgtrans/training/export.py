"""Checkpoint -> model files the rest of imgtrans uses (catalog, ``imgtrans convert``, GUI).

Each generator of a checkpoint is written with :func:`imgtrans.weights.save_model` (safetensors with
metadata) as ``<name>_a2b.safetensors`` / ``<name>_b2a.safetensors`` (CycleGAN) or
``<name>.safetensors`` (SR, denoise), by default into the user models folder. Metadata: ``id``,
``name``, ``description``, ``training_data``, ``licence``, ``steps``, ``epoch``, ``metric`` (JSON:
name, value, higher_is_better, step), ``checkpoint``, task-specific keys (``direction`` for CycleGAN,
``perceptual`` for SR, ``noise`` for denoise) and the training options.
"""

from __future__ import annotations

import json
from pathlib import Path

from imgtrans.training.checkpoint import find_checkpoint, load_checkpoint
from imgtrans.training.errors import CheckpointError

LICENCE = "user-trained model: the licences of its training images apply"


def export_checkpoint(checkpoint: str | Path, name: str | None = None, out: str | Path | None = None) -> list[Path]:
    """Write the generator(s) of ``checkpoint`` (a checkpoint folder) and return the file paths.

    ``out``: a folder (default: the user models folder), or a ``.safetensors`` file name (for two
    generators its stem gets ``_a2b``/``_b2a`` appended)."""
    from imgtrans.archs import get_arch
    from imgtrans.paths import user_models_dir
    from imgtrans.weights import save_model

    ck = load_checkpoint(checkpoint, load_state=False)
    info = ck.info
    name = name or info.get("name") or Path(checkpoint).parent.parent.name
    items = info.get("exports") or []
    if not items:
        raise CheckpointError(f"{checkpoint}: the checkpoint lists no generator to export")
    out_path = Path(out) if out is not None else user_models_dir()
    as_file = out_path.suffix.lower() == ".safetensors" and not out_path.is_dir()
    written = []
    for item in items:
        spec = get_arch(item["arch"])
        module = spec.build(dict(item["hparams"]))
        try:
            module.load_state_dict(ck.weights[item["net"]], strict=True)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{checkpoint}: {item['net']} cannot be exported ({str(exc).splitlines()[0][:200]})") from None
        if as_file:
            target = out_path if len(items) == 1 else out_path.with_name(out_path.stem + item["suffix"] + ".safetensors")
        else:
            target = out_path / f"{name}{item['suffix']}.safetensors"
        metadata = dict(item["metadata"])
        metadata.setdefault("licence", LICENCE)
        metadata.update(steps=str(info.get("step", "")), epoch=str(info.get("epoch", "")), checkpoint=str(ck.path.resolve()))
        if info.get("metric"):
            metadata["metric"] = {k: v for k, v in info["metric"].items() if k != "all"}
            metadata["metrics"] = info["metric"].get("all", {})
        try:
            written.append(save_model(target, module.eval(), item["arch"], item["hparams"], metadata))
        except OSError as exc:
            raise CheckpointError(f"could not write {target}: {exc.strerror or exc}") from None
    return written


def export_run(name: str, which: str = "latest", out: str | Path | None = None) -> list[Path]:
    """Export checkpoint ``which`` (``latest``, ``best`` or a step number) of run ``name``."""
    from imgtrans.paths import runs_dir

    run = runs_dir() / name
    if not run.is_dir():
        raise CheckpointError(f"no training run called {name!r} in {runs_dir()}")
    return export_checkpoint(find_checkpoint(run, which), name=name, out=out)


def list_runs() -> list[dict]:
    """Training runs in the runs folder, for a GUI: name, task, folder, latest step and metric, best
    step (``None`` where there is no checkpoint yet). Reads JSON only (no torch)."""
    from imgtrans.paths import runs_dir
    from imgtrans.training.checkpoint import best_of, list_checkpoints

    out = []
    root = runs_dir()
    if not root.is_dir():
        return out
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        items = list_checkpoints(run / "checkpoints")
        task = items[-1].info.get("task") if items else None
        if task is None and (run / "config.json").is_file():
            try:
                task = json.loads((run / "config.json").read_text(encoding="utf-8")).get("task")
            except (OSError, ValueError):
                task = None
        best = best_of(items)
        out.append({
            "name": run.name,
            "task": task,
            "path": run,
            "step": items[-1].step if items else None,
            "metric": items[-1].metric if items else None,
            "best_step": best.step if best else None,
        })  # fmt: skip
    return out
