"""Reliability (issue 8): hostile inputs through the real CLI (also as an unprivileged user), the pixel
limit, a disk that fills up mid-batch, output paths with odd, colliding and linked names, temp files
left by killed writers, and 50 cancel/restart cycles of the engine.

The fuzzing and cancel machinery lives in ``benchmarks/`` (the ``benchmarks.fuzz`` package,
engine_cancel.py); these tests run small fixed-seed versions of it. The SIGKILL test is
``test_reliability_crash.py``.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_rgb
from PIL import Image as PILImage

from benchmarks import fuzz
from imgtrans import atomic, imageio as iio
from imgtrans.cli import main
from imgtrans.engine import ConvertOptions, convert, plan_jobs
from imgtrans.weights import load_model

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, symlinks, flock, POSIX permissions")
needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="recognises temp files through /proc/self/fd")


# ------------------------------------------------------------------------------------------- fuzz


@posix_only
def test_fuzz_subset_through_the_real_cli(tmp_path, tiny_models):
    """86 hostile inputs covering every category (fixed seed), one batch of the real CLI in a subprocess:
    no crash, no traceback, every file converted or reported with a reason (at least 30 and 25), exit
    code 1, the summary's counts add up, only the hidden file and the folder named like an image left
    out silently, nothing else on stderr, inputs untouched, no temp files."""
    root = tmp_path / "fuzz"
    cases = fuzz.generate(root, seed=1234, subset=True)
    assert len(cases) >= 60 and {c.category for c in cases} >= set(fuzz.CATEGORIES)
    out = tmp_path / "out"
    rep = fuzz.run_batch("subset", cases, [root], out, tiny_models["denoise"], ["-r", "--max-pixels", "4000000"],
                         timeout=240)
    detail = "\n".join(rep.problems + rep.unexpected + rep.noise)
    assert not rep.crash and rep.tracebacks == 0, detail
    assert not rep.problems, detail
    assert not rep.unexpected, detail
    assert not rep.noise, detail  # libtiff and Pillow warnings stay off the CLI's stderr
    assert rep.exit_code == 1  # some inputs fail, so the batch reports failure
    assert rep.converted + rep.reported + len(rep.ignored) == rep.tried
    assert rep.converted >= 30 and rep.reported >= 25
    assert sorted(i.split(":")[0] for i in rep.ignored) == sorted(
        repr(n) for n in [".hidden.png", "dir_named.png"]), rep.ignored


def test_unreadable_files_are_reported_for_a_non_root_user(tiny_models):
    """Root ignores chmod 000, so run the CLI as ``nobody``, where files really are unreadable: a chmod 000
    file, a write-only file, a chmod 000 folder and a file in a folder without search permission are
    each reported with a reason, and the one readable file converts."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to switch to an unprivileged user")
    work = Path(tempfile.mkdtemp(prefix="imgtrans-perms-"))  # pytest's tmp_path is private to root
    try:
        cases = fuzz.make_perms_tree(work / "in", seed=3)
        out, home = work / "out", work / "home"
        out.mkdir()
        home.mkdir()
        model = work / "m.safetensors"
        model.write_bytes(Path(tiny_models["denoise"]).read_bytes())
        for p in [work, work / "in", work / "in" / "perms", out, home]:
            os.chmod(p, 0o777)
        os.chmod(model, 0o644)
        rep = fuzz.run_batch("nobody", cases, [work / "in" / "perms"], out, model, ["-r"], hash_root=work / "in",
                             user="65534", env={"IMGTRANS_HOME": str(home)})
    finally:
        fuzz.rmtree(work)
    detail = "\n".join(rep.problems + rep.unexpected + rep.noise)
    assert not rep.crash and not rep.problems and not rep.unexpected, detail
    assert rep.converted == 1 and rep.reported == 4


# ------------------------------------------------------------------------------------- resources


