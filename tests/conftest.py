"""Shared fixtures: an isolated user folder, tiny real models saved as real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own user data folder, so user models and settings never leak."""
    home = tmp_path_factory.mktemp("imgtrans-home")
    monkeypatch.setenv("IMGTRANS_HOME", str(home))
    return home


def _perturb(module, scale: float = 0.05, seed: int = 0):
    """Random but deterministic weights that make every layer matter (fresh inits can be near-identity)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module.eval()


@pytest.fixture
def tiny_models(tmp_path):
    """Paths of tiny saved models of each family: {"style", "style_resize", "style_skip", "sr", "sr_vgg",
    "denoise", "denoise_map", "ffdnet"}."""
    from imgtrans.archs import SRVGG, DnCNN, FFDNet, ResnetGenerator, SRResNet
    from imgtrans.weights import save_model

    paths = {}
    specs = {
        "style": ("cyclegan_resnet", ResnetGenerator, {"ngf": 8, "n_blocks": 2}),
        "style_resize": ("cyclegan_resnet", ResnetGenerator, {"ngf": 8, "n_blocks": 2, "upsample": "resize"}),
        "style_skip": ("cyclegan_resnet", ResnetGenerator,
                       {"ngf": 8, "n_blocks": 2, "upsample": "resize", "input_skip": True}),
        "sr": ("srresnet", SRResNet, {"nf": 8, "n_blocks": 2, "scale": 2}),
        "sr_vgg": ("srvgg", SRVGG, {"nf": 8, "n_conv": 3, "scale": 4}),
        "denoise": ("dncnn", DnCNN, {"nf": 8, "depth": 4, "bn": False}),
        "denoise_map": ("dncnn", DnCNN, {"nf": 8, "depth": 4, "bn": True, "noise_map": True}),
        "ffdnet": ("ffdnet", FFDNet, {"nf": 8, "depth": 4, "bn": True, "noise_map": True}),
    }
    for key, (arch, cls, hp) in specs.items():
        module = _perturb(cls(**hp))
        paths[key] = save_model(tmp_path / f"{key}.safetensors", module, arch, hp,
                                {"id": f"tiny-{key}", "name": f"Tiny {key}"})
    return paths


def write_rgb(path: Path, width: int = 40, height: int = 32, seed: int = 0, mode: str = "RGB") -> Path:
    """A small real image file with structure (gradients + noise)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), (xx + yy) % 64 * 4], axis=-1)
    arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture
def make_window(qtbot):
    """Makes shown main windows (1280x820) on call; afterwards cancels their batches and training runs
    and waits for the GUI's worker tasks."""
    from imgtrans.gui import tasks
    from imgtrans.gui.window import MainWindow

    windows = []

    def make():
        w = MainWindow()
        qtbot.addWidget(w)
        w.resize(1280, 820)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        if w.batch is not None:
            w.cancel_batch()
            w.batch.wait(10_000)
        if w.train_tab is not None and w.train_tab.is_running():
            w.train_tab.shutdown()
    tasks.wait_all()
