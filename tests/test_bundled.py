"""Every bundled model loads from the catalog, runs on real photos and beats its baseline.

This catches a broken export or a catalog entry pointing at the wrong file; the quality figures
proper live in benchmarks/quality.py."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgtrans.catalog import list_models, read_safetensors_metadata
from imgtrans.imageio import read_image
from imgtrans.tiling import run_model
from imgtrans.weights import open_model

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((Path(__file__).parent / "data" / "photos").glob("*.png"))
BUNDLED = [e for e in list_models() if e.source == "bundled"]


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int = 0) -> float:
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return float(10 * torch.log10(1.0 / F.mse_loss(a, b)))


def _photo(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(read_image(path).pixels.transpose(2, 0, 1)))[None]


def test_catalog_has_bundled_models():
    assert BUNDLED, "resources/models.toml lists no models"
    for entry in BUNDLED:
        assert entry.path.is_file(), f"{entry.id}: {entry.path} missing"


def _adversarial(entry) -> bool:
    """Whether a bundled SR model was fine-tuned with a discriminator (SRGAN), from its file's metadata."""
    options = json.loads(read_safetensors_metadata(entry.path).get("train_options", "{}"))
    return options.get("gan_after") is not None


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task == "sr"], ids=lambda e: e.id)
def test_sr_models_beat_bicubic(entry):
    """An L1 model beats bicubic in PSNR. An SRGAN model trades PSNR for detail: it must close at least
    half of bicubic's gap to the original's fine detail (metrics.detail_ratio against the original, 1 =
    as detailed; what each model reads on these photos: benchmarks/README.md, History 2026-12-07) without
    losing more than 1 dB to bicubic, which a broken export would."""
    from imgtrans.training.metrics import detail_ratio

    model, _ = open_model(entry.id)
    s = model.scale
    gains, details, bicubic_details = [], [], []
    for path in PHOTOS:
        hr = _photo(path)
        h, w = hr.shape[2] // s * s, hr.shape[3] // s * s
        hr = hr[:, :, :h, :w]
        lr = F.interpolate(hr, scale_factor=1 / s, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        ours = run_model(model, lr, tile=32)
        bicubic = F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False).clamp(0, 1)
        assert ours.shape == hr.shape
        gains.append(_psnr(ours, hr, s) - _psnr(bicubic, hr, s))
        details.append(float(detail_ratio(ours, hr, s)[0]))
        bicubic_details.append(float(detail_ratio(bicubic, hr, s)[0]))
    bicubic_detail = np.median(bicubic_details)
    print(f"{entry.id}: mean PSNR gain over bicubic on {len(gains)} photos: {np.mean(gains):+.2f} dB; "
          f"detail {np.median(details):.2f} (bicubic {bicubic_detail:.2f})")
    if _adversarial(entry):
        assert np.mean(gains) > -1.0 and np.median(details) > bicubic_detail + 0.5 * (1 - bicubic_detail)
    else:
        assert np.mean(gains) > 0.3


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task in ("sr", "style")], ids=lambda e: e.id)
def test_no_visible_checkerboard(entry):
    """Strided and upsampling layers can leave a pattern repeating every 2 or 4 pixels: measured in
    grey levels per channel (imgtrans.training.metrics.grid_artifact_amplitude), a bundled model's
    outputs stay below one level, the edge of what can be seen, or within 20 % of what the photo itself
    has there (a style model keeps the photo's own fine structure, which reads above one level on these
    photos, so a copy of its input must pass too)."""
    from imgtrans.training.metrics import grid_artifact_amplitude

    model, _ = open_model(entry.id)
    amps, own = [], []
    for path in PHOTOS:
        x = _photo(path)
        if entry.task == "sr":  # the photo as the model's input, its output at the photo's size
            h, w = x.shape[2] // model.scale * model.scale, x.shape[3] // model.scale * model.scale
            x = F.interpolate(x[:, :, :h, :w], scale_factor=1 / model.scale, mode="bicubic", antialias=True).clamp(0, 1)
        out = run_model(model, x, tile=0)
        amps.append(float(grid_artifact_amplitude(out)[0]))
        own.append(float(grid_artifact_amplitude(_photo(path))[0]))
    print(f"{entry.id}: periodic pattern {np.median(amps):.2f} grey levels (the photos: {np.median(own):.2f})")
    assert np.median(amps) < max(1.0, 1.2 * np.median(own))