def test_pixel_limit_is_configurable(tmp_path, tiny_models, capsys):
    write_rgb(tmp_path / "in" / "small.png", 30, 30)  # 900 pixels
    write_rgb(tmp_path / "in" / "big.png", 40, 32)  # 1280 pixels
    code = main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]),
                 "--max-pixels", "1000", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "big.png: image is 40x32 = 1280 pixels, over the limit of 1000" in err
    assert (tmp_path / "o" / "small.png").exists() and not (tmp_path / "o" / "big.png").exists()
    code = main(["convert", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]),
                 "--max-pixels", "2000", "--no-progress"])
    assert code == 0 and (tmp_path / "o" / "big.png").exists()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_pixel_limit_is_a_usage_error(tmp_path, tiny_models, value):
    write_rgb(tmp_path / "a.png")
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]),
                 "--max-pixels", value, "--no-progress"])
    assert code == 2


def _fail_part_writes_after(monkeypatch, ok_writes: int, err: int = errno.ENOSPC):
    """Make fsync of image temp files fail with ``err`` after ``ok_writes`` successful ones (a disk
    that fills up); returns the list of failed attempts."""
    real_fsync = os.fsync
    state = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def fsync(fd):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.endswith(".part"):
            with lock:
                if state["ok"] >= ok_writes:
                    state["failed"].append(target)
                    raise OSError(err, os.strerror(err))
                state["ok"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return state["failed"]


def _batch(folder: Path, n: int, size: int = 48) -> Path:
    for i in range(n):
        write_rgb(folder / f"img{i:02d}.png", size, size, seed=i)
    return folder


@needs_proc
def test_disk_full_leaves_no_partial_output_and_says_so(tmp_path, tiny_models, capsys):
    src = _batch(tmp_path / "in", 6)
    out = tmp_path / "out"
    failed = _fail_part_writes_after(monkeypatch := pytest.MonkeyPatch(), ok_writes=2)
    try:
        code = main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["denoise"]), "--no-progress"])
    finally:
        monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 1 and failed
    assert "disk full" in err and "Traceback" not in err
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and not [n for n in names if n.startswith(".") or n.endswith(".part")], names
    for p in out.iterdir():
        with PILImage.open(p) as im:
            im.load()
    # free space and re-run: the batch resumes and completes
    code = main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["denoise"]), "--no-progress"])
    assert code == 0 and "4 converted, 2 skipped" in capsys.readouterr().err


@needs_proc
def test_disk_full_stops_the_batch(tmp_path, tiny_models, monkeypatch):
    src = _batch(tmp_path / "in", 8)
    failed = _fail_part_writes_after(monkeypatch, ok_writes=2)
    model = load_model(tiny_models["denoise"])
    events = list(convert([src], model, ConvertOptions(output_dir=tmp_path / "out", io_threads=1)))
    summary = events[-1].summary
    assert len(summary.converted) == 2
    assert len(failed) <= 2, f"{len(failed)} writes were attempted on a full disk"


@needs_proc
def test_image_write_error_carries_errno(tmp_path, monkeypatch):
    _fail_part_writes_after(monkeypatch, ok_writes=0, err=errno.EDQUOT)
    img = iio.Image(np.zeros((4, 4, 3), np.float32), None, 8, None, None, "PNG")
    with pytest.raises(iio.ImageWriteError) as info:
        iio.write_image(img, tmp_path / "x.png")
    assert info.value.errno == errno.EDQUOT and str(info.value) == "disk quota exceeded"
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------- output paths


ODD_NAMES = ["new\nline.png", "tab\tname.png", "ünï cödé.png", "日本.jpg", "emoji😀.png", "rtl\u202egnp.png",
             "-dash.png",
             "back\\slash.png", "quote'\".png", "x" * 200 + ".png", "e\u0301.png", "\u00e9.png", "cr\r.png",
             "esc\x1b[31m.png"]


