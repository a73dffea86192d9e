"""The torch-free lite path (imgtrans.lite): ONNX graphs exported as packaging/export_onnx.py does,
run by onnxruntime over NumPy tiles, give the torch engine's uint8 result (within 1), and importing
imgtrans.lite does not import torch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_rgb

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent


def _export_script():
    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "packaging" / "export_onnx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def lite_dir(tiny_models, tmp_path):
    """tiny models exported to ONNX with an index.json, as the lite bundle ships them"""
    from imgtrans.weights import load_model

    exp = _export_script()
    out = tmp_path / "onnx"
    out.mkdir()
    models = {f"tiny-{key}": exp.export_one(load_model(path), out, f"tiny-{key}") for key, path in tiny_models.items()}
    exp.write_index(out, models)
    return out


def _torch_output(model_path, img, out_format, noise_level=None, style_size=512):
    from imgtrans.backends import prepare_backend
    from imgtrans.engine import ConvertOptions, process_image
    from imgtrans.weights import load_model

    model = prepare_backend(load_model(model_path), "eager")
    options = ConvertOptions(output_dir=Path("."), tile=0, device="cpu", noise_level=noise_level, style_size=style_size)
    return process_image(model, img, options, out_format=out_format)


@pytest.mark.parametrize("key,tile", [("sr", 16), ("sr_vgg", 16), ("denoise_map", 16), ("denoise", 24),
                                      ("ffdnet", 22), ("style", None)])
def test_lite_matches_torch_engine(tiny_models, lite_dir, tmp_path, key, tile):
    from imgtrans import lite
    from imgtrans.imageio import read_image

    odd = key == "ffdnet"  # size multiple 2: an odd size is padded the same way by both engines
    img = read_image(write_rgb(tmp_path / "in.png", width=51 if odd else 52, height=43 if odd else 44))
    model = lite.find_model(f"tiny-{key}", lite_dir)
    if key == "sr":
        assert model.halo == 2 * 2 + 5 and model.scale == 2  # SRResNet's receptive radius from the index
    if key == "sr_vgg":
        assert model.halo == 3 + 2 and model.scale == 4  # SRVGG's: body convolutions + head + tail
    if key in ("denoise_map", "ffdnet"):
        assert model.takes_noise_level
    out = lite.process_image(model, img, out_format=".png", tile=tile, noise_level=30)
    ref = _torch_output(tiny_models[key], img, ".png", noise_level=30)
    assert out.pixels.dtype == np.uint8 and ref.pixels.dtype == np.uint8
    assert out.pixels.shape == ref.pixels.shape
    assert np.abs(out.pixels.astype(int) - ref.pixels.astype(int)).max() <= 1
    if key in ("denoise_map", "ffdnet"):  # the noise level reaches the graph
        other = lite.process_image(model, img, out_format=".png", tile=tile, noise_level=5)
        assert np.abs(other.pixels.astype(int) - out.pixels.astype(int)).max() > 1


def test_lite_grey_and_alpha_follow_the_engine(tiny_models, lite_dir, tmp_path):
    from imgtrans import lite
    from imgtrans.imageio import read_image

    for mode, fmt in (("L", ".png"), ("RGBA", ".jpg")):  # float path: grey back to grey, alpha onto white
        img = read_image(write_rgb(tmp_path / f"in-{mode}.png", width=30, height=26, mode=mode))
        out = lite.process_image(lite.find_model("tiny-sr", lite_dir), img, out_format=fmt, tile=12)
        ref = _torch_output(tiny_models["sr"], img, fmt)
        assert out.pixels.shape == ref.pixels.shape
        assert np.abs(out.pixels - ref.pixels).max() <= 1.5 / 255
        assert (out.alpha is None) == (ref.alpha is None)


def test_lite_style_runs_at_the_same_work_size_as_the_engine(tiny_models, lite_dir, tmp_path):
    from imgtrans import lite
    from imgtrans.imageio import read_image

    img = read_image(write_rgb(tmp_path / "in.png", width=120, height=80, seed=7))
    model = lite.find_model("tiny-style", lite_dir)
    out = lite.process_image(model, img, out_format=".png", style_size=40)
    ref = _torch_output(tiny_models["style"], img, ".png", style_size=40)
    full = _torch_output(tiny_models["style"], img, ".png", style_size=0)
    assert out.pixels.shape == ref.pixels.shape == (80, 120, 3)
    assert np.abs(out.pixels.astype(np.float32) - ref.pixels.astype(np.float32)).max() <= 1.5 / 255
    assert np.abs(ref.pixels.astype(np.float32) - full.pixels.astype(np.float32)).mean() > 1e-3


def test_lite_cli_writes_images(lite_dir, tmp_path, capsys):
    from imgtrans import lite
    from imgtrans.imageio import read_image, read_provenance

    src = write_rgb(tmp_path / "a.png", width=20, height=18)
    rc = lite.main(["--models-dir", str(lite_dir), "convert", str(src), "-o", str(tmp_path / "out"), "--model",
                    "tiny-sr"])
    assert rc == 0
    out = read_image(tmp_path / "out" / "a.png")
    assert (out.width, out.height) == (40, 36)
    assert not list((tmp_path / "out").glob(".*"))  # no temp file left behind
    # unknown model: one line, usage exit code
    assert lite.main(["--models-dir", str(lite_dir), "convert", str(src), "-o", str(tmp_path / "o2"), "--model",
                      "nope"]) == 2
    index = json.loads((lite_dir / "index.json").read_text())
    assert index["models"]["tiny-denoise_map"]["takes_noise_level"] is True
    # noise level: 0-100 only; 0 means nothing to remove, as in the torch engine
    assert lite.main(["--models-dir", str(lite_dir), "convert", str(src), "-o", str(tmp_path / "o3"), "--model",
                      "tiny-denoise_map", "--noise-level", "-5"]) == 2
    img = read_image(src)
    assert lite.process_image(lite.find_model("tiny-denoise_map", lite_dir), img, out_format=".png",
                              noise_level=0) is img
    # the default is auto, as in the torch engine: the level measured is said and recorded
    assert lite.main(["--models-dir", str(lite_dir), "convert", str(src), "-o", str(tmp_path / "o4"), "--model",
                      "tiny-denoise_map"]) == 0
    settings = json.loads(read_provenance(tmp_path / "o4" / "a.png")["settings"])
    assert settings["noise_auto"] is True and isinstance(settings["noise_level"], float)
    assert f"a.png: noise level {settings['noise_level']:g} (estimated" in capsys.readouterr().err


def test_importing_lite_does_not_import_torch(lite_dir):
    code = ("import sys; import imgtrans.lite as l; m = l.find_model('tiny-sr', sys.argv[1]); "
            "import numpy as np; m.run(np.zeros((1, 3, 8, 8), np.float32)); "
            "bad = [k for k in sys.modules if k.split('.')[0] in ('torch', 'PySide6', 'cv2')]; print(bad); "
            "sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code, str(lite_dir)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lite_cli_stops_on_a_full_disk_and_resumes(lite_dir, tmp_path, monkeypatch, capsys):
    """The lite CLI runs the torch engine's batch, so a full disk stops it with nothing partial left
    and the same command finishes the job."""
    from test_reliability import _fail_part_writes_after

    from imgtrans import lite

    src = tmp_path / "in"
    for i in range(5):
        write_rgb(src / f"img{i}.png", width=24, height=20, seed=i)
    out = tmp_path / "out"
    cmd = ["--models-dir", str(lite_dir), "convert", str(src), "-o", str(out), "--model", "tiny-denoise"]
    with monkeypatch.context() as m:
        failed = _fail_part_writes_after(m, ok_writes=2)
        assert lite.main(cmd) == 1 and failed
    err = capsys.readouterr().err
    assert "disk full" in err and "Traceback" not in err
    names = [p.name for p in out.iterdir()]
    assert len(names) == 2 and all(n.startswith("img") and n.endswith(".png") for n in names)  # no temp file
    assert lite.main(cmd) == 0
    assert "3 converted" in capsys.readouterr().err and len(list(out.iterdir())) == 5
