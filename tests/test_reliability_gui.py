"""Issue 8, threads: the real main window (offscreen, pytest-qt) starts a batch of four images in
64-px tiles and cancels it on its first progress event, 50 times in a row after a warm-up batch. Each
cycle must report back within 20 s (else a deadlock), leave no row "running", no ``.part`` file and
exactly the files the summary names; at least 80 % of the batches must be cancelled mid-way; Python
threads may end at most 2, OS threads at most 8 above the baseline, RSS at most 150 MB above it. A
full batch afterwards converts all four images."""

from __future__ import annotations

import gc
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import write_rgb

from imgtrans.gui.queue_model import Status
from imgtrans.paths import user_models_dir

CYCLES = 50
CYCLE_TIMEOUT = 20_000  # ms for one cancelled batch to report back: longer means a deadlock
THREAD_MARGIN = 2  # Python threads above the baseline after all cycles
OS_THREAD_MARGIN = 8  # OS threads (Qt pools, OpenMP) above the baseline
RSS_BOUND_MB = 150


def _status_field(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{name} not in /proc/self/status")


def rss_mb() -> float:
    return _status_field("VmRSS") / 1024


def os_threads() -> int:
    return _status_field("Threads")


def settle(qtbot, ms: int = 50) -> None:
    gc.collect()
    qtbot.wait(ms)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for RSS and thread counts")
def test_cancel_restart_50_times_without_leaks_or_deadlocks(qtbot, tmp_path, tiny_models):
    from imgtrans.gui import tasks
    from imgtrans.gui.window import MainWindow

    user_models_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_models["style"], user_models_dir() / tiny_models["style"].name)
    inputs = [write_rgb(tmp_path / "in" / f"img{i:02d}.png", 96, 96, seed=i) for i in range(4)]

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    qtbot.waitExposed(w)
    try:
        w.options.refresh_models(select="tiny-style")
        assert w.options.model_ref() == "tiny-style"
        w.options.tile_combo.setCurrentIndex(w.options.tile_combo.findData("manual"))
        w.options.tile_spin.setValue(64)  # several tiles per image: the cancel lands inside one
        w.add_paths(inputs)
        qtbot.waitUntil(lambda: len(w.queue.items) == 4 and all(i.probed for i in w.queue.items), timeout=10_000)

        def one_cycle(n: int):
            out = tmp_path / "out" / f"cycle{n:02d}"
            w.options.set_output_dir(out)
            seen = {"progress": 0, "cancel_at": None}

            def on_event(ev, batch_holder=[]):  # noqa: B006 - local to this cycle
                if ev.kind == "progress":
                    seen["progress"] += 1
                    if seen["cancel_at"] is None and w.batch is not None:
                        seen["cancel_at"] = time.perf_counter()
                        w.cancel_batch()

            t0 = time.perf_counter()
            with qtbot.waitSignal(w.batch_finished, timeout=CYCLE_TIMEOUT) as blocker:
                w.start_batch()
                assert w.batch is not None, f"cycle {n}: the batch did not start"
                w.batch.event.connect(on_event)
            summary = blocker.args[0]
            took = time.perf_counter() - t0
            assert summary is not None, f"cycle {n}: the batch never started ({w.message.text()})"
            assert not w.is_running() and w.progress.start_button.isEnabled()
            statuses = [i.status for i in w.queue.items]
            assert Status.RUNNING not in statuses, f"cycle {n}: a row stays 'running'"
            files = sorted(p.name for p in out.rglob("*") if p.is_file()) if out.exists() else []
            assert not [f for f in files if f.endswith(".part")], f"cycle {n}: partial files {files}"
            assert files == sorted(p.name for p in summary.converted), f"cycle {n}: stray files {files}"
            return summary, took, seen

        # warm-up: the first batch imports torch, starts the task pools, fills allocator caches
        summary, _, _ = one_cycle(0)
        settle(qtbot, 300)
        base_threads, base_os, base_rss = threading.active_count(), os_threads(), rss_mb()
        print(f"\nbaseline after warm-up: {base_threads} Python threads, {base_os} OS threads, RSS {base_rss:.1f} MB")

        cancelled, times, rss_trace = 0, [], []
        for n in range(1, CYCLES + 1):
            summary, took, _seen = one_cycle(n)
            times.append(took)
            cancelled += bool(summary.cancelled)
            if n % 10 == 0:
                settle(qtbot)
                rss_trace.append(round(rss_mb(), 1))
        settle(qtbot, 500)
        tasks.wait_all()
        settle(qtbot, 300)
        end_threads, end_os, end_rss = threading.active_count(), os_threads(), rss_mb()
        print(f"{CYCLES} cancel/restart cycles: {cancelled} cancelled mid-batch, batch time "
              f"median {sorted(times)[len(times) // 2] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
        print(f"Python threads {base_threads} -> {end_threads}, OS threads {base_os} -> {end_os}")
        print(f"RSS {base_rss:.1f} -> {end_rss:.1f} MB (+{end_rss - base_rss:.1f} MB); every 10 cycles: {rss_trace}")

        assert cancelled >= CYCLES * 0.8, f"only {cancelled} of {CYCLES} batches were cancelled mid-way"
        assert end_threads <= base_threads + THREAD_MARGIN, [t.name for t in threading.enumerate()]
        assert end_os <= base_os + OS_THREAD_MARGIN
        assert end_rss - base_rss < RSS_BOUND_MB
        # the window still works after all that: a full batch runs to the end
        w.options.set_output_dir(tmp_path / "out" / "final")
        with qtbot.waitSignal(w.batch_finished, timeout=60_000) as blocker:
            w.start_batch()
        assert blocker.args[0] is not None and blocker.args[0].ok and len(blocker.args[0].converted) == 4
    finally:
        if w.batch is not None:
            w.cancel_batch()
            w.batch.wait(10_000)
        tasks.wait_all()
