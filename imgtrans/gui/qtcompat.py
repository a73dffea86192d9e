"""Work-arounds for Qt binding bugs. Every ``Signal.emit`` in this package goes through :func:`emit`.

PySide6 6.12.0 returns ``True`` from ``SignalInstance.emit()`` without taking a reference to it, so
each emit from Python lowers ``True``'s reference count by one. On Python 3.12+ ``True`` is immortal
and nothing happens; on 3.10/3.11 the count reaches zero after some thousands of emits (a big queue,
a long batch) and the interpreter aborts with "Fatal Python error: bool_dealloc". :func:`emit` gives
the reference back, only when a probe at import shows the binding has the bug.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def _emit_drops_a_reference() -> bool:
    if sys.version_info >= (3, 12):  # immortal True/False: counts are not tracked any more
        return False
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):  # give back what the probe itself took
        _incref(True)
    return lost >= 4


EMIT_DROPS_REFERENCE = _emit_drops_a_reference()


def emit(signal, *args):
    """``signal.emit(*args)``, minus the binding's reference-count bug (see the module docstring)."""
    result = signal.emit(*args)
    if EMIT_DROPS_REFERENCE and isinstance(result, bool):
        _incref(result)
    return result
