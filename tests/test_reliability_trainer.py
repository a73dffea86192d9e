"""Issue 8, crash safety of the trainer. A tiny CycleGAN run is SIGKILLed inside a checkpoint write four
times (half of ``weights.safetensors``, half of ``state.pt``, half of ``info.json``, and the first write
of the next checkpoint, empty): the partial file stays in a hidden temp folder that the next start
removes, it is never taken as the latest checkpoint, and the last complete one loads (finite weights,
``state.pt`` through ``torch.load(weights_only=True)``). The same command without the kill resumes from
it and ends with the uninterrupted run's losses exactly. Also ``--max-minutes``: the run stops itself
with a checkpoint (exit 75) and the same command continues from it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

TINY_ARGS = ["--ngf", "8", "--n-blocks", "2", "--ndf", "8", "--size", "32", "--batch-size", "2", "--pool-size", "3",
             "--no-tensorboard", "--sample-every", "0", "--eval-every", "0", "--quiet", "--no-export"]  # fmt: skip
STEPS, SAVE_EVERY = 8, 2

# Runs the trainer CLI with the checkpoint writer wrapped: on write number KILL_AT_WRITE (1-based; each
# checkpoint writes weights.safetensors, state.pt, info.json in that order) it writes only the first
# KILL_FRACTION of the bytes, fsyncs them and kills its own process with SIGKILL.
KILLER = textwrap.dedent(
    """
    import os, runpy, signal, sys
    import imgtrans.atomic as atomic  # checkpoint files are written by atomic.write_synced

    at, fraction, calls = int(os.environ["KILL_AT_WRITE"]), float(os.environ["KILL_FRACTION"]), [0]
    real = atomic.write_synced

    def write(path, data):
        calls[0] += 1
        if calls[0] < at:
            return real(path, data)
        with open(path, "wb") as fh:
            fh.write(data[: int(len(data) * fraction)])
            fh.flush()
            os.fsync(fh.fileno())
        with open(os.environ["KILL_MARKER"], "w") as fh:
            fh.write(str(path))
        os.kill(os.getpid(), signal.SIGKILL)

    atomic.write_synced = write
    sys.argv = ["imgtrans-train", *sys.argv[1:]]
    runpy.run_module("imgtrans.training.cli", run_name="__main__", alter_sys=True)
    """
)


def make_folder(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng(seed * 100 + i)
        yy, xx = np.mgrid[0:40, 0:48]
        base = np.stack([xx * 5 + seed * 20, yy * 6, (xx * yy) % 97 * 2], -1)
        Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0,
                                255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def losses(run: Path) -> list[list[str]]:
    rows = list(csv.reader((run / "losses.csv").read_text().splitlines()))
    return [[r[0], *r[4:]] for r in rows[1:]]  # step + losses (not lr/time)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the same command (in-process: cheaper than a subprocess)."""
    from imgtrans.training.config import resolve
    from imgtrans.training.loop import train

    home = tmp_path_factory.mktemp("ref-home")
    data = tmp_path_factory.mktemp("data")
    a, b = make_folder(data / "A", 6, 1), make_folder(data / "B", 6, 2)
    old_home, old_threads = os.environ.get("IMGTRANS_HOME"), torch.get_num_threads()
    os.environ["IMGTRANS_HOME"] = str(home)
    torch.set_num_threads(1)
    try:
        cfg = resolve("cyclegan", dict(ngf=8, n_blocks=2, ndf=8, size=32, batch_size=2, pool_size=3, tensorboard=False,
                                       export=False, sample_every=0, eval_every=0, domain_a=str(a), domain_b=str(b),
                                       name="ref", steps=STEPS, save_every_steps=SAVE_EVERY))  # fmt: skip
        list(train(cfg, None, resume="auto"))
    finally:
        torch.set_num_threads(old_threads)
        if old_home is None:
            os.environ.pop("IMGTRANS_HOME", None)
        else:
            os.environ["IMGTRANS_HOME"] = old_home
    return a, b, losses(home / "runs" / "ref")


# One run killed four times in a row, each time inside a checkpoint write, each time resumed with the
# same command: (write number counted from the start of that process, fraction written, step of the
# checkpoint that must be the latest afterwards). A resumed process starts from step 2, so its first
# save is step 4 again. Step 4 is interrupted half-way through its weights, its state.pt, its info.json;
# then step 4 completes and the first write of step 6 dies with 0 bytes written.
KILLS = [
    ("weights-half", 4, 0.5, 2),
    ("state-half", 2, 0.5, 2),
    ("info-half", 3, 0.5, 2),
    ("next-weights-empty", 4, 0.0, 4),
]


