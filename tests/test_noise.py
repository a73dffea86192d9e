"""The automatic noise level: the estimator on synthetic noise, real clean photos and flat images,
the CLI's default (auto) recording the level it used, and a one-channel denoiser on a colour image
given each channel's own level."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage

from imgtrans import channels
from imgtrans.cli import main
from imgtrans.imageio import Image, read_image, read_provenance
from imgtrans.noise import describe, estimate_noise, level_to_use, levels_to_use


def rms(per_channel: np.ndarray) -> float:
    return float(np.sqrt(np.mean(per_channel**2)))

PHOTOS = Path(__file__).parent / "data" / "photos"
SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def photo(name: str) -> np.ndarray:
    with PILImage.open(name) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("sigma", [5, 15, 25, 50])
def test_gaussian_noise_is_measured_within_15_percent(sigma):
    clean = photo(SAMPLES / "volcano_usgs.jpg")[:, 128:384]  # a real photo with texture, 256x256
    rng = np.random.default_rng(sigma)
    noisy8 = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
    per_channel = estimate_noise(noisy8)
    assert per_channel.shape == (3,)
    assert np.all(np.abs(per_channel - sigma) <= 0.15 * sigma), per_channel
    # the same noise as float pixels (how the engine decodes) and on a 16-bit image
    noisy = clean / 255.0 + rng.normal(0, sigma / 255.0, clean.shape)
    assert abs(rms(estimate_noise(noisy.astype(np.float32))) - sigma) <= 0.15 * sigma
    as16 = np.clip(np.round(noisy * 65535), 0, 65535).astype(np.uint16)
    assert abs(rms(estimate_noise(as16)) - sigma) <= 0.15 * sigma


def test_colour_noise_is_measured_per_channel_and_grey_images_have_one():
    clean = photo(SAMPLES / "mars_nasa.jpg")[:, :256].astype(np.float64)
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 1, clean.shape) * np.array([4.0, 12.0, 30.0])
    est = estimate_noise(np.clip(noisy, 0, 255) / 255.0)
    assert np.all(np.abs(est - [4, 12, 30]) <= 0.15 * np.array([4, 12, 30])), est
    gray = clean.mean(axis=2) + rng.normal(0, 20, clean.shape[:2])
    (level,) = estimate_noise(gray / 255.0)
    assert abs(level - 20) <= 3


def test_clean_photos_measure_near_zero_and_are_left_near_untouched():
    for path in (SAMPLES / "mars_nasa.jpg", SAMPLES / "volcano_usgs.jpg", SAMPLES / "chelsea_cat_exif_rotated.jpg",
                 PHOTOS / "rocket.png"):
        img = read_image(path)
        assert rms(estimate_noise(img.pixels)) <= 1.2, path
        assert level_to_use(estimate_noise(img.pixels), img.jpeg_quality) <= 3.0, path


def test_the_level_used_corrects_for_jpeg_and_low_levels():
    assert read_image(SAMPLES / "mars_nasa.jpg").jpeg_quality == 90  # from the file's quantisation table
    assert read_image(PHOTOS / "rocket.png").jpeg_quality is None
    assert level_to_use(np.array([25.0, 25.0, 25.0])) == 25.0
    assert level_to_use(np.array([5.0])) == 8.0  # the bundled networks leave noise at low levels
    assert level_to_use(np.array([0.0, 0.0, 0.0])) == 0.0
    assert level_to_use(np.array([30.0]), jpeg_quality=90) == 48.0  # compression hid part of the noise
    assert level_to_use(np.array([30.0]), jpeg_quality=75) == 63.0
    # one level per channel, each with the same corrections
    assert levels_to_use(np.array([5.0, 25.0, 30.0]), jpeg_quality=90) == (11.0, 40.0, 48.0)
    assert describe((8.0, 15.0, 25.0), np.array([5.0, 12.0, 25.0])) == (
        "noise level R 8, G 15, B 25 (estimated; R 5.0, G 12.0, B 25.0)")


def test_flat_tiny_and_transparent_images():
    assert level_to_use(estimate_noise(np.full((64, 80, 3), 0.5, np.float32))) == 0
    assert level_to_use(estimate_noise(np.zeros((64, 64), np.uint8))) == 0
    assert level_to_use(estimate_noise(np.full((5, 5, 3), 0.3, np.float32))) == 0  # too small to measure
    assert level_to_use(estimate_noise(np.full((64, 64, 3), np.nan, np.float32))) == 0
    # what lies under fully transparent pixels is not measured
    rng = np.random.default_rng(1)
    pixels = (0.5 + rng.normal(0, 20 / 255, (96, 96, 3))).astype(np.float32)
    pixels[:, :40] = 0.3  # flat where the picture is transparent
    alpha = np.ones((96, 96), np.float32)
    alpha[:, :44] = 0
    assert 17 <= level_to_use(estimate_noise(pixels, alpha)) <= 23
    assert level_to_use(estimate_noise(pixels)) < 17  # the flat part counted


def test_the_cli_default_is_auto_and_records_the_level_it_used(tmp_path, capsys):
    clean = photo(SAMPLES / "mars_nasa.jpg")[:96, :128]
    noisy = np.clip(np.round(clean + np.random.default_rng(3).normal(0, 20, clean.shape)), 0, 255).astype(np.uint8)
    src = tmp_path / "in" / "noisy.png"
    src.parent.mkdir()
    PILImage.fromarray(noisy).save(src)
    out = tmp_path / "out"
    assert main(["convert", str(src), "-o", str(out), "-m", "denoise-color", "--no-progress", "--backend",
                 "eager"]) == 0
    err = capsys.readouterr().err
    settings = json.loads(read_provenance(out / "noisy.png")["settings"])
    assert settings["noise_auto"] is True and 17 <= settings["noise_level"] <= 23, settings
    assert f"noisy.png: noise level {settings['noise_level']:g} (estimated" in err, err
    with PILImage.open(out / "noisy.png") as im:
        denoised = np.asarray(im).astype(np.float64)
    assert np.abs(denoised - clean).mean() < 0.6 * np.abs(noisy.astype(np.float64) - clean).mean()

    # a rerun on auto resumes; a level set by hand is another result, never mixed up with it
    assert main(["convert", str(src), "-o", str(out), "-m", "denoise-color", "--no-progress", "--backend",
                 "eager"]) == 0
    assert "output exists" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(out), "-m", "denoise-color", "--noise-level", "40",
                 "--no-progress", "--backend", "eager"]) == 1
    assert f"made with noise level auto ({settings['noise_level']}), not 40.0" in capsys.readouterr().err


def noisy_per_channel(sigmas, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A 96x128 crop of a real photo, clean (float64) and with Gaussian noise of ``sigmas`` R/G/B (uint8)."""
    clean = photo(SAMPLES / "volcano_usgs.jpg")[:96, 128:256].astype(np.float64)
    noise = np.random.default_rng(seed).normal(0, 1, clean.shape) * np.asarray(sigmas, np.float64)
    return clean, np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)


