"""Style strength: a style model's change to the photo, scaled from 0 (the photo back) to 1 (as trained).

On the bundled style models and a real sample photo: the scaled network on every execution path, the
detail the style size removed put back in proportion, what the output records, resume rules, and
the CLI's checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imgtrans.backends import onnxruntime_available, prepare_backend
from imgtrans.imageio import read_image, read_provenance
from imgtrans.tiling import run_model
from imgtrans.weights import load_model, open_model, save_model

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "resources" / "samples" / "volcano_usgs.jpg"  # 512x256, a real photo


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """``(1,3,128,128)`` float in [0,1]: the left half of the sample, halved."""
    img = read_image(PHOTO)
    x = torch.from_numpy(np.ascontiguousarray(img.pixels.transpose(2, 0, 1)))[None]
    return torch.nn.functional.avg_pool2d(x[:, :, :, :256], 2).contiguous()


@pytest.fixture(scope="module")
def vangogh():
    return open_model("photo2vangogh-a2b")[0]


def _mean_change(y: torch.Tensor, x: torch.Tensor) -> float:
    return float((y - x).abs().mean()) * 255


def test_strength_scales_the_change_on_every_path(vangogh, photo):
    full = run_model(prepare_backend(vangogh, "eager"), photo, tile=0)
    none = vangogh.with_strength(0.0)
    half = vangogh.with_strength(0.5)
    assert vangogh.with_strength(1.0) is vangogh
    assert _mean_change(run_model(prepare_backend(none, "eager"), photo, tile=0), photo) < 0.05  # the photo back
    whole = run_model(prepare_backend(half, "eager"), photo, tile=0)
    d_half, d_full = _mean_change(whole, photo), _mean_change(full, photo)
    assert d_full > 10 and 0.3 * d_full < d_half < 0.7 * d_full, (d_half, d_full)
    # the band-streamed path (several bands) and onnxruntime run the same scaled network
    streamed = run_model(prepare_backend(half, "eager"), photo, tile=32)
    assert float((streamed - whole).abs().max()) <= 4 / 255
    if onnxruntime_available():
        onnx = run_model(prepare_backend(half, "onnx"), photo, tile=0)
        assert float((onnx - whole).abs().max()) <= 4 / 255
    # the model itself is left as it was
    assert torch.equal(run_model(prepare_backend(vangogh, "eager"), photo, tile=0), full)


def test_strength_is_refused_where_it_cannot_be_honest(tmp_path):
    from imgtrans.archs.cyclegan import ResnetGenerator

    hp = dict(in_ch=3, out_ch=3, ngf=8, n_blocks=1, n_down=2, affine=False, use_dropout=False, upsample="resize",
              input_skip=False)
    plain = load_model(save_model(tmp_path / "plain.safetensors", ResnetGenerator(**hp), "cyclegan_resnet", hp))
    assert not plain.supports_strength
    with pytest.raises(ValueError, match="no strength setting"):
        plain.with_strength(0.5)
    sr = open_model("sr-x2")[0]
    assert not sr.supports_strength
    with pytest.raises(ValueError, match="between 0 and 1"):
        open_model("photo2ukiyoe-a2b")[0].with_strength(1.5)
    cli = _cli("-m", str(tmp_path / "plain.safetensors"), "--strength", "0.5", "-o", str(tmp_path / "out"), str(PHOTO))
    assert cli.returncode == 2 and "has no strength setting" in cli.stderr
    assert not (tmp_path / "out").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgtrans", "convert", "--no-progress", "--device", "cpu", *args],
                          capture_output=True, text=True, timeout=300)


def _pixels(path: Path) -> np.ndarray:
    return read_image(path).pixels * 255


def test_cli_strength_at_the_style_size_keeps_the_photo_detail(tmp_path):
    """At a style size below the photo's, strength 0 gives the photo itself (its fine detail put back,
    not a blurred copy), and 0.5 lies between the photo and the full style; the strength is recorded,
    a rerun with it resumes, and another strength is not taken for this batch's output."""
    out = {}
    for s in ("0", "0.5", "1"):
        r = _cli("-m", "photo2vangogh-a2b", "--style-size", "128", "--strength", s, "--format", "png",
                 "-o", str(tmp_path / s), str(PHOTO))
        assert r.returncode == 0, r.stderr
        out[s] = tmp_path / s / "volcano_usgs.png"
    x = _pixels(PHOTO)
    change = {s: float(np.abs(_pixels(p) - x).mean()) for s, p in out.items()}
    assert change["0"] < 0.6, change  # rounding only
    assert change["1"] > 15 and 0.3 * change["1"] < change["0.5"] < 0.75 * change["1"], change
    settings = json.loads(read_provenance(out["0.5"])["settings"])
    assert settings["style_strength"] == 0.5
    assert "style_strength" not in json.loads(read_provenance(out["1"])["settings"])  # full strength: as before
    again = _cli("-m", "photo2vangogh-a2b", "--style-size", "128", "--strength", "0.5", "--format", "png",
                 "-o", str(tmp_path / "0.5"), str(PHOTO))
    assert again.returncode == 0 and "1 skipped" in again.stderr
    other = _cli("-m", "photo2vangogh-a2b", "--style-size", "128", "--format", "png", "-o", str(tmp_path / "0.5"),
                 str(PHOTO))
    assert other.returncode != 0 and "made with style strength 0.5, not 1.0" in other.stderr


def test_cli_strength_options_are_checked(tmp_path):
    bad = _cli("-m", "photo2vangogh-a2b", "--strength", "1.5", "-o", str(tmp_path / "o"), str(PHOTO))
    assert bad.returncode == 2 and "must be from 0 to 1" in bad.stderr
    sr = _cli("-m", "sr-x2-quick", "--strength", "0.5", "-o", str(tmp_path / "sr"), str(PHOTO))
    assert sr.returncode == 0 and "--strength has no effect on sr-x2-quick" in sr.stderr
