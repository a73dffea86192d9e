"""Running a batch: :func:`convert` plans (unless the caller did), then a worker thread decodes
ahead, runs the :class:`~imgtrans.engine.runner.Runner`, encodes behind, and reports
events (:class:`~imgtrans.engine.events.Event`) through a queue that the generator hands over. The
resume rules, atomic writes, the disk-full stop and cancel are the same for every runner."""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from imgtrans.engine.events import Cancelled, DiskFull, Event, Summary
from imgtrans.engine.options import ConvertOptions
from imgtrans.engine.planning import EXISTS, Job, is_error, plan_jobs
from imgtrans.engine.runner import TORCH_RUNNER, Runner
from imgtrans.engine.settings import auto_noise_options, existing_output_problem
from imgtrans.imageio import ImageReadError, ImageWriteError, sweep_stale_temp_files

log = logging.getLogger(__name__)


_LARGE_BUFFER = 64 << 20


def _trim_memory() -> None:
    """Give freed heap memory back to the OS (glibc only). Tiles and decoders free many mid-sized
    buffers that glibc keeps in its arenas; trimming between decode, inference and encode keeps
    the peak of a huge image at what is really alive."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (ImageReadError, ImageWriteError)) or type(exc).__name__ == "BackendError":
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --tile)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def convert(
    inputs: Iterable[str | os.PathLike],
    model,
    options: ConvertOptions,
    *,
    model_ref: str = "",
    cancel: threading.Event | None = None,
    plan: tuple[list[Job], list[tuple[Path, str]]] | None = None,
    model_id: str | None = None,
    runner: Runner | None = None,
) -> Iterator[Event]:
    """Convert ``inputs`` with ``model`` (a :class:`~imgtrans.weights.LoadedModel`); yields events.

    The model is prepared (device, precision) once. Closing the generator or setting ``cancel``
    stops the work within one tile; files already written stay, the current one is not written.
    ``plan`` is what :func:`plan_jobs` returned, when the caller already planned. ``model_id``: the
    id the outputs record (default: the model's ``id`` metadata, else ``model_ref``), needed when
    ``model`` is None because every output exists: an existing output made by another model or
    with other settings is reported as not converted (:func:`existing_output_problem`). ``runner``:
    what runs the network (default: PyTorch, :data:`TORCH_RUNNER`; the lite engine passes its own)."""
    cancel = cancel or threading.Event()
    jobs, skipped = plan if plan is not None else plan_jobs(inputs, options)
    events: queue.Queue[Event | None] = queue.Queue(maxsize=256)
    batch = _Batch(jobs, skipped, model, options, model_ref, cancel, events, model_id, runner or TORCH_RUNNER)
    worker = threading.Thread(target=batch.run, name="imgtrans-engine", daemon=True)
    worker.start()
    try:
        while True:
            event = events.get()
            if event is None:
                break
            yield event
    finally:
        cancel.set()
        # drain so the worker never blocks on a full queue while it winds down
        while worker.is_alive():
            try:
                events.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class _Batch:
    """The worker side of :func:`convert`: decode ahead, infer, encode behind, report."""

    def __init__(self, jobs, skipped, model, options: ConvertOptions, model_ref: str, cancel: threading.Event,
                 events: queue.Queue, model_id: str | None = None, runner: Runner | None = None):  # fmt: skip
        self.jobs, self.skipped, self.model, self.options = jobs, skipped, model, options
        self.runner = runner or TORCH_RUNNER
        self.model_ref, self.cancel, self.events = model_ref, cancel, events
        if model_id is None:
            model_id = (model.metadata.get("id") if model is not None else None) or model_ref
        self.model_id = model_id  # what the outputs record as their model
        self.summary = Summary()
        self.total = len(jobs)
        self.reads: dict[int, Future] = {}
        self.writes: list[tuple[int, Job, Future, float]] = []
        self.disk_full: Path | None = None

    def emit(self, kind: str, **kw) -> None:
        self.events.put(Event(kind, total=self.total, **kw))

    def fail(self, src: Path, reason: str, **kw) -> None:
        self.summary.failed.append((src, reason))
        self.emit("failed", src=src, message=reason, **kw)

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.emit("plan", message=f"{self.total} file(s) to convert")
            for path, reason in self.skipped:
                if is_error(reason):
                    self.fail(path, reason)
                else:
                    self.summary.skipped.append((path, reason))
                    self.emit("skipped", src=path, message=reason)
            todo = []
            for i, job in enumerate(self.jobs):
                if not self.options.overwrite and job.dst.exists():
                    problem = existing_output_problem(job.dst, self.model_id, self.options)
                    if problem:
                        self.fail(job.src, problem, index=i, dst=job.dst)
                        continue
                    reason = f"{EXISTS} (use --overwrite to replace it)"
                    self.summary.skipped.append((job.src, reason))
                    self.emit("skipped", index=i, src=job.src, dst=job.dst, message=reason)
                else:
                    todo.append((i, job))
            for folder in sorted({job.dst.parent for job in self.jobs}):
                if folder.is_dir():
                    sweep_stale_temp_files(folder)  # what a killed run's interrupted writes left
            if todo:
                if self.model is None:  # the caller saw every output existing; one went away since
                    raise RuntimeError("outputs changed while the batch started; run the same command again")
                self.model = self.runner.prepare(self.model, self.options)
                self.emit("backend", message=f"backend: {self.model.describe()} ({self.model.why})")
                with ThreadPoolExecutor(max_workers=max(1, self.options.io_threads),
                                        thread_name_prefix="imgtrans-io") as pool:
                    try:
                        self._loop(todo, pool)
                    finally:
                        self._finish_writes(block=True)
        except Cancelled:
            self.summary.cancelled = True
            self.emit("cancelled", message="cancelled")
        except DiskFull:
            left = self.total - len(self.summary.converted) - len(self.summary.failed) - len(self.summary.skipped)
            reason = (f"stopped: disk full while writing {self.disk_full}; {max(left, 0)} image(s) not converted; "
                      "free some space and run the same command again to finish")
            self.summary.stopped = reason
            self.emit("stopped", message=reason)
        except Exception as exc:  # e.g. CUDA requested without a GPU
            log.debug("batch failed", exc_info=True)
            self.fail(Path("<batch>"), _reason(exc))
        finally:
            self.summary.seconds = time.perf_counter() - started
            self.emit("finished", summary=self.summary, seconds=self.summary.seconds)
            self.events.put(None)

    def _prefetch(self, todo, k: int, pool: ThreadPoolExecutor) -> None:
        from imgtrans.imageio import read_image

        if k < len(todo) and k not in self.reads:
            self.reads[k] = pool.submit(read_image, todo[k][1].src, max_pixels=self.options.max_pixels)

    def _finish_writes(self, block: bool) -> None:
        for item in list(self.writes):
            i, job, fut, t0 = item
            if not block and not fut.done():
                continue
            self.writes.remove(item)
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per file
                self.fail(job.src, _reason(exc), index=i, dst=job.dst)
                if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                    self.disk_full = job.dst
            else:
                self.summary.converted.append(job.dst)
                self.emit("done", index=i, src=job.src, dst=job.dst, fraction=1.0, seconds=time.perf_counter() - t0)

    def _loop(self, todo, pool: ThreadPoolExecutor) -> None:
        from imgtrans.imageio import write_image

        for k, (i, job) in enumerate(todo):
            if self.cancel.is_set():
                raise Cancelled
            if self.disk_full is not None:
                raise DiskFull
            self._prefetch(todo, k, pool)
            self._prefetch(todo, k + 1, pool)
            t0 = time.perf_counter()
            self.emit("start", index=i, src=job.src, dst=job.dst)

            def step(fraction: float, i: int = i, job: Job = job) -> None:
                if self.cancel.is_set():
                    raise Cancelled
                self.emit("progress", index=i, src=job.src, dst=job.dst, fraction=fraction)

            try:
                img = self.reads.pop(k).result()
                for note in format_losses(img, job.dst.suffix):
                    self.summary.notes.append((job.src, note))
                    self.emit("note", index=i, src=job.src, dst=job.dst, message=note)
                large = img.pixels.nbytes >= _LARGE_BUFFER // 4
                if large:
                    _trim_memory()  # what the decoder freed
                options, measured = auto_noise_options(self.model, img, self.options)
                if measured:
                    self.emit("noise", index=i, src=job.src, dst=job.dst, message=measured,
                              noise_level=options.noise_level)
                out = self.runner.process(self.model, img, options, step, job.dst.suffix)
                del img  # the decoded input is not needed while the output is encoded
                if large:
                    _trim_memory()  # what the tiles freed, before the encoder needs room
                provenance = self.runner.provenance(self.model, self.model_ref, options, job.src, job.rel)
                job.dst.parent.mkdir(parents=True, exist_ok=True)
                fut = pool.submit(write_image, out, job.dst, fmt=job.dst.suffix.lstrip("."),
                                  jpeg_quality=self.options.jpeg_quality, provenance=provenance)
                self.writes.append((i, job, fut, t0))
            except Cancelled:
                raise
            except Exception as exc:  # a bad file never stops the batch
                log.debug("failed on %s", job.src, exc_info=True)
                self.fail(job.src, _reason(exc), index=i, dst=job.dst)
            self._finish_writes(block=False)
            while len(self.writes) > self.options.io_threads:
                self._finish_writes(block=True)


def format_losses(img, out_suffix: str) -> list[str]:
    """What writing the decoded ``img`` (:class:`~imgtrans.imageio.Image`) as ``out_suffix`` cannot
    keep: transparency in JPEG, 16-bit depth in JPEG/WebP/BMP, the frames after the first."""
    fmt = out_suffix.lower().lstrip(".")
    notes = []
    if img.alpha is not None and fmt in ("jpg", "jpeg") and float(img.alpha.min()) < 1.0:
        notes.append("transparency flattened onto white (JPEG keeps no alpha; --format png keeps it)")
    if img.bit_depth > 8 and fmt not in ("png", "tif", "tiff"):
        notes.append("16-bit depth stored as 8 bits (--format png or tiff keeps 16 bits)")
    if img.frames > 1:
        notes.append(f"only the first of {img.frames} frames converted")
    return notes