def test_each_plane_of_a_one_channel_model_runs_with_its_channels_level():
    """The per-image code both engines share (the lite engine calls it with its own runner)."""
    _, noisy = noisy_per_channel([4.0, 12.0, 30.0])
    def image(pixels):
        return Image(pixels=pixels, alpha=None, bit_depth=8, icc_profile=None, exif=None, source_format="PNG")

    img = image(noisy.astype(np.float32) / 255)
    seen = []

    def run_float(plane, step, level):
        seen.append(level)
        return plane

    def process(model, noise_level, pixels=img.pixels):
        seen.clear()
        channels.process_image(model, image(pixels), noise_level=noise_level, style_size=None,
                               out_format=".png", run_integer=None, run_float=run_float)
        return list(seen)

    gray = SimpleNamespace(in_channels=1, out_channels=1, scale=1, task="denoise", takes_noise_level=True)
    wanted = levels_to_use(estimate_noise(img.pixels))
    assert process(gray, None) == list(wanted) and wanted[2] - wanted[0] > 15  # auto: each channel's own
    assert process(gray, 20.0) == [20.0, 20.0, 20.0]  # by hand: one level for all
    assert process(gray, (0.0, 10.0, 30.0)) == [10.0, 30.0]  # a clean channel is passed through
    grey_image = img.pixels[:, :, 2:]
    assert process(gray, None, grey_image) == [level_to_use(estimate_noise(grey_image))]
    colour = SimpleNamespace(in_channels=3, out_channels=3, scale=1, task="denoise", takes_noise_level=True)
    assert channels.auto_noise_level(img, 3)[0] == level_to_use(estimate_noise(img.pixels))  # one level
    with pytest.raises(ValueError, match="one level per channel"):
        process(colour, (5.0, 10.0, 30.0))


def test_denoise_gray_on_colour_auto_cleans_each_channel_at_its_own_level(tmp_path, capsys):
    clean, noisy = noisy_per_channel([6.0, 12.0, 30.0])
    src = tmp_path / "in" / "noisy.png"
    src.parent.mkdir()
    PILImage.fromarray(noisy).save(src)
    measured = estimate_noise(read_image(src).pixels)
    common = ["-m", "denoise-gray", "--no-progress", "--backend", "eager"]

    assert main(["convert", str(src), "-o", str(tmp_path / "auto"), *common]) == 0
    err = capsys.readouterr().err
    settings = json.loads(read_provenance(tmp_path / "auto" / "noisy.png")["settings"])
    assert settings["noise_auto"] is True and settings["noise_level"] == list(levels_to_use(measured)), settings
    r, g, b = settings["noise_level"]
    assert r < g < b and b - r > 15, settings
    assert f"noisy.png: noise level R {r:g}, G {g:g}, B {b:g} (estimated; R " in err, err

    # one level for every channel when set by hand: here the RMS level auto gave before
    one = level_to_use(measured)
    assert main(["convert", str(src), "-o", str(tmp_path / "hand"), "--noise-level", str(one), *common]) == 0
    hand = json.loads(read_provenance(tmp_path / "hand" / "noisy.png")["settings"])
    assert hand["noise_level"] == one and "noise_auto" not in hand, hand

    def residual(folder):
        with PILImage.open(tmp_path / folder / "noisy.png") as im:
            return np.sqrt(((np.asarray(im).astype(np.float64) - clean) ** 2).reshape(-1, 3).mean(axis=0))

    per_channel, single = residual("auto"), residual("hand")
    # the quiet channels are less smoothed away, the noisy one is cleaned instead of under-cleaned
    assert np.all(per_channel < 0.9 * single), (per_channel, single)

    # a rerun on auto resumes; a level set by hand is another result
    assert main(["convert", str(src), "-o", str(tmp_path / "auto"), *common]) == 0
    assert "output exists" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(tmp_path / "auto"), "--noise-level", "40", *common]) == 1
    assert f"made with noise level auto (R {r:g}, G {g:g}, B {b:g}), not 40.0" in capsys.readouterr().err
