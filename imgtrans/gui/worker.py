"""The batch runs in a QThread that consumes :func:`imgtrans.engine.convert` and re-emits its events.

Everything slow happens here, off the GUI thread: importing torch, loading the model, planning
(folder walks), inference, encoding. Cancel sets the engine's ``threading.Event``; the engine stops
within one tile and never leaves a partial file. Progress events are thinned to ~20 per second so a
model with many tiny tiles cannot flood the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from imgtrans.engine import ConvertOptions, Summary, convert, output_dir_problem, plan_jobs
from imgtrans.gui.qtcompat import emit

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.05  # seconds between forwarded "progress" events


@dataclass
class BatchRequest:
    roots: list[Path]  # what the user added (files and folders), absolute
    keys: set[str]  # the queued files to convert (str(path) as collect_inputs reports them)
    model_ref: str  # catalog id or weight file path
    options: ConvertOptions


def check_output_dir(folder: Path) -> str | None:
    """None if outputs can be written into ``folder`` (created if missing), else a readable reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        reason = output_dir_problem(folder)  # the engine's write test, shared with the command line
        if reason is None:
            return None
    return f"Cannot write to the output folder {folder}: {reason}. Choose another output folder."


class BatchThread(QThread):
    """One batch. Signals arrive in the GUI thread (queued): ``status`` text while preparing,
    ``event`` for each engine event, ``error`` when the batch cannot start or stops as a whole, and
    always one ``batch_done`` with the engine's Summary (``None`` if it never started)."""

    status = Signal(str)
    event = Signal(object)
    error = Signal(str)
    batch_done = Signal(object)

    def __init__(self, request: BatchRequest, parent=None) -> None:
        super().__init__(parent)
        self.request = request
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        summary: Summary | None = None
        req = self.request
        from imgtrans.gui.tasks import background_priority

        background_priority(self)
        try:
            problem = check_output_dir(Path(req.options.output_dir))
            if problem:
                emit(self.error, problem)
                return
            emit(self.status, "Loading the model\u2026")
            from imgtrans.catalog import CatalogError
            from imgtrans.weights import ModelLoadError, open_model  # imports torch, here in the worker

            try:
                model, label = open_model(req.model_ref)
            except (CatalogError, ModelLoadError) as exc:
                emit(self.error, f"Cannot load the model: {exc}")
                return
            from imgtrans.gui.tasks import settle_gc

            settle_gc()  # no long garbage-collector pause in the GUI thread during the batch
            if self.cancel_event.is_set():
                summary = Summary(cancelled=True)
                return
            emit(self.status, "Planning\u2026")
            jobs, skipped = plan_jobs(req.roots, replace(req.options))
            jobs = [job for job in jobs if str(job.src) in req.keys]
            skipped = [(path, reason) for path, reason in skipped if str(path) in req.keys]
            log.info("batch: %d file(s) with %s -> %s", len(jobs), label, req.options.output_dir)
            last_progress = 0.0
            for ev in convert([], model, req.options, model_ref=label, cancel=self.cancel_event, plan=(jobs, skipped)):
                if ev.kind == "progress":
                    now = time.monotonic()
                    if now - last_progress < PROGRESS_INTERVAL and ev.fraction < 1.0:
                        continue
                    last_progress = now
                elif ev.kind == "failed":
                    log.warning("failed: %s: %s", ev.src, ev.message)
                elif ev.kind == "finished":
                    summary = ev.summary
                emit(self.event, ev)
        except Exception as exc:  # the window must hear about everything
            log.exception("batch crashed")
            emit(self.error, f"The batch stopped: {type(exc).__name__}: {exc}")
        finally:
            if summary is not None:
                log.info("batch finished: %d converted, %d skipped, %d failed%s in %.1f s",
                         len(summary.converted), len(summary.skipped), len(summary.failed),
                         " (cancelled)" if summary.cancelled else "", summary.seconds)
            emit(self.batch_done, summary)
