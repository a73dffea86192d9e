"""Run small jobs (thumbnails, folder scans, display decodes, model checks) off the GUI thread.

``submit(fn, *args, done=cb, error=cb)`` runs ``fn`` in a thread pool and calls ``done(result)`` or
``error(exception)`` back in the GUI thread through one queued signal. Callbacks whose owner widget
has been deleted are dropped quietly.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from imgtrans.gui.qtcompat import emit

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Lives in the GUI thread; worker threads emit, the slot runs callbacks in the GUI thread."""

    deliver = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.deliver.connect(self._call)

    def _call(self, callback: Callable[[Any], None], value: Any) -> None:
        try:
            callback(value)
        except RuntimeError as exc:  # "Internal C++ object already deleted": the widget went away
            if "already deleted" not in str(exc):
                raise
            log.debug("dropped a callback for a deleted object")


_relay: _Relay | None = None
_local = threading.local()
_pools: dict[str, QThreadPool] = {}
_lock = threading.Lock()


def relay() -> _Relay:
    """Create once, from the GUI thread (the first window does)."""
    global _relay
    if _relay is None:
        _relay = _Relay()
    return _relay


def pool(name: str = "io") -> QThreadPool:
    """``io``: decoding and folder scans (2 threads); ``model``: one model job at a time."""
    with _lock:
        if name not in _pools:
            p = QThreadPool()
            p.setMaxThreadCount(1 if name == "model" else 2)
            p.setExpiryTimeout(5000)
            _pools[name] = p
        return _pools[name]


class _Job(QRunnable):
    def __init__(self, fn, args, done, error, relay_obj: _Relay) -> None:
        super().__init__()
        self.fn, self.args, self.done, self.error, self.relay = fn, args, done, error, relay_obj
        self.setAutoDelete(True)

    def run(self) -> None:
        if not getattr(_local, "lowered", False):  # pool threads yield the CPU to the GUI thread
            _local.lowered = True
            background_priority()
        try:
            result = self.fn(*self.args)
        except Exception as exc:  # every failure goes back to the GUI
            log.debug("background job failed", exc_info=True)
            if self.error is None:
                log.warning("background job failed: %s", exc)
            self._send(self.error, exc)
            return
        self._send(self.done, result)

    def _send(self, callback, value) -> None:
        if callback is None:
            return
        try:
            emit(self.relay.deliver, callback, value)
        except RuntimeError:  # the application is shutting down and the relay is gone
            log.debug("result dropped at shutdown")


def submit(fn: Callable, *args, done: Callable | None = None, error: Callable | None = None,
           pool_name: str = "io") -> None:
    pool(pool_name).start(_Job(fn, args, done, error, relay()))


def wait_all(msecs: int = 5000) -> None:
    """At exit: let running jobs end (queued ones are dropped)."""
    for p in list(_pools.values()):
        p.clear()
        p.waitForDone(msecs)


def settle_gc() -> None:
    """Move everything allocated so far (torch's modules, a loaded model) out of the cyclic garbage
    collector's reach. A full collection over torch's objects takes 100-200 ms with the GIL held,
    which would freeze the window mid-batch; after this, collections only scan newer objects.
    Objects stay reference-counted, so nothing leaks that would otherwise be freed promptly."""
    gc.freeze()


def background_priority(thread: QThread | None = None) -> None:
    """Call at the start of a long compute thread (batch, preview, training): it and the threads it
    starts (the engine's, torch's compute threads) yield the CPU to the GUI thread, so the window
    answers at once even when every core is busy. Linux keeps a nice value per thread, inherited by
    threads created later; elsewhere Qt's thread priority does the job."""
    if thread is not None:
        thread.setPriority(QThread.Priority.LowPriority)
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 8))
        except (OSError, AttributeError):
            log.debug("could not lower the thread priority", exc_info=True)