def _run_planes(model, x: torch.Tensor, **kw) -> torch.Tensor:
    """run_model on ``(1,3,H,W)``; a grey (one-channel) model on each channel, as the app runs it."""
    if model.in_channels == 1 and x.shape[1] == 3:
        return torch.cat([run_model(model, x[:, c : c + 1], **kw) for c in range(3)], 1)
    return run_model(model, x, **kw)


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task == "denoise"], ids=lambda e: e.id)
def test_denoise_models_beat_noisy_input(entry):
    model, _ = open_model(entry.id)
    gen = torch.Generator().manual_seed(0)
    gains = []
    for path in PHOTOS:
        clean = _photo(path)
        noisy = (clean + torch.randn(clean.shape, generator=gen) * 25 / 255).clamp(0, 1)
        out = _run_planes(model, noisy, tile=32, noise_level=25)
        gains.append(_psnr(out, clean) - _psnr(noisy, clean))
    assert np.mean(gains) > 2.0


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task == "denoise"], ids=lambda e: e.id)
def test_denoise_models_beat_non_local_means(entry):
    """The classical baseline a user could run instead (OpenCV NLM, its h the best of a small grid)."""
    import cv2

    model, _ = open_model(entry.id)
    gen = np.random.default_rng(0)
    ours, nlm = [], []
    for path in PHOTOS:
        clean = read_image(path).pixels[..., :3]
        noisy = np.clip(np.round(clean.astype(np.float64) * 255 + gen.normal(0, 25, clean.shape)), 0,
                        255).astype(np.uint8)
        ref = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None]
        out = _run_planes(model, torch.from_numpy(noisy.transpose(2, 0, 1).copy())[None].float() / 255, tile=32,
                          noise_level=25)
        ours.append(_psnr(out, ref))
        bgr = np.ascontiguousarray(noisy[..., ::-1])
        nlm.append(max(_psnr(torch.from_numpy(cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)[..., ::-1]
                                              .transpose(2, 0, 1).copy())[None].float() / 255, ref)
                       for h in (10, 15, 20)))
    print(f"{entry.id}: sigma 25, PSNR ours {np.mean(ours):.2f} dB vs NLM {np.mean(nlm):.2f} dB")
    assert np.mean(ours) > np.mean(nlm) + 1.0


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task == "style"], ids=lambda e: e.id)
def test_style_models_change_the_image_and_keep_its_size(entry):
    model, _ = open_model(entry.id)
    x = _photo(PHOTOS[0])
    out = run_model(model, x, tile=32)
    assert out.shape == x.shape and (out - x).abs().mean() > 0.02


def _top_left_step(img: torch.Tensor) -> float:
    """``(1,3,H,W)`` in [0,1] -> the larger of the top and left edges' step, in grey levels: how far
    the mean colour of the outer 6 px strip is from the 12 px strip inside it (worst channel)."""
    a = img[0] * 255
    top = (a[:, :6].mean((1, 2)) - a[:, 6:18].mean((1, 2))).abs().max()
    left = (a[:, :, :6].mean((1, 2)) - a[:, :, 6:18].mean((1, 2))).abs().max()
    return float(max(top, left))


def _top_left_line(img: torch.Tensor) -> float:
    """``(1,3,H,W)`` in [0,1] -> how far the outermost row or column on the top and left is from the mean
    of rows/columns 4-8 inside it (the larger, worst channel, grey levels): a one-pixel line that the 6 px
    strip of :func:`_top_left_step` averages away."""
    a = img[0].double() * 255
    rows, cols = a.mean(2), a.mean(1)
    top = (rows[:, 0] - rows[:, 4:9].mean(1)).abs().max()
    left = (cols[:, 0] - cols[:, 4:9].mean(1)).abs().max()
    return float(max(top, left))


@pytest.mark.parametrize("entry", [e for e in BUNDLED if e.task == "style" and not e.id.endswith("-b2a")],
                         ids=lambda e: e.id)
def test_style_models_paint_no_band_along_the_top_and_left_edges(entry):
    """The generators zero-pad only the top/left in their stride-2 convs and draw bands, lines and a corner
    glitch there; run_model's mirrored border cuts them away, on a 512x256 sample photo (the figures the
    limits come from: benchmarks/README.md, History 2026-12-07, and "Styles learnt from one painting":
    with a 32 px border the outer line was 11-15 grey levels off for three of these models, 0.3-3.5 with 48,
    the photo's own 0.6-2.9)."""
    from PIL import Image

    model, _ = open_model(entry.id)
    photo = Image.open(ROOT / "resources" / "samples" / "mars_nasa.jpg").convert("RGB").resize((512, 256),
            Image.LANCZOS)
    x = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)[None].float() / 255
    with_border = _top_left_step(run_model(model, x, tile=0))
    model.edge_context = 0
    without = _top_left_step(run_model(model, x, tile=0))
    print(f"{entry.id}: top/left edge step {with_border:.1f} grey levels, {without:.1f} without the border, photo "
          f"{_top_left_step(x):.1f}")
    assert with_border < 0.6 * without and with_border < 2.5 * _top_left_step(x) + 2
    model.edge_context = int(_meta_border(entry))
    line = _top_left_line(run_model(model, x, tile=0))
    print(f"{entry.id}: top/left outer line {line:.1f} grey levels, photo {_top_left_line(x):.1f}")
    assert line < _top_left_line(x) + 4


def _meta_border(entry) -> int:
    from imgtrans.catalog import declared_edge_context, read_safetensors_metadata

    return declared_edge_context(read_safetensors_metadata(entry.path))


def _style_pairs() -> list[tuple[str, str]]:
    ids = {e.id for e in BUNDLED if e.task == "style"}
    return [(i, i[:-4] + "-b2a") for i in sorted(ids) if i.endswith("-a2b") and i[:-4] + "-b2a" in ids]


@pytest.mark.parametrize("pair", _style_pairs(), ids=lambda p: p[0][:-4])
def test_style_pairs_come_back_through_the_cycle(pair):
    """A -> B -> A gives the photo back (the cycle loss was learnt), while A -> B really changes it:
    a generator pair exported the wrong way round, or from an untrained checkpoint, fails here."""
    a2b, _ = open_model(pair[0])
    b2a, _ = open_model(pair[1])
    psnrs = []
    for path in PHOTOS:
        x = _photo(path)[:, :, :128, :128]
        fake = run_model(a2b, x, tile=0)
        back = run_model(b2a, fake, tile=0)
        assert (fake - x).abs().mean() > 0.02
        psnrs.append(_psnr(back, x))
    print(f"{pair[0][:-4]}: cycle PSNR A->B->A on {len(psnrs)} photo crops: {np.mean(psnrs):.2f} dB")
    assert np.mean(psnrs) > 20.0