def test_kill_during_checkpoint_writes_then_resume(reference, tmp_path, isolated_home):
    from safetensors.torch import load_file

    from imgtrans.training.checkpoint import (
        STATE,
        WEIGHTS,
        Checkpointer,
        find_checkpoint,
        list_checkpoints,
        load_checkpoint,
    )

    a, b, ref_losses = reference
    run = isolated_home / "runs" / "victim"
    folder = run / "checkpoints"
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    marker = tmp_path / "killed-at"
    args = ["--domain-a", a, "--domain-b", b, "--name", "victim", *TINY_ARGS,
            "--steps", STEPS, "--save-every-steps", SAVE_EVERY]  # fmt: skip
    for case, at, fraction, good_step in KILLS:
        env = dict(os.environ, OMP_NUM_THREADS="1", KILL_AT_WRITE=str(at), KILL_FRACTION=str(fraction),
                   KILL_MARKER=str(marker), PYTHONPATH=str(ROOT))  # fmt: skip
        res = subprocess.run([sys.executable, str(killer), *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert res.returncode == -signal.SIGKILL, f"[{case}] {res.stderr}"
        # the kill landed inside a checkpoint write: a hidden temp folder holds the partial file
        partial = Path(marker.read_text())
        marker.unlink()
        assert partial.parent.parent == folder and partial.parent.name.startswith(".tmp-step_"), partial
        assert partial.is_file()
        # the resumed process removed the previous kill's temp folder: only this one is left
        assert [p for p in folder.iterdir() if p.name.startswith(".")] == [partial.parent], case
        print(f"\n[{case}] killed writing {partial.parent.name}/{partial.name} ({partial.stat().st_size} bytes); "
              f"folder: {sorted(p.name for p in folder.iterdir())}", end="")

        # no partial checkpoint is taken as the latest; the last complete one is intact
        assert [c.step for c in list_checkpoints(folder)] == list(range(SAVE_EVERY, good_step + 1, SAVE_EVERY)), case
        latest = find_checkpoint(run)
        assert latest.name == f"step_{good_step:08d}", case
        weights = load_file(str(latest / WEIGHTS))
        assert weights and all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
        state = torch.load(latest / STATE, map_location="cpu", weights_only=True)
        assert state["step"] == good_step
        assert json.loads((latest / "info.json").read_text())["step"] == good_step
        loaded = load_checkpoint(latest)
        assert {"G_A", "G_B"} <= set(loaded.weights)
        assert len(losses(run)) < STEPS  # it really died mid-run

    # the same command without the killer: resumes from the good checkpoint, cleans the temp folders,
    # and finishes with exactly the uninterrupted run's losses
    res = subprocess.run([sys.executable, "-m", "imgtrans.training.cli", *map(str, args)], cwd=ROOT,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"continuing from {latest}" in res.stderr and f"(iteration {good_step})" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], sorted(p.name for p in folder.iterdir())
    assert Checkpointer(folder).latest().step == STEPS
    load_checkpoint(find_checkpoint(run))
    assert losses(run) == ref_losses
    print()


def test_max_minutes_stops_with_a_checkpoint_and_the_same_command_continues(tmp_path, isolated_home):
    """``--max-minutes``: the run stops itself with a checkpoint and exit status 75 (a session that ends
    at a fixed time does not kill it mid-way and lose what came after the last checkpoint); the same
    command continues from that checkpoint and is stopped by its own time limit again; ``--max-minutes 0``
    is refused (exit 2) and changes nothing."""
    from imgtrans.training.checkpoint import Checkpointer

    a, b = make_folder(tmp_path / "A", 6, 1), make_folder(tmp_path / "B", 6, 2)
    args = ["--domain-a", a, "--domain-b", b, "--name", "boxed", *TINY_ARGS, "--steps", 100000, "--max-minutes", 0.03]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    folder = isolated_home / "runs" / "boxed" / "checkpoints"
    steps = []
    for attempt in range(2):
        res = subprocess.run([sys.executable, "-m", "imgtrans.training.cli", *map(str, args)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert res.returncode == 75, res.stderr
        assert "after --max-minutes 0.03; checkpoint saved" in res.stderr and "Traceback" not in res.stderr
        latest = Checkpointer(folder).latest()
        assert latest is not None and 0 < latest.step < 100000
        assert f"stopped at iteration {latest.step} " in res.stderr
        if attempt:
            assert f"(iteration {steps[-1]})" in res.stderr, res.stderr  # continued, did not restart
            assert latest.step > steps[-1]
        steps.append(latest.step)
    bad = subprocess.run([sys.executable, "-m", "imgtrans.training.cli", *map(str, args[:-1]), "0"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--max-minutes must be more than 0" in bad.stderr
    assert Checkpointer(folder).latest().step == steps[-1]  # a refused command changes nothing
