"""Running the real ``imgtrans convert`` in a subprocess over a batch of cases: the command, a tiny
real model to run, the inputs' fingerprints before and after, and :func:`run_batch` that hands
everything to the oracle (:func:`benchmarks.fuzz.oracle.check_run`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fuzz.builders import Case
from benchmarks.fuzz.oracle import RunReport, check_run, plan_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    returncode: int | None  # None: killed after the timeout (a hang)
    stderr: str
    stdout: str
    seconds: float


def run_cli(inputs: list[str | Path], out: Path, model: str | Path, extra: list[str] = (), timeout: float = 900,
            user: str | None = None, env: dict | None = None) -> CliResult:
    """Run ``python -m imgtrans convert INPUTS -o OUT -m MODEL --no-progress EXTRA`` in a subprocess."""
    cmd = [sys.executable, "-m", "imgtrans", "convert", *map(str, inputs), "-o", str(out), "-m", str(model),
           "--no-progress", *extra]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] + cmd
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=str(REPO),
                            start_new_session=True)
    try:
        out_b, err_b = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out_b, err_b = proc.communicate()
        code = None
    return CliResult(code, err_b.decode("utf-8", "replace"), out_b.decode("utf-8", "replace"), time.perf_counter() - t0)


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (links not followed, unreadable files noted)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                try:
                    with open(p, "rb") as fh:
                        out[p] = hashlib.sha256(fh.read()).hexdigest()
                except OSError as exc:
                    out[p] = f"unreadable:{exc.errno}"
                out[p] += f":{stat.S_IMODE(st.st_mode):o}:{st.st_mtime_ns}"
            elif stat.S_ISLNK(st.st_mode):
                out[p] = "link:" + os.readlink(p)
    return out



def tiny_model(path: Path, kind: str = "denoise") -> Path:
    """A tiny real model file (same families as the tests' fixtures)."""
    import torch

    from imgtrans.archs import DnCNN, ResnetGenerator, SRResNet
    from imgtrans.weights import save_model

    arch, cls, hp = {
        "style": ("cyclegan_resnet", ResnetGenerator, {"ngf": 8, "n_blocks": 2}),
        "sr": ("srresnet", SRResNet, {"nf": 8, "n_blocks": 2, "scale": 2}),
        "denoise": ("dncnn", DnCNN, {"nf": 8, "depth": 4, "bn": False}),
    }[kind]
    module = cls(**hp)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return save_model(path, module.eval(), arch, hp, {"id": f"fuzz-{kind}", "name": f"fuzz {kind}"})



def run_batch(name: str, cases: list[Case], inputs: list[Path], out: Path, model: Path, extra: list[str] = (),
              hash_root: Path | None = None, user: str | None = None, timeout: float = 900,
              env: dict | None = None) -> RunReport:
    """Plan, fingerprint the inputs under ``hash_root``, run the CLI, fingerprint again, check."""
    options = {"recursive": "-r" in extra or "--recursive" in extra}
    plan = plan_for(inputs, out, options)
    hash_root = hash_root or Path(os.path.commonpath([str(i) for i in inputs]))
    before = hash_tree(hash_root)
    res = run_cli(inputs, out, model, list(extra), timeout=timeout, user=user, env=env)
    after = hash_tree(hash_root)
    return check_run(name, cases, inputs, out, res, plan, before, after)


def rmtree(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            with_suppress(os.chmod, os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path, ignore_errors=True)


def with_suppress(fn, *a):
    try:
        fn(*a)
    except OSError:
        pass
