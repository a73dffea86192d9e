"""The automatic noise level: the estimator on synthetic noise, real clean photos and flat images,
and the CLI's default (auto) recording the level it used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from imgtrans.cli import main
from imgtrans.imageio import read_image, read_provenance
from imgtrans.noise import estimate_noise, level_to_use


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