def test_output_paths_never_escape_or_collide(tmp_path, tiny_models):
    src = tmp_path / "in"
    for i, name in enumerate(ODD_NAMES):
        write_rgb(src / name, 8, 8, seed=i)
    for name in ["a.png", "a.jpg", "A.PNG", "a.webp", "b.tif", "b.tiff"]:
        write_rgb(src / "sub" / name, 8, 8)
    bad = os.fsencode(src) + b"/bad\xff\xfe.png"
    Path(os.fsdecode(bad)).write_bytes((src / "a.png" if (src / "a.png").exists() else src / "-dash.png").read_bytes())
    out = tmp_path / "out"
    explicit = [src / "sub" / ".." / "-dash.png", str(src / "sub") + "/../sub/a.png", src / "sub" / "a.jpg"]
    for inputs, flat in [([src], False), ([src], True), (explicit, False)]:
        jobs, skipped = plan_jobs(inputs, ConvertOptions(output_dir=out, recursive=True, keep_tree=not flat, fmt="png"))
        assert jobs and not [s for s in skipped if "leave" in s[1]]
        dsts = [j.dst.resolve() for j in jobs]
        for d in dsts:
            assert out.resolve() in d.parents, d
        assert len({str(d).lower() for d in dsts}) == len(dsts), "two inputs share an output"
    # and for real: everything converts into out/, one output per input, nothing anywhere else
    jobs, _ = plan_jobs([src], ConvertOptions(output_dir=out, recursive=True))
    before = set(tmp_path.rglob("*"))
    assert main(["convert", str(src), "-o", str(out), "-r", "-m", str(tiny_models["denoise"]), "--no-progress"]) == 0
    new = set(tmp_path.rglob("*")) - before
    assert all(p == out or out in p.parents for p in new)
    assert sorted(p for p in new if p.is_file()) == sorted(j.dst for j in jobs)


def test_control_characters_in_names_are_not_printed_raw(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "evil\x1b]0;pwned\x07.png").write_text("not an image")
    (src / "fake\nimgtrans: 99 converted, 0 skipped, 0 failed.png").write_text("not an image")
    main(["convert", str(src), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]), "--no-progress"])
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert not any(line.startswith("imgtrans: 99 converted") for line in err.splitlines())


