"""How a batch shows on the console, shared by ``imgtrans convert`` and ``imgtrans-lite convert``:
one line on stderr per event that matters (skips, failures, the noise level measured on a file, the
backend, each output with ``-v``), progress on stderr, one JSON object per event on stdout with
``--json``, and the closing summary. No torch (tqdm is imported for a terminal's bar only), so the
lite bundle uses it too."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from imgtrans.cli_args import printable
from imgtrans.engine.planning import EXISTS

EXISTING_NAMED = 5  # a re-run names this many "output exists" skips, then counts the rest
CANCELLED = "cancelled; outputs written so far are complete, re-run the same command to resume"


class ProgressBar:
    """tqdm with whole image counts and one rate unit (seconds per image), while still moving
    smoothly by fractions of an image."""

    def __new__(cls, total: int, **kw):
        from tqdm import tqdm

        class Bar(tqdm):
            @property
            def format_dict(self):
                d = super().format_dict
                n, elapsed = d.get("n") or 0, d.get("elapsed") or 0.0
                d["done"] = int(n + 1e-9)
                d["per_image"] = f"{elapsed / n:.2f} s/img" if n > 0 else "? s/img"
                return d

        return Bar(total=total, unit="img", dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {done}/{total} [{elapsed}<{remaining}, {per_image}]", **kw)


class PlainProgress:
    """Progress for a log file or pipe (stderr is not a terminal): a plain line when an image
    completes, at most one every ``every`` seconds (and one for the last), with the count, the rate
    and the time left. Same calls as :class:`ProgressBar` (``update``, ``write``, ``close``)."""

    def __init__(self, total: int, tag: str = "imgtrans", every: float = 10.0, file=None):
        self._time = time.monotonic
        self.total, self.tag, self.every = total, tag, every
        self.file = file if file is not None else sys.stderr
        self.n, self.t0, self.last, self.shown = 0.0, self._time(), None, 0

    def update(self, amount: float) -> None:
        self.n += amount
        done, now = int(self.n + 1e-9), self._time()
        if done <= self.shown or (self.last is not None and now - self.last < self.every and done < self.total):
            return
        self.shown, self.last = done, now
        per = (now - self.t0) / max(self.n, 1e-9)
        left = int(per * max(self.total - self.n, 0))
        print(f"{self.tag}: progress {done}/{self.total} images ({100 * done // max(self.total, 1)}%), "
              f"{per:.2f} s/image, about {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left",
              file=self.file, flush=True)

    def write(self, text: str, file=None) -> None:
        print(text, file=file if file is not None else self.file, flush=True)

    def close(self) -> None:
        pass


def progress_display(total: int, tag: str):
    """A :class:`ProgressBar` when stderr is a terminal, else a :class:`PlainProgress`."""
    return ProgressBar(total) if sys.stderr.isatty() else PlainProgress(total, tag)


class Tally:
    """What a convert run did, counted from its events (so a cancelled run, whose engine summary
    never arrives, still reports it)."""

    def __init__(self) -> None:
        self.converted = 0
        self.existing = 0
        self.skipped: list[tuple[str, str]] = []  # every skip but "output exists"
        self.failed: list[tuple[str, str]] = []
        self.stopped = ""
        self.seconds = 0.0

    def as_json(self) -> dict:
        return {"converted": self.converted, "existing": self.existing, "skipped": len(self.skipped),
                "failed": len(self.failed), "failures": [{"path": p, "reason": r} for p, r in self.failed],
                "stopped": self.stopped, "seconds": round(self.seconds, 3)}


def cancel_on_signals(cancel: threading.Event) -> Callable[[], None]:
    """While the batch runs, SIGINT (Ctrl-C) and SIGTERM (Slurm's scancel and time limit, torchrun
    stopping the other ranks when one fails) set ``cancel``: the engine abandons the current image,
    finishes the writes in flight and reports them, so the summary, the shard's file and ``--json``
    name every output on disk; exit 130. A second signal interrupts at once. Returns the function
    that puts the old handlers back."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


