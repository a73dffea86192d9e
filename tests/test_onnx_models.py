"""A user's ONNX graphs (imgtrans/archs/onnx_graph.py): tiny networks exported here in each value
convention (0-1, -1..1, 0-255), fixed-size and dynamic, x1 and x2, loaded, imported and converted
through the same engine as every other model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from imgtrans.catalog import list_models, onnx_sidecar  # noqa: E402
from imgtrans.cli import main  # noqa: E402
from imgtrans.paths import user_models_dir  # noqa: E402
from imgtrans.tiling import run_model  # noqa: E402
from imgtrans.weights import ModelLoadError, load_model  # noqa: E402
from tests.conftest import write_rgb  # noqa: E402


class Plain01(nn.Module):
    """0-1 convention, any size: the image plus a small learned detail (as SR/restoration nets). Nearly
    linear, so every convention gives nearly the same picture: the guess keeps 0-1 (documented)."""

    def __init__(self, scale: int = 1):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)

    def forward(self, x):
        if self.scale > 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return x + 0.05 * self.conv(x)


class Tanh11(nn.Module):
    """-1..1 convention (a tanh generator): a contrast curve around the image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.tanh(1.5 * (x + 0.05 * self.conv(x)))


class Style255(nn.Module):
    """0-255 convention like fast-neural-style: stride-2 down, instance norm, up; output 0-255."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.up = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)

    def forward(self, x):
        detail = self.up(torch.relu(self.norm(self.down(x / 255.0))))
        return 255.0 * torch.sigmoid((x - 127.5) / 50.0 + 0.1 * detail)


def _seeded(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module.eval()


def _export(module: nn.Module, path, size: tuple[int, int] | None = None, metadata: dict[str, str] | None = None):
    h, w = size or (40, 40)
    axes = None if size else {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "oh", 3: "ow"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.rand(1, 3, h, w),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes=axes, opset_version=17)
    if metadata:
        graph = onnx.load(str(path))
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(path))
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    nets = {
        "plain": (_seeded(Plain01(), 1), None, None),
        "tanh_fixed": (_seeded(Tanh11(), 2), (48, 40), None),
        "style255": (_seeded(Style255(), 3), None, None),
        "sr2": (_seeded(Plain01(scale=2), 4), None,
                {"value_range": "0-1", "license": "CC-BY-4.0", "author": "a friend"}),
        "sr2_fixed": (_seeded(Plain01(scale=2), 5), (32, 32), None),
    }
    return {k: (net, _export(net, d / f"{k}.onnx", size, meta)) for k, (net, size, meta) in nets.items()}


def _reference(net, x, value_range):
    lo, hi = value_range
    with torch.no_grad():
        return ((net(x * (hi - lo) + lo) - lo) / (hi - lo)).clamp(0, 1)


@pytest.mark.parametrize("key,value_range,scale,multiple,size", [
    ("plain", (0.0, 1.0), 1, 1, None),
    ("tanh_fixed", (-1.0, 1.0), 1, 1, (48, 40)),
    ("style255", (0.0, 255.0), 1, 2, None),
    ("sr2", (0.0, 1.0), 2, 1, None),
    ("sr2_fixed", (0.0, 1.0), 2, 1, (32, 32)),
])
def test_range_scale_and_size_are_detected_and_the_engine_runs_it(graphs, key, value_range, scale, multiple, size):
    """Each convention is recognised (range, scale, size multiple, fixed size) and a 70x90 image
    converts through run_model like the network itself, fixed-size graphs in tiles padded to their size."""
    net, path = graphs[key]
    model = load_model(path)
    assert (model.value_range, model.scale, model.size_multiple,
            model.input_size) == (value_range, scale, multiple, size)
    assert model.execution == ("tiles" if size else "whole_if_fits")
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(0))
    steps = []
    y = run_model(model, x, step=lambda d, t: steps.append(t))
    assert y.shape == (1, 3, 70 * scale, 90 * scale)
    ref = _reference(net, x, value_range)
    if size is None:
        assert len(steps) == 1 and torch.allclose(y, ref, atol=1e-4)  # one call on the whole image
    else:
        assert steps[-1] > 4  # tiles
        inner = (y - ref)[:, :, : -scale, : -scale].abs()  # the image's last row/column: padding differs
        assert inner.max() < 1e-3 and (y - ref).abs().mean() < 1e-3


def test_graph_metadata_gives_range_and_licence(graphs):
    model = load_model(graphs["sr2"][1])
    assert model.metadata["licence"] == "CC-BY-4.0" and model.metadata["author"] == "a friend"
    assert "onnx" in model.describe() and model.task == "sr"


def test_import_convert_info_and_remove_from_the_command_line(graphs, tmp_path, capsys):
    """The fast-neural-style-like graph (0-255, any size): imported, listed, converted, described
    with its origin and an unknown licence, run by onnxruntime for every backend, removed."""
    from imgtrans.backends import prepare_backend

    assert main(["import", str(graphs["style255"][1]), "--name", "Mosaic"]) == 0
    out = capsys.readouterr().out
    assert "Imported \u201cMosaic\u201d: detected ONNX graph (x1, range 0-255, any size, sides multiple of 2)" in out
    stored = user_models_dir() / "mosaic.onnx"
    record = json.loads(onnx_sidecar(stored).read_text())
    assert stored.read_bytes() == graphs["style255"][1].read_bytes()
    assert record["value_range"] == "0-255" and record["imported_from"] == "style255.onnx"
    assert [e.id for e in list_models() if e.source == "user"] == ["mosaic"]
    assert main(["models"]) == 0 and "mosaic" in capsys.readouterr().out

    assert main(["info", "mosaic", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["origin"].startswith("third-party file, imported from style255.onnx (sha256 ")
    assert report["weights_licence"] == "unknown (imported file: check where it came from)"
    assert report["parameters"] == sum(p.numel() for p in graphs["style255"][0].parameters())

    write_rgb(tmp_path / "a.png", 37, 29)
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "mosaic", "--no-progress",
                 "--backend", "onnx"]) == 0
    from imgtrans.imageio import read_image

    got = read_image(next((tmp_path / "o").iterdir())).pixels
    src = torch.from_numpy(read_image(tmp_path / "a.png").pixels.transpose(2, 0, 1)[None].copy())
    padded = F.pad(src, (0, 1, 0, 1), mode="reflect")  # odd sides: padded to the multiple of 2, cropped
    ref = _reference(graphs["style255"][0], padded, (0.0, 255.0))[0, :, :29, :37].numpy().transpose(1, 2, 0)
    assert got.shape == (29, 37, 3) and np.abs(got - ref).max() <= 1.5 / 255

    model = load_model(stored)
    for backend in ("auto", "onnx", "eager"):
        assert prepare_backend(model, backend).name == "onnx"
    assert main(["remove", "mosaic"]) == 0
    assert not stored.exists() and not onnx_sidecar(stored).exists()


def test_range_and_scale_given_at_import_win(graphs, capsys):
    assert main(["import", str(graphs["plain"][1]), "--range", "0-255"]) == 0
    assert load_model(user_models_dir() / "plain.onnx").value_range == (0.0, 255.0)
    assert main(["import", str(graphs["plain"][1]), "--range=-1..1", "--name", "plain tanh"]) == 0
    assert load_model(user_models_dir() / "plain-tanh.onnx").value_range == (-1.0, 1.0)
    assert main(["import", str(graphs["plain"][1]), "--scale", "2"]) == 2  # measured x1: a wrong scale is refused
    assert "not one scaled x2" in capsys.readouterr().err
    assert not (user_models_dir() / "plain-2.onnx").exists()


def test_what_is_not_an_image_graph_is_refused(tmp_path, capsys):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match=r"junk\.onnx: not an ONNX graph onnxruntime can run"):
        load_model(bad)
    assert main(["import", str(bad)]) == 2 and "not imported" in capsys.readouterr().err
    assert not any(user_models_dir().glob("*.onnx"))


def test_without_onnxruntime_the_loader_names_the_extra(graphs, monkeypatch):
    import imgtrans.extras

    monkeypatch.setattr(imgtrans.extras, "installed", lambda module: module != "onnxruntime")
    with pytest.raises(ModelLoadError, match=r"plain.onnx: ONNX models run in onnxruntime, which is not installed "
                                             r"\(pip install 'imgtrans\[fast\]'\)"):
        load_model(graphs["plain"][1])
