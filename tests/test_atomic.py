"""imgtrans.atomic: the one atomic writer behind images, weights, ONNX graphs, run files and checkpoints."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from imgtrans import atomic
from imgtrans.atomic import AtomicWriteError


def test_write_bytes_replaces_keeps_the_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "run.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    assert atomic.write_bytes(target, b"new") == target
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = atomic.write_bytes(tmp_path / "a" / "b.json", b"x", make_parents=True)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.json", "run.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="exporter broke"), atomic.replacing(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("exporter broke")  # not an OSError: passes unchanged
    with pytest.raises(AtomicWriteError) as ei, atomic.replacing(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(ei.value, OSError) and ei.value.errno == errno.ENOSPC
    assert str(ei.value) == ei.value.strerror == "disk full" and ei.value.path == target
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(AtomicWriteError, match="output directory does not exist"):
        atomic.write_bytes(tmp_path / "missing" / "x.json", b"")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(AtomicWriteError, match="output path is a directory"):
        atomic.write_bytes(tmp_path / "d.json", b"")


def test_save_model_goes_through_it(tmp_path, monkeypatch):
    """weights.save_model: a full disk leaves the earlier weight file and no temp file."""
    from imgtrans.archs.dncnn import DnCNN
    from imgtrans.weights import load_model, save_model

    hp = {"channels": 3, "nf": 8, "depth": 3}
    path = save_model(tmp_path / "m.safetensors", DnCNN(**hp), "dncnn", hp)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, DnCNN(**hp), "dncnn", hp)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    monkeypatch.undo()
    assert load_model(path).arch == "dncnn"


def test_replacing_folder_swaps_and_recovers(tmp_path):
    final = tmp_path / "step_00000002"
    with atomic.replacing_folder(final) as tmp:
        (tmp / "a").write_bytes(b"1")
    with pytest.raises(AtomicWriteError), atomic.replacing_folder(final) as tmp:
        atomic.write_synced(tmp / "a", b"2")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (final / "a").read_bytes() == b"1" and [p.name for p in tmp_path.iterdir()] == [final.name]
    with atomic.replacing_folder(final) as tmp:
        atomic.write_synced(tmp / "a", b"3")
    assert (final / "a").read_bytes() == b"3" and [p.name for p in tmp_path.iterdir()] == [final.name]
    # a crash between the two renames leaves the old folder set aside: it is put back
    os.rename(final, tmp_path / f".old-{final.name}")
    (tmp_path / ".tmp-step_00000003-x").mkdir()
    atomic.recover_folders(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [final.name] and (final / "a").read_bytes() == b"3"
