"""training/carry.py: a run carried to a fresh machine through the repository continues there."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from test_training import cyclegan_cfg, domains, losses_of, one_thread  # noqa: F401  (fixtures)

from imgtrans.training import events as ev
from imgtrans.training.checkpoint import Checkpointer, load_checkpoint
from imgtrans.training.loop import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def carry(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("carry", ROOT / "training" / "carry.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "CARRY", tmp_path / "carry")
    return mod


def _fresh_machine(monkeypatch, tmp_path, n: int) -> Path:
    home = tmp_path / f"home{n}"
    monkeypatch.setenv("IMGTRANS_HOME", str(home))
    return home / "runs"


def _lrs(run: Path) -> list[float]:
    return [float(row[2]) for row in list(csv.reader((run / "losses.csv").read_text().splitlines()))[1:]]


def _steps(events):
    return [e.step for e in events if isinstance(e, ev.Step)]


@pytest.mark.parametrize("slim", [False, True], ids=["exact", "slim"])
def test_a_carried_run_continues_on_a_fresh_machine(domains, carry, tmp_path, monkeypatch, slim):
    runs = _fresh_machine(monkeypatch, tmp_path, 1)
    list(train(cyclegan_cfg(domains, "straight", steps=4)))
    list(train(cyclegan_cfg(domains, "pair", steps=2)))
    before = load_checkpoint(Checkpointer(runs / "pair" / "checkpoints").latest().path)
    msg = carry.pack("pair", exact_limit_mb=0 if slim else 1000)
    assert "carried iteration 2" in msg and ("slim" in msg) == slim
    assert "already holds iteration 2" in carry.pack("pair", exact_limit_mb=1000)  # nothing newer: untouched

    runs2 = _fresh_machine(monkeypatch, tmp_path, 2)  # a new machine: no runs at all
    assert "continuing from the carried iteration 2" in carry.unpack("pair")
    got = load_checkpoint(Checkpointer(runs2 / "pair" / "checkpoints").latest().path)
    for net, tensors in before.weights.items():
        for key, value in tensors.items():
            assert got.weights[net][key].dtype == value.dtype
            tol = 1e-3 * float(value.abs().max()) if slim and value.is_floating_point() else 0
            assert torch.allclose(got.weights[net][key], value, atol=tol, rtol=0), (net, key)
    assert json.loads((runs2 / "pair" / "config.json").read_text())["name"] == "pair"

    events = list(train(cyclegan_cfg(domains, "pair", steps=4)))  # the recipe's same command
    assert _steps(events) == [3, 4]
    infos = " ".join(e.message for e in events if isinstance(e, ev.Info))
    assert "continuing from" in infos
    assert ("optimizer state G starts fresh" in infos) == slim
    rows = losses_of("pair")
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]  # the log went along and goes on
    ref = _lrs(tmp_path / "home1" / "runs" / "straight")
    if slim:  # fresh Adam: the LR ramps up again (over 200 iterations) instead of jumping to full size
        assert _lrs(runs2 / "pair") == pytest.approx([ref[0], ref[1], ref[2] / 200, ref[3] * 2 / 200])
    else:
        assert _lrs(runs2 / "pair") == ref
    if not slim:  # an exact carry is an uninterrupted run
        monkeypatch.setenv("IMGTRANS_HOME", str(tmp_path / "home1"))
        assert rows == losses_of("straight")
    assert "kept this machine's" in carry.unpack("pair")  # the local run is newer now


def test_nothing_to_carry_is_said(carry, tmp_path, monkeypatch):
    _fresh_machine(monkeypatch, tmp_path, 1)
    assert "no checkpoint" in carry.pack("absent", 8)
    assert "nothing carried" in carry.unpack("absent")
