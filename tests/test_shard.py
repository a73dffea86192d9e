"""Sharded batch conversion (issue 28): --shard, launcher environments, shard summaries, --json,
and the real thing: torchrun with two CPU processes, three --shard processes with one of them
SIGKILLed and re-run, on 20 real photos of mixed sizes (one corrupt) and the bundled sr-x2-quick."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePath

import numpy as np
import pytest
from PIL import Image as PILImage

from imgtrans.cli import main
from imgtrans.cli_report import PlainProgress
from imgtrans.run_summary import combine
from imgtrans.shard import Shard, ShardError, from_env, jump_hash, parse_shard, relative_key, shard_of

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "data" / "photos"
SAMPLES = ROOT / "resources" / "samples"
MODEL = "sr-x2-quick"  # the fastest bundled model
CORRUPT = "scans/torn.png"


# ------------------------------------------------------------------------------- assignment, env


def test_shard_values_are_parsed_and_checked():
    assert parse_shard("2/5") == Shard(2, 5, "--shard")
    for bad in ("5/5", "1/0", "-1/3", "a/b", "3"):
        with pytest.raises(ShardError):
            parse_shard(bad)
    assert main(["convert", "x.png", "-o", "o", "-m", MODEL, "--shard", "3/3"]) == 2


def test_every_input_has_one_shard_and_adding_files_moves_none():
    keys = [f"scans/{i:05d}.tif" for i in range(4000)]
    four = {k: shard_of(k, 4) for k in keys}
    counts = np.bincount(list(four.values()), minlength=4)
    assert counts.min() > 900 and counts.max() < 1100  # balanced by count
    more = {k: shard_of(k, 4) for k in keys + [f"new/{i}.png" for i in range(500)]}
    assert all(more[k] == four[k] for k in keys)  # a file's shard depends on its own path only
    five = {k: shard_of(k, 5) for k in keys}
    moved = [k for k in keys if five[k] != four[k]]
    assert 0.15 < len(moved) / len(keys) < 0.25 and all(five[k] == 4 for k in moved)  # ~1/5, all to the new shard
    assert shard_of(PurePath("a") / "b.png", 7) == shard_of("a/b.png", 7) == shard_of("a\\b.png", 7)
    assert jump_hash(12345, 1) == 0 and {jump_hash(k, 3) for k in range(100)} == {0, 1, 2}


def test_relative_key_of_a_skipped_path():
    assert relative_key(Path("in/sub/x.txt"), [Path("other"), Path("in")]) == PurePath("sub/x.txt")
    assert relative_key(Path("in/a.png"), [Path("in/a.png")]) == PurePath("a.png")


def test_launcher_environments():
    assert not from_env({}).active
    torchrun = from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (torchrun.index, torchrun.count, torchrun.source, torchrun.local_rank,
            torchrun.local_world) == (3, 4, "torchrun", 1, 2)
    array = from_env({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"})
    assert (array.index, array.count, array.source, array.local_rank) == (2, 4, "slurm-array", None)
    stepped = from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3",
                        "SLURM_ARRAY_TASK_STEP": "2"})
    assert (stepped.index, stepped.count) == (2, 3)
    with pytest.raises(ShardError, match="--shard"):  # --array=1,5,9 has no shard numbering
        from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"})
    srun = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
            "SLURM_STEP_TASKS_PER_NODE": "4(x2)"}
    # a batch script sees SLURM_PROCID=0 and the job's SLURM_NTASKS too: only an srun step is a shard
    assert not from_env({**srun, "SLURM_PROCID": "0"}).active
    step = from_env({**srun, "SLURM_STEP_ID": "0"})
    assert (step.index, step.count, step.source, step.local_rank, step.local_world) == (5, 8, "srun", 1, 4)
    both = from_env({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3",
                     "RANK": "1", "WORLD_SIZE": "2", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"})
    assert (both.index, both.count, both.source) == (3, 6, "slurm-array+torchrun")  # torchrun wins over srun


def test_device_errors_name_the_devices(tmp_path, monkeypatch, capsys):
    import torch

    (tmp_path / "in").mkdir()
    PILImage.open(PHOTOS / "cat.png").save(tmp_path / "in" / "cat.png")
    args = ["convert", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", MODEL, "--no-progress"]
    assert main([*args, "--device", "gpu"]) == 2 and "cuda:N" in capsys.readouterr().err

    class Props:
        name, total_memory = "NVIDIA Test", 80 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props())
    assert main([*args, "--device", "cuda:2"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda:2" in err and "2 CUDA device(s): cuda:0 (NVIDIA Test, 80 GiB), cuda:1" in err, err
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*args, "--device", "cuda:0"]) == 2 and "no CUDA GPU" in capsys.readouterr().err


def test_combined_exit_codes():
    def rec(i, n, status="finished", failed=(), started="2026-01-01T00:00:00+00:00"):
        return {"shard": {"index": i, "count": n}, "status": status, "started": started, "host": "elsewhere",
                "pid": 1, "converted": 2, "existing": 1, "skipped": [],
                "failed": [{"path": p, "reason": "bad"} for p in failed],
                "planned": 9, "seconds": 1.0, "model": "m"}

    assert combine([rec(0, 2), rec(1, 2)])["exit_code"] == 0
    assert combine([rec(0, 2), rec(1, 2, failed=["x.png"])])["exit_code"] == 1
    assert combine([rec(0, 2), rec(1, 2, status="cancelled", failed=["x.png"])])["exit_code"] == 130
    missing = combine([rec(0, 2)])
    assert missing["exit_code"] == 1 and missing["missing"] == [1]
    killed = combine([rec(0, 2), rec(1, 2, status="running")])
    assert killed["exit_code"] == 1 and killed["unfinished"][0]["state"] == "unknown"  # another host
    # an older launch with another shard count is left out, and said so
    newer = combine([rec(0, 3, status="running"), rec(0, 2, started="2026-02-01T00:00:00+00:00"),
                     rec(1, 2, started="2026-02-01T00:00:00+00:00")])
    assert newer["shards"] == 2 and newer["exit_code"] == 0 and "3 shard(s)" in newer["notes"][0]
    assert newer["converted"] == 4 and newer["existing"] == 2


def test_plain_progress_lines_for_logs():
    buf = io.StringIO()
    bar = PlainProgress(4, "imgtrans[1/2]", every=3600, file=buf)
    for step in (0.5, 0.5, 0.7, 0.3, 1.0, 1.0):
        bar.update(step)
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    # the first, then the last
    assert len(lines) == 2 and lines[0].startswith("imgtrans[1/2]: progress 1/4 images (25%)"), lines
    assert lines[1].startswith("imgtrans[1/2]: progress 4/4 images (100%)") and "s/image" in lines[1]


# ------------------------------------------------------------------------------ the real thing


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """20 real photos of mixed sizes and formats in a two-level tree; ``scans/torn.png`` is cut short.
    The eight 96 px test photos, the four samples scaled down, and seven crops of the samples."""
    root = tmp_path_factory.mktemp("shard-photos") / "in"
    (root / "scans").mkdir(parents=True)
    for p in sorted(PHOTOS.glob("*.png")):
        PILImage.open(p).save(root / p.name)
    samples = [PILImage.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    for i, (im, long_side) in enumerate(zip(samples, (128, 112, 144, 100))):
        scale = long_side / max(im.size)
        im.resize((round(im.width * scale), round(im.height * scale)), PILImage.LANCZOS).save(
            root / "scans" / f"sample_{i}.jpg", quality=92)
    crops = [(0, 64, 48), (1, 80, 120), (2, 72, 72), (3, 100, 60), (0, 56, 88), (1, 120, 90), (2, 40, 40)]
    for j, (k, w, h) in enumerate(crops):
        im = samples[k]
        box = (im.width // 3, im.height // 4)
        im.crop((*box, box[0] + w, box[1] + h)).save(root / "scans" / f"crop_{j}.{'png' if j % 2 else 'jpg'}")
    data = (root / "scans" / "crop_1.png").read_bytes()
    (root / CORRUPT).write_bytes(data[: len(data) // 3])
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 20
    return root


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", IMGTRANS_THREADS="1")


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object


def _outputs(out: Path) -> dict[str, np.ndarray]:
    found = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith("imgtrans-shard-"):
            with PILImage.open(p) as im:
                found[p.relative_to(out).as_posix()] = np.asarray(im.convert("RGB"))
    return found


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo, POSIX")
def test_torchrun_two_cpu_processes_equal_one_process(photos, tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    try:  # the reference: one process, one thread, in this process
        assert main(["convert", str(photos), "-o", str(tmp_path / "ref"), "-m", MODEL, "-r", "--no-progress",
                     "--threads", "1"]) == 1
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "imgtrans", "convert", str(photos), "-o", str(out), "-m", MODEL, "-r", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one corrupt file: exit 1
    events = _events(proc.stdout)
    done = [e for e in events if e["event"] == "done"]
    assert sorted(e["src"] for e in done) == sorted({e["src"] for e in done}) and len(done) == 19  # none twice
    assert {e["shard"] for e in done} == {"0/2", "1/2"}
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["src"].endswith(CORRUPT) and "corrupt" in failed[0]["reason"]
    assert proc.stderr.count(f"failed: {photos / CORRUPT}: truncated or corrupt") == 1  # reported once, by its shard
    # and in the whole run's list
    assert proc.stderr.count(f"imgtrans[all 2 shards]:   {photos / CORRUPT}: truncated") == 1
    starts = [e for e in events if e["event"] == "start"]
    assert sorted(e["shard"] for e in starts) == ["0/2", "1/2"] and sum(e["assigned"] for e in starts) == 20
    (combined,) = [e for e in events if e["event"] == "combined_summary"]
    assert (combined["shards"], combined["converted"], combined["failed"], combined["exit_code"]) == (2, 19, 1, 1)
    assert combined["missing"] == [] and combined["unfinished"] == []
    assert proc.stderr.count("imgtrans[all 2 shards]: 2 shard(s): 19 converted") == 1

    ref, got = _outputs(tmp_path / "ref"), _outputs(out)
    assert sorted(got) == sorted(ref) and len(got) == 19
    for name in ref:
        assert np.array_equal(got[name], ref[name]), name  # pixel-identical to the one-process run
    assert not list(out.rglob(".*"))  # no temp files
    assert main(["summary", str(out)]) == 1
    assert "19 converted, 0 already done, 0 skipped, 1 failed of 20 input(s)" in capsys.readouterr().out


def _start(photos: Path, out: Path, shard: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "imgtrans", "convert", str(photos), "-o", str(out), "-m", MODEL, "-r", "--json",
           "--shard", shard]
    with open(log, "wb") as stdout:
        return subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=_env(), cwd=ROOT)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_three_shards_cover_every_input_once_and_a_killed_one_resumes(photos, tmp_path, capsys):
    out = tmp_path / "out"
    rels = [p.relative_to(photos) for p in photos.rglob("*") if p.is_file()]
    assert sum(shard_of(r, 3) == 1 for r in rels) >= 6  # shard 1 has enough images to be killed mid-way
    logs = {i: tmp_path / f"shard{i}.jsonl" for i in range(3)}
    procs = {i: _start(photos, out, f"{i}/3", logs[i]) for i in (1, 0, 2)}
    deadline = time.monotonic() + 180
    while '"event": "done"' not in logs[1].read_text() and procs[1].poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    procs[1].send_signal(signal.SIGKILL)  # a shard dies mid-batch (after its first output)
    assert procs[1].wait(timeout=30) == -signal.SIGKILL
    for i in (0, 2):
        procs[i].communicate(timeout=180)
    after_kill = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    killed_run = _events(logs[1].read_text())
    assert 1 <= sum(e["event"] == "done" for e in killed_run) < next(e["assigned"] for e in killed_run
                                                                     if e["event"] == "start") - 1

    # the combination sees the killed shard (its summary still says running; its pid is gone)
    assert main(["summary", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["unfinished"] == [{"shard": 1, "host": report["unfinished"][0]["host"],
                                     "pid": procs[1].pid, "state": "killed"}]

    rerun = _start(photos, out, "1/3", logs[1])  # the same command again
    assert rerun.wait(timeout=180) in (0, 1)
    finals = {i: _events(logs[i].read_text()) for i in range(3)}
    redone = {Path(e["dst"]).relative_to(out).as_posix() for e in finals[1] if e["event"] == "done"}
    assert not redone & after_kill  # nothing done twice
    seen: dict[str, str] = {}
    for i, events in finals.items():
        for e in events:
            if e["event"] in ("done", "skipped", "failed"):
                assert e["shard"] == f"{i}/3"
                assert e["src"] not in seen, f"{e['src']} in shards {seen[e['src']]} and {i}"
                seen[e["src"]] = str(i)
            if e["event"] == "done":
                assert Path(e["dst"]).is_file()  # --json says what is on disk
    assert sorted(seen) == sorted(str(photos / r) for r in rels)  # every input exactly once
    assert sum(e["event"] == "failed" for events in finals.values() for e in events) == 1
    on_disk = _outputs(out)
    assert len(on_disk) == 19 and not list(out.rglob(".*"))  # nothing lost, no temp files
    listed = {Path(e["dst"]).relative_to(out).as_posix() for events in finals.values() for e in events
              if e["event"] == "done" or (e["event"] == "skipped" and e["reason"].startswith("output exists"))}
    assert listed == set(on_disk)
    assert main(["summary", str(out)]) == 1  # the corrupt file
    text = capsys.readouterr().out
    assert "3 shard(s):" in text and "1 failed of 20 input(s)" in text and "killed" not in text, text
    combined = json.loads(json.dumps(combine([json.loads(p.read_text())
                                              for p in out.glob("imgtrans-shard-*-of-3.json")])))
    assert combined["converted"] + combined["existing"] == 19


def test_json_events_of_a_plain_run_match_the_disk(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("cat.png", "mars.png"):
        PILImage.open(PHOTOS / name).resize((48, 48)).save(src / name)
    (src / "notes.txt").write_text("not an image")
    (src / "half.png").write_bytes((src / "cat.png").read_bytes()[:200])
    out = tmp_path / "out"
    args = ["convert", str(src), "-o", str(out), "-m", MODEL, "--json"]
    assert main(args) == 1
    captured = capsys.readouterr()
    events = _events(captured.out)  # stdout holds nothing but the events
    assert events[0]["event"] == "start" and events[-1]["event"] == "summary"
    assert events[0]["inputs"] == 3 and "shard" not in events[0]
    done = {Path(e["dst"]) for e in events if e["event"] == "done"}
    assert done == {p for p in out.rglob("*") if p.is_file()} == {out / "cat.png", out / "mars.png"}
    assert [(Path(e["src"]).name, e["reason"].startswith("not an image")) for e in events
            if e["event"] == "skipped"] == [("notes.txt", True)]
    assert [Path(e["src"]).name for e in events if e["event"] == "failed"] == ["half.png"]
    assert {k: events[-1][k] for k in ("converted", "skipped", "failed", "exit_code")} == {
        "converted": 2, "skipped": 1, "failed": 1, "exit_code": 1}
    assert "progress 1/3 images" in captured.err and "\r" not in captured.err  # stderr is no terminal: plain lines
    assert not list(out.glob("imgtrans-shard-*"))  # no shard summary outside a sharded run
    assert main(args) == 1  # a re-run: the outputs exist
    again = _events(capsys.readouterr().out)
    exists = [e for e in again if e["event"] == "skipped" and e["reason"].startswith("output exists")]
    assert sorted(Path(e["dst"]).name for e in exists) == ["cat.png", "mars.png"]
    assert again[-1]["existing"] == 2 and again[-1]["converted"] == 0


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_sigterm_cancels_and_reports_every_output_written(photos, tmp_path, capsys):
    """Slurm's time limit and torchrun send SIGTERM: the shard stops within an image, says so in its
    summary file (cancelled, exit 130) and --json names every output on disk."""
    import threading

    out = tmp_path / "out"

    def kill_at_first_output():
        deadline = time.monotonic() + 60
        while not any(p.suffix in (".png", ".jpg") for p in out.rglob("*")) and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # pytest itself must survive a late signal
    try:
        threading.Thread(target=kill_at_first_output, daemon=True).start()
        code = main(["convert", str(photos), "-o", str(out), "-m", MODEL, "-r", "--json", "--shard", "0/1"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    events = _events(capsys.readouterr().out)
    assert code == 130 and events[-1]["event"] == "summary" and events[-1]["cancelled"]
    done = {Path(e["dst"]) for e in events if e["event"] == "done"}
    assert done == {p for p in out.rglob("*") if p.is_file() and not p.name.startswith("imgtrans-shard")}
    assert 1 <= len(done) < 19 and not list(out.rglob(".*"))
    record = json.loads((out / "imgtrans-shard-0-of-1.json").read_text())
    assert record["status"] == "cancelled" and record["exit_code"] == 130 and record["converted"] == len(done)


def test_help_lists_the_exit_codes(capsys):
    for argv in (["--help"], ["convert", "--help"], ["summary", "--help"]):
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert "exit codes:" in text and "130  cancelled" in text and "1    some file failed" in text, argv
    assert main(["summary", "/nonexistent-folder"]) == 2