class ConsoleReporter:
    """Renders the engine's events (:class:`imgtrans.engine.Event`) for a command line.

    ``tag`` starts the lines that are the tool's own (``imgtrans``, ``imgtrans[3/16]`` in a shard,
    ``imgtrans-lite``); a shard's per-file lines carry it too, because torchrun and srun interleave
    the shards' output. ``shard``: the shard's label for the JSON events, None outside a sharded
    run. Progress shows only after :meth:`start_progress`."""

    def __init__(self, tag: str, *, verbose: bool = False, json_lines: bool = False, shard: str | None = None):
        self.tag, self.verbose, self.json_lines, self.shard = tag, verbose, json_lines, shard
        self.prefix = f"{tag}: " if shard is not None else ""
        self.bar = None  # ProgressBar or PlainProgress
        self.tally = Tally()
        self.summary = None  # the engine's Summary, once the batch has finished
        self._fraction: dict[int, float] = {}
        self._existing = 0  # "output exists" skips seen without --verbose

    def start_progress(self, total: int) -> None:
        """Show progress on stderr for ``total`` images (:func:`progress_display`)."""
        self.bar = progress_display(total, self.tag)

    # ---- output

    def note(self, text: str) -> None:
        """A line of the tool's own on stderr."""
        print(f"{self.tag}: {printable(text)}", file=sys.stderr)

    def say(self, text: str, lead: str | None = None) -> None:
        """A line while the batch runs (above the progress bar)."""
        line = (self.prefix if lead is None else lead) + text
        (self.bar.write if self.bar else print)(line, file=sys.stderr)

    def emit(self, event: str, **fields) -> None:
        """One JSON object on stdout with ``--json``; nothing otherwise."""
        if not self.json_lines:
            return
        if self.shard is not None:
            fields["shard"] = self.shard
        # one write per line: the shards under torchrun/srun share one stdout, and a write of
        # under 4 KiB to a pipe is never split by another process's
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    def _advance(self, index: int, fraction: float) -> None:
        prev = self._fraction.get(index, 0.0)
        if self.bar and fraction > prev:
            self.bar.update(fraction - prev)
        self._fraction[index] = max(prev, fraction)

    # ---- events

    def follow(self, events: Iterable, cancel: threading.Event):
        """Render ``events`` (what :func:`imgtrans.engine.convert` yields, run with ``cancel``) until
        the batch ends; SIGINT/SIGTERM cancel it (:func:`cancel_on_signals`). Returns the engine's
        summary, or None when a second Ctrl-C interrupted at once (the line saying so is printed)."""
        restore_signals = cancel_on_signals(cancel)
        try:
            for event in events:
                self.handle(event)
        except KeyboardInterrupt:
            cancel.set()
            if self.bar:
                self.bar.close()
            print(f"{self.tag}: {CANCELLED}", file=sys.stderr)
            return None
        finally:
            restore_signals()
            if self.bar:
                self.bar.close()
        assert self.summary is not None
        return self.summary

    def handle(self, event) -> None:
        """Render one event (kinds without a method, ``plan`` and ``start``, show nothing)."""
        on = getattr(self, f"_on_{event.kind}", None)
        if on is not None:
            src = str(event.src) if event.src is not None else None
            dst = str(event.dst) if event.dst is not None else None
            on(event, src, dst)

    def _on_progress(self, event, src, dst) -> None:
        self._advance(event.index, event.fraction)

    def _on_done(self, event, src, dst) -> None:
        self.tally.converted += 1
        self.emit("done", src=src, dst=dst, seconds=round(event.seconds, 3))
        self._advance(event.index, 1.0)
        if self.verbose:
            self.say(f"done: {printable(event.src)} -> {printable(event.dst)} ({event.seconds:.1f} s)")

    def _on_skipped(self, event, src, dst) -> None:
        exists = event.message.startswith(EXISTS)
        if exists:
            self.tally.existing += 1
        else:
            self.tally.skipped.append((src, event.message))
        self.emit("skipped", src=src, dst=dst, reason=event.message)
        if exists and not self.verbose:
            self._existing += 1  # a resumed batch: the first few are named, the rest counted
            if self._existing > EXISTING_NAMED:
                return
        self.say(f"skipped: {printable(event.src)}: {printable(event.message)}")

    def _on_failed(self, event, src, dst) -> None:
        self.tally.failed.append((src or "<batch>", event.message))
        self.emit("failed", src=src or "<batch>", dst=dst, reason=event.message)
        if event.dst is not None:
            self._advance(event.index, 1.0)
        self.say(f"failed: {printable(event.src or 'batch')}: {printable(event.message)}")

    def _on_note(self, event, src, dst) -> None:
        self.emit("note", src=src, dst=dst, message=event.message)

    def _on_noise(self, event, src, dst) -> None:  # a denoiser on auto: the level measured on this file
        self.emit("noise", src=src, dst=dst, noise_level=event.noise_level, message=event.message)
        self.say(f"{printable(event.src)}: {printable(event.message)}")

    def _on_backend(self, event, src, dst) -> None:
        self.say(printable(event.message), f"{self.tag}: ")

    def _on_stopped(self, event, src, dst) -> None:
        self.tally.stopped = event.message
        self.emit("stopped", reason=event.message)
        self.say(printable(event.message), f"{self.tag}: ")

    def _on_cancelled(self, event, src, dst) -> None:
        self.say(CANCELLED, f"{self.tag}: ")

    def _on_finished(self, event, src, dst) -> None:
        self.summary = event.summary
        self.tally.seconds = event.seconds

    # ---- the end

    def print_summary(self, output: Path | str) -> None:
        """The closing lines on stderr: counts, what the output formats could not keep, the
        failures one per line, why the batch stopped early."""
        summary = self.summary
        if self._existing > EXISTING_NAMED:
            self.note(f"{self._existing - EXISTING_NAMED} more input(s) skipped: output exists (--verbose names them)")
        self.note(f"{len(summary.converted)} converted, {len(summary.skipped)} skipped, "
                  f"{len(summary.failed)} failed in {summary.seconds:.1f} s; outputs in {output}")
        notes: dict[str, list[Path]] = {}
        for path, what in summary.notes:
            notes.setdefault(what, []).append(path)
        for what, paths in notes.items():
            shown = ", ".join(printable(p.name) for p in paths[:4])
            if len(paths) > 4:
                shown += f" and {len(paths) - 4} more"
            print(f"{self.tag}: note: {printable(what)}: {shown}", file=sys.stderr)
        if summary.failed:
            print(f"{self.prefix}failures:", file=sys.stderr)
            for path, reason in summary.failed:
                print(f"{self.prefix}  {printable(path)}: {printable(reason)}", file=sys.stderr)
        if summary.stopped:
            self.note(summary.stopped)