@posix_only
def test_existing_links_in_the_output_folder_are_not_followed(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    write_rgb(src / "a.png")
    write_rgb(src / "sub" / "b.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.png"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(victim)  # a planted link where an output will go
    (out / "sub").symlink_to(outside)  # a planted link for a sub-folder
    code = main(["convert", str(src), "-o", str(out), "-r", "--overwrite", "-m", str(tiny_models["denoise"]),
                 "--no-progress"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("failed: ")
             and ln.endswith("would leave the output folder")]
    assert code == 1 and len(lines) == 2, err
    assert victim.read_bytes() == b"precious" and sorted(p.name for p in outside.iterdir()) == ["victim.png"]


def test_collision_renames_do_not_collide_with_other_outputs(tmp_path):
    src = tmp_path / "in"
    for name in ["a.png", "a.jpg", "a_png.png"]:
        write_rgb(src / name)
    jobs, _ = plan_jobs([src], ConvertOptions(output_dir=tmp_path / "out", fmt="png"))
    dsts = [j.dst.name.lower() for j in jobs]
    assert len(jobs) == 3 and len(set(dsts)) == 3, dsts


def test_rerun_with_output_folder_inside_the_input_folder(tmp_path, tiny_models, capsys):
    src = tmp_path / "photos"
    write_rgb(src / "a.png")
    args = ["convert", str(src), "-r", "-o", str(src / "converted"), "-m", str(tiny_models["denoise"]), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 0 and "0 converted" in err, err
    assert not (src / "converted" / "converted").exists()


def test_duplicate_paths_to_one_file_are_reported(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    write_rgb(src / "a.png")
    (src / "b.png").symlink_to("a.png")
    main(["convert", str(src), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]), "--no-progress"])
    err = capsys.readouterr().err
    assert "b.png" in err


# ------------------------------------------------------------------------------ stale temp files


def _stale(folder: Path, name: str, age: float = 60.0) -> Path:
    p = folder / name
    p.write_bytes(b"half an image")
    t = time.time() - age
    os.utime(p, (t, t))
    return p


@posix_only
def test_temp_files_of_killed_writers_are_swept(tmp_path, monkeypatch):
    """A SIGKILL mid-write leaves ``.NAME.XXXXXXXX.part``; the next write into that folder removes
    it - but never a temp file whose writer is alive (flock-ed), a fresh one, or another name."""
    import fcntl

    monkeypatch.setattr(atomic, "_SWEPT_DIRS", set())
    dead = _stale(tmp_path, ".a.png.k3j_x9q2.part")
    dead2 = _stale(tmp_path, ".photo 1.JPG.abcdefgh.part")
    alive = _stale(tmp_path, ".b.png.zzzzzzzz.part")
    fresh = _stale(tmp_path, ".c.png.yyyyyyyy.part", age=0)
    other = [_stale(tmp_path, n) for n in (".notes.txt.abcdefgh.part", ".a.png.short.part", "a.png.abcdefgh.part")]
    fd = os.open(alive, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live writer holds its temp file locked
    try:
        img = iio.Image(np.zeros((4, 4, 3), np.float32), None, 8, None, None, "PNG")
        iio.write_image(img, tmp_path / "new.png")
    finally:
        os.close(fd)
    assert not dead.exists() and not dead2.exists()
    assert alive.exists() and fresh.exists() and all(p.exists() for p in other)
    assert (tmp_path / "new.png").exists()


def test_engine_resume_cleans_up_after_a_killed_write(tmp_path, tiny_models, monkeypatch):
    monkeypatch.setattr(atomic, "_SWEPT_DIRS", set())
    src = _batch(tmp_path / "in", 3)
    out = tmp_path / "out"
    out.mkdir()
    _stale(out, ".img01.png.q1w2e3r4.part")  # what a SIGKILL during img01's write leaves
    model = load_model(tiny_models["denoise"])
    events = list(convert([src], model, ConvertOptions(output_dir=out)))
    assert events[-1].summary.ok
    assert sorted(p.name for p in out.iterdir()) == ["img00.png", "img01.png", "img02.png"]


def test_sweep_can_be_called_directly(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_SWEPT_DIRS", set())
    dead = _stale(tmp_path, ".a.tiff.abcdefgh.part")
    iio.sweep_stale_temp_files(tmp_path)
    assert not dead.exists()


def test_resume_with_nothing_to_do_still_removes_stale_temp_files(tmp_path, tiny_models, monkeypatch):
    monkeypatch.setattr(atomic, "_SWEPT_DIRS", set())
    src = _batch(tmp_path / "in", 2)
    out = tmp_path / "out"
    model = load_model(tiny_models["denoise"])
    list(convert([src], model, ConvertOptions(output_dir=out)))
    monkeypatch.setattr(atomic, "_SWEPT_DIRS", set())  # a new process
    stale = _stale(out, ".img01.png.q1w2e3r4.part")
    events = list(convert([src], model, ConvertOptions(output_dir=out)))
    assert len(events[-1].summary.skipped) == 2
    assert not stale.exists()


@posix_only
def test_writer_holds_its_temp_file_locked_until_renamed(tmp_path, monkeypatch):
    import fcntl

    seen = {}
    real_replace = os.replace

    def replace(a, b):
        fd = os.open(a, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen["locked"] = False
            except OSError:
                seen["locked"] = True
        finally:
            os.close(fd)
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    img = iio.Image(np.zeros((4, 4, 3), np.float32), None, 8, None, None, "PNG")
    iio.write_image(img, tmp_path / "x.png")
    assert seen == {"locked": True} and [p.name for p in tmp_path.iterdir()] == ["x.png"]


# ----------------------------------------------------------------------------------------- threads


@needs_proc  # RSS and thread counts from /proc
def test_engine_survives_50_cancel_restart_cycles():
    """50 runs of three small images through a tiny denoiser, each stopped at a random event (cancel
    event / generator closed) or run to the end, at least 20 of them stopped early: no deadlock, every
    stop within 5 s, Python threads back to baseline after each run, OS threads not grown, RSS grown by
    less than 64 MB."""
    from benchmarks import engine_cancel

    fig = engine_cancel.run(iterations=50, images=3, size=48, seed=7, deadline_s=60, model_kind="denoise")
    assert not fig.problems, "\n".join(fig.problems)
    assert fig.iterations == 50 and fig.deadlocks == 0 and fig.thread_leaks == 0
    assert fig.cancelled + fig.closed >= 20
    assert fig.rss_growth_mb < 64, fig
    assert fig.os_threads_end <= fig.os_threads_start, fig
    assert fig.max_stop_latency_s < 5
