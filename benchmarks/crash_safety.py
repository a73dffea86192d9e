#!/usr/bin/env python3
"""Kill ``imgtrans convert`` with SIGKILL at random moments, resume it, and prove nothing was lost.

A batch of small images (128-256 px, PNG/JPEG/WebP/TIFF in a two-level tree) is converted with a
tiny x2 super-resolution model. The batch process is killed with SIGKILL again and again, at moments
drawn at random from three kinds:

* ``startup``: while Python/torch start and the model loads (before any output);
* ``random``: after a random number of new outputs, at a random instant;
* ``write``: the instant a temporary ``.part`` file appears (an encode/write in flight).

Each kill is followed by a re-run of the same command (which resumes: existing outputs are skipped).
A few runs are interrupted with SIGINT (Ctrl-C) instead, which must exit with 130 and leave only
complete outputs. After every kill, every visible output must decode completely. After the final,
uninterrupted run:

* every input has exactly one output, it decodes fully, has the right size, and its pixels equal a
  reference conversion done in-process without interruptions;
* no temporary (``.part``) or other stray file is left in the output folder;
* no input was modified (sha256 + mtime before/after).

Usage::

    .venv/bin/python benchmarks/crash_safety.py                  # 100 images, >= 10 SIGKILLs, 2 SIGINTs
    .venv/bin/python benchmarks/crash_safety.py --images 20 --kills 3 --sigints 1

``tests/test_reliability_crash.py`` calls :func:`run` with a small batch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchmarks.fuzz import SUMMARY, hash_tree, picture, tiny_model  # noqa: E402


@dataclass
class Kill:
    mode: str  # startup | random | write | sigint
    after_s: float  # seconds since the process started
    outputs_before: int
    outputs_after: int
    parts_left: list[str]  # temp files present right after the process died
    exit_code: int | None
    finished_first: bool = False  # the run ended before the signal could be sent


@dataclass
class Result:
    images: int
    kills: list[Kill] = field(default_factory=list)
    runs: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exact_outputs: int = 0
    final_summary: str = ""

    @property
    def sigkills(self) -> int:
        return sum(k.mode != "sigint" and not k.finished_first for k in self.kills)

    @property
    def sigints(self) -> int:
        return sum(k.mode == "sigint" and not k.finished_first for k in self.kills)

    @property
    def mid_write(self) -> int:
        return sum(bool(k.parts_left) for k in self.kills if k.mode != "sigint")

    def figures(self) -> dict:
        modes: dict[str, int] = {}
        for k in self.kills:
            if not k.finished_first:
                modes[k.mode] = modes.get(k.mode, 0) + 1
        return {
            "images": self.images, "runs": self.runs, "sigkills": self.sigkills, "sigints": self.sigints,
            "kills_by_mode": modes,
            "kills_that_left_a_temp_file": self.mid_write,
            "temp_files_left_by_kills": sum(len(k.parts_left) for k in self.kills),
            "outputs_equal_to_reference": self.exact_outputs, "problems": len(self.problems),
            "seconds": round(self.seconds, 1),
        }


def make_inputs(root: Path, n: int, seed: int, sizes: tuple[int, int] = (128, 256)) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        ext = ["png", "jpg", "webp", "tiff"][i % 4]
        sub = root / ("" if i % 3 else f"set{i % 2}")
        sub.mkdir(parents=True, exist_ok=True)
        img = picture(rng, rng.randint(*sizes), rng.randint(*sizes))
        p = sub / f"img_{i:03d}.{ext}"
        img.save(p, **({"quality": 90} if ext == "jpg" else {"lossless": True} if ext == "webp" else {}))
        paths.append(p)
    return paths


def list_out(out: Path) -> tuple[list[Path], list[Path]]:
    """(complete outputs, temp/hidden files) under ``out``."""
    done, parts = [], []
    for dirpath, _dirs, files in os.walk(out):
        for f in files:
            (parts if f.startswith(".") else done).append(Path(dirpath) / f)
    return done, parts


def decodes(path: Path) -> str | None:
    try:
        with PILImage.open(path) as im:
            im.load()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: give the CLI the disposition an interactive terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cmd: list[str], env: dict, log) -> subprocess.Popen:
    # preexec_fn only when needed: it is not safe in a process with threads (e.g. under pytest with torch loaded)
    fix = _default_sigint if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else None
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=str(REPO), start_new_session=True,
                            preexec_fn=fix)


def run(n_images: int = 100, kills: int = 10, sigints: int = 2, seed: int = 0, work: Path | None = None,
        model_kind: str = "sr", verbose: bool = True, timeout: float = 600) -> Result:
    """Run the whole experiment; returns the figures and any problems found."""
    t_all = time.perf_counter()
    rng = random.Random(seed)
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="imgtrans-crash-")) if work is None else work
    src, out, ref = work / "in", work / "out", work / "ref"
    for d in (src, out, ref):
        shutil.rmtree(d, ignore_errors=True)
    make_inputs(src, n_images, seed)
    model = tiny_model(work / f"{model_kind}.safetensors", model_kind)
    before = hash_tree(src)
    res = Result(images=n_images)
    say = print if verbose else (lambda *a, **k: None)

    # Reference outputs, in-process and uninterrupted.
    from imgtrans.engine import ConvertOptions, convert, plan_jobs
    from imgtrans.weights import load_model

    loaded = load_model(model)
    for ev in convert([src], loaded, ConvertOptions(output_dir=ref, recursive=True)):
        if ev.kind == "failed":
            res.problems.append(f"reference conversion failed: {ev.src}: {ev.message}")
    jobs, _ = plan_jobs([src], ConvertOptions(output_dir=out, recursive=True))
    plan = {j.src: j.dst for j in jobs}

    cmd = [sys.executable, "-m", "imgtrans", "convert", str(src), "-o", str(out), "-m", str(model), "-r",
           "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log_path = work / "stderr.log"
    t_img = 0.05  # seconds per image, refined from observation
    startup_s = 4.0  # seconds before the first output, refined from observation
    plan_kills = (["sigint"] * sigints + ["startup"] * min(2, max(0, kills // 5))
                  + [rng.choice(["random", "write"]) for _ in range(kills)])
    rng.shuffle(plan_kills)
    deadline = time.monotonic() + timeout
    while True:
        done_now, _ = list_out(out)
        if len(done_now) >= n_images or time.monotonic() > deadline:
            break
        sent = sum(not k.finished_first for k in res.kills)
        if sent >= len(plan_kills):
            break
        mode = plan_kills[sent]
        remaining = n_images - len(done_now)
        left = len(plan_kills) - sent
        budget = max(0, int(2 * remaining / (left + 1)) - 1)
        # keep ~3 images per signal still to send (a kill lands a couple of images after its trigger)
        target_new = rng.randint(0, max(0, min(budget, remaining - 3 * left)))
        _, parts_before = list_out(out)
        with open(log_path, "ab") as log:
            t0 = time.monotonic()
            proc = start(cmd, env, log)
            res.runs += 1
            base = len(done_now)
            first_output_at = None
            signalled = False
            if mode == "startup":
                time.sleep(rng.uniform(0.0, startup_s * 0.9))
            else:
                while proc.poll() is None:
                    done, parts = list_out(out)
                    if len(done) > base and first_output_at is None:
                        first_output_at = time.monotonic()
                    fresh = set(parts) - set(parts_before)  # a temp file of this run: a write in flight
                    if len(done) - base >= target_new and (first_output_at is not None or (target_new == 0 and fresh)):
                        if mode == "write":
                            if fresh:
                                break
                        elif mode == "sigint":
                            break
                        else:
                            time.sleep(rng.uniform(0, t_img))
                            break
                    time.sleep(0.0003)
            n_before, _ = list_out(out)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if mode == "sigint" else signal.SIGKILL)
                signalled = True
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                res.problems.append(f"run {res.runs}: did not exit within 120 s after {mode}; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            elapsed = time.monotonic() - t0
        done, parts = list_out(out)
        if first_output_at is not None:
            startup_s = 0.5 * startup_s + 0.5 * (first_output_at - t0)
            made = len(done) - base
            if made > 1:
                t_img = 0.5 * t_img + 0.5 * max(0.005, (time.monotonic() - first_output_at) / made)
        new_parts = sorted(p.name for p in set(parts) - set(parts_before))
        k = Kill(mode, elapsed, len(n_before), len(done), new_parts, code, finished_first=not signalled)
        res.kills.append(k)
        say(f"run {res.runs:2d}: {mode:<7} after {elapsed:5.2f} s  outputs {len(n_before):3d} -> {len(done):3d}  "
            f"temp files left {len(new_parts)} (in folder: {len(parts)})  exit {code}"
            f"{'  (finished before the signal)' if not signalled else ''}")
        if signalled and mode == "sigint" and code != 130:
            res.problems.append(f"run {res.runs}: SIGINT gave exit code {code}, expected 130")
        if signalled and mode == "sigint" and new_parts:
            res.problems.append(f"run {res.runs}: SIGINT left temp files {new_parts}")
        if signalled and mode != "sigint" and code != -signal.SIGKILL:
            res.problems.append(f"run {res.runs}: exit code {code} after SIGKILL")
        for p in done:  # every visible output is complete at every moment
            why = decodes(p)
            if why:
                res.problems.append(f"run {res.runs}: visible output {p} is incomplete ({why})")

    # Final, uninterrupted run: must finish the batch, then clean up any temp files of killed writers.
    with open(log_path, "ab") as log:
        proc = start(cmd, env, log)
        res.runs += 1
        code = proc.wait(timeout=timeout)
    tail = log_path.read_bytes().decode("utf-8", "replace")
    m = list(SUMMARY.finditer(tail))
    res.final_summary = m[-1].group(0) if m else ""
    if code != 0:
        res.problems.append(f"final run exit code {code}: {tail[-500:]}")
    if "Traceback" in tail:
        res.problems.append("a traceback on stderr")
    say(f"final run: exit {code}; {res.final_summary}")

    # Checks.
    done, parts = list_out(out)
    for p in parts:
        res.problems.append(f"temp/hidden file left behind after the final run: {p.relative_to(out)}")
    expected = set(plan.values())
    for p in done:
        if p not in expected:
            res.problems.append(f"unexpected output {p.relative_to(out)}")
    from imgtrans.imageio import read_image

    for srcp, dst in plan.items():
        if not dst.exists():
            res.problems.append(f"LOST: {srcp.relative_to(src)} has no output")
            continue
        why = decodes(dst)
        if why:
            res.problems.append(f"CORRUPT: {dst.relative_to(out)}: {why}")
            continue
        try:
            got = read_image(dst)
            want = read_image(ref / dst.relative_to(out))
            src_img = read_image(srcp)
        except Exception as exc:  # noqa: BLE001
            res.problems.append(f"CORRUPT: {dst.relative_to(out)}: {exc}")
            continue
        if (got.height, got.width) != (src_img.height * loaded.scale, src_img.width * loaded.scale):
            res.problems.append(f"WRONG SIZE: {dst.relative_to(out)} is {got.width}x{got.height}")
        elif got.pixels.shape != want.pixels.shape or np.abs(got.pixels - want.pixels).max() > 1.5 / 255:
            res.problems.append(f"DIFFERS from the uninterrupted reference: {dst.relative_to(out)}")
        else:
            res.exact_outputs += int(np.array_equal(got.pixels, want.pixels))
    after = hash_tree(src)
    if before != after:
        res.problems.append(f"inputs modified: {sorted(set(before.items()) ^ set(after.items()))[:4]}")
    if res.sigkills < kills:
        res.problems.append(f"only {res.sigkills} SIGKILLs landed (wanted {kills}): the batch finished too fast")
    res.seconds = time.perf_counter() - t_all
    if own_work:
        shutil.rmtree(work, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--kills", type=int, default=12, help="SIGKILLs to land (at least)")
    ap.add_argument("--sigints", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="sr", choices=["sr", "denoise", "style"])
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    res = run(args.images, args.kills, args.sigints, args.seed, args.keep, args.model)
    fig = res.figures()
    print()
    print(json.dumps(fig, indent=2))
    for p in res.problems:
        print("PROBLEM:", p)
    print(f"{fig['images']} images, {fig['sigkills']} SIGKILLs + {fig['sigints']} SIGINTs over {fig['runs']} runs; "
          f"{fig['kills_that_left_a_temp_file']} kills left a temp file; files lost or corrupt: "
          f"{sum(p.startswith(('LOST', 'CORRUPT', 'DIFFERS', 'WRONG')) for p in res.problems)}; problems: "
          f"{len(res.problems)}")
    if args.json:
        args.json.write_text(json.dumps({**fig, "problem_list": res.problems}, indent=2))
    return 0 if not res.problems else 1


if __name__ == "__main__":
    sys.exit(main())
