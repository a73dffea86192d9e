"""Style models run at a working size and come back at the input's size (engine, lite helpers, CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_rgb

from imgtrans.channels import DEFAULT_STYLE_SIZE, at_work_size, work_size
from imgtrans.engine import ConvertOptions, convert, prepare_runner, process_image
from imgtrans.imageio import read_image, resize_pixels
from imgtrans.weights import load_model


def test_work_size_keeps_aspect_and_never_upscales():
    assert work_size(3000, 4000, 512) == (384, 512)
    assert work_size(4000, 30, 512) == (512, 4)
    assert work_size(5000, 2, 512) == (512, 1)  # never a zero-sized side
    assert work_size(400, 300, 512) is None  # already small enough: never upscaled
    assert work_size(4000, 3000, 0) is None and work_size(4000, 3000, None) is None


def test_resize_pixels_is_lanczos_per_channel_in_range():
    rng = np.random.default_rng(0)
    px = rng.random((40, 60, 3), dtype=np.float32)
    small = resize_pixels(px, 20, 30)
    assert small.shape == (20, 30, 3) and small.dtype == np.float32
    assert small.min() >= 0.0 and small.max() <= 1.0
    flat = np.full((40, 60, 1), 0.25, np.float32)
    assert np.allclose(resize_pixels(flat, 13, 7), 0.25, atol=1e-6)
    with pytest.raises(ValueError):
        resize_pixels(px, 0, 5)


def _spy(model):
    seen = []
    real_run = model.run

    def spy(x, noise_level=None):
        seen.append(tuple(x.shape[2:]))
        return real_run(x, noise_level)

    model.run = spy
    return seen


@pytest.mark.parametrize("style_size, expect_long_side", [(64, 64), (0, 150), (400, 150)])
def test_style_model_runs_at_style_size_and_returns_full_size(tiny_models, tmp_path, style_size, expect_long_side):
    img = read_image(write_rgb(tmp_path / "a.png", 150, 90, seed=1))
    opts = ConvertOptions(output_dir=tmp_path, backend="eager", tile=0, style_size=style_size)
    model = prepare_runner(load_model(tiny_models["style"]), opts)
    seen = _spy(model)
    out = process_image(model, img, opts, out_format="png")
    assert out.pixels.shape == (90, 150, 3)
    c = model.edge_context  # the mirrored border on each side (tiling.add_edge_context)
    assert c > 0
    assert max(max(s) for s in seen) <= expect_long_side + 2 * c + 4  # + padding to the size multiple
    assert max(max(s) for s in seen) >= expect_long_side + 2 * c


def test_style_size_changes_the_picture_but_keeps_alpha_exact(tiny_models, tmp_path):
    from PIL import Image

    rgba = np.zeros((96, 128, 4), np.uint8)
    rgba[..., :3] = np.asarray(Image.open(write_rgb(tmp_path / "rgb.png", 128, 96, seed=3)))
    rgba[..., 3] = np.tile(np.linspace(0, 255, 128).astype(np.uint8), (96, 1))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = read_image(tmp_path / "rgba.png")
    model = prepare_runner(load_model(tiny_models["style"]), ConvertOptions(output_dir=tmp_path, backend="eager"))
    full = process_image(model, img, ConvertOptions(output_dir=tmp_path, style_size=0), out_format="png")
    small = process_image(model, img, ConvertOptions(output_dir=tmp_path, style_size=48), out_format="png")
    assert small.pixels.shape[:2] == full.pixels.shape[:2] == (96, 128)
    assert np.array_equal(small.alpha, img.alpha)  # alpha never goes through the shrink
    assert np.abs(small.pixels.astype(np.float32) / (255 if small.pixels.dtype == np.uint8 else 1)
                  - full.pixels.astype(np.float32) / (255 if full.pixels.dtype == np.uint8 else 1)).mean() > 1e-3


def test_grey_image_stays_grey_at_work_size(tiny_models, tmp_path):
    img = read_image(write_rgb(tmp_path / "g.png", 100, 70, seed=5, mode="L"))
    model = prepare_runner(load_model(tiny_models["style"]), ConvertOptions(output_dir=tmp_path, backend="eager"))
    out = process_image(model, img, ConvertOptions(output_dir=tmp_path, style_size=32))
    assert out.pixels.shape == (70, 100, 1)


def test_size_preserving_models_other_than_style_ignore_style_size(tiny_models, tmp_path):
    img = read_image(write_rgb(tmp_path / "d.png", 120, 80, seed=2))
    opts = ConvertOptions(output_dir=tmp_path, backend="eager", tile=0, style_size=32)
    model = prepare_runner(load_model(tiny_models["denoise"]), opts)
    seen = _spy(model)
    process_image(model, img, opts)
    assert seen == [(80, 120)]


def test_at_work_size_passes_small_images_through_untouched(tmp_path):
    img = read_image(write_rgb(tmp_path / "s.png", 50, 40))
    calls = []
    out = at_work_size(img, 512, lambda im: calls.append(im) or im)
    assert out is img and calls == [img]


def test_cli_style_size_reaches_the_output_and_its_provenance(tiny_models, tmp_path, capsys):
    from imgtrans.cli import main

    src = write_rgb(tmp_path / "in" / "p.png", 200, 120, seed=4)
    assert main(["convert", str(src), "-m", str(tiny_models["style"]), "-o", str(tmp_path / "out"),
                 "--style-size", "64", "--no-progress"]) == 0
    from PIL import Image

    with Image.open(tmp_path / "out" / "p.png") as im:
        assert im.size == (200, 120)
        settings = json.loads(im.info["imgtrans"])["settings"]
        assert json.loads(settings)["style_size"] == 64
    assert main(["convert", str(src), "-m", "x", "-o", str(tmp_path / "o2"), "--style-size", "8"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_cli_help_states_the_real_default(capsys):
    from imgtrans.cli import build_parser

    conv = build_parser()._subparsers._group_actions[0].choices["convert"]
    assert f"default {DEFAULT_STYLE_SIZE};" in " ".join(conv.format_help().split())


def test_convert_options_default_is_the_shared_default():
    assert ConvertOptions(output_dir=".").style_size == DEFAULT_STYLE_SIZE
    assert convert  # the batch path goes through process_image (covered in test_pipeline)
