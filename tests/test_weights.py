"""Weight files: metadata round trip, detection without metadata, refusal of hostile files."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from imgtrans.archs import DnCNN, ResnetGenerator, SRResNet
from imgtrans.catalog import read_safetensors_metadata
from imgtrans.weights import ModelLoadError, load_model, save_model


def test_save_load_roundtrip_with_metadata(tmp_path):
    model = SRResNet(nf=8, n_blocks=2, scale=4).eval()
    path = save_model(tmp_path / "m.safetensors", model, "srresnet", {"nf": 8, "n_blocks": 2, "scale": 4},
                      {"name": "Test SR", "training_data": "unit test", "licence": "MIT", "steps": 12})
    assert not list(tmp_path.glob("*.part"))
    meta = read_safetensors_metadata(path)
    assert meta["arch"] == "srresnet" and meta["task"] == "sr" and meta["scale"] == "4"
    assert json.loads(meta["hparams"])["n_blocks"] == 2 and meta["steps"] == "12" and meta["date"]
    loaded = load_model(path)
    assert loaded.scale == 4 and loaded.task == "sr" and loaded.metadata["name"] == "Test SR"
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.allclose(loaded.run(x), model(x).clamp(0, 1), atol=1e-6)


@pytest.mark.parametrize("module,arch,hp", [
    (ResnetGenerator(ngf=8, n_blocks=3), "cyclegan_resnet", {"ngf": 8, "n_blocks": 3}),
    (SRResNet(nf=8, n_blocks=2, scale=2), "srresnet", {"nf": 8, "n_blocks": 2, "scale": 2}),
    (DnCNN(channels=1, nf=8, depth=5, bn=False), "dncnn", {"channels": 1, "nf": 8, "depth": 5, "bn": False}),
])
def test_bare_state_dicts_are_detected(tmp_path, module, arch, hp):
    """No metadata (a plain .pth of tensors, or safetensors without our keys): family and
    hyper-parameters come from the tensors."""
    pth = tmp_path / "plain.pth"
    torch.save(module.state_dict(), pth)
    st = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, st)
    for path in (pth, st):
        loaded = load_model(path)
        assert loaded.arch == arch
        for key, value in hp.items():
            assert loaded.hparams[key] == value


def test_wrapped_checkpoint_is_unwrapped(tmp_path):
    model = SRResNet(nf=8, n_blocks=2, scale=2)
    path = tmp_path / "wrapped.pth"
    torch.save({"params_ema": model.state_dict(), "epoch": 3}, path)
    assert load_model(path).scale == 2


class _Evil:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "payload": _Evil(str(marker))}, path)
    with pytest.raises(ModelLoadError, match="refused") as info:
        load_model(path)
    assert not marker.exists()
    # what the file wants to import, without torch's advice to unpickle it or its terminal colour codes
    message = str(info.value)
    assert "\x1b" not in message and "weights_only" not in message and "it imports " in message, message


def test_metadata_that_lies_about_the_arch_is_caught(tmp_path):
    model = SRResNet(nf=8, n_blocks=2, scale=2)
    path = save_model(tmp_path / "m.safetensors", model, "srresnet", {"nf": 8, "n_blocks": 2, "scale": 2})
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = read_safetensors_metadata(path)
    meta["hparams"] = json.dumps({"nf": 16, "n_blocks": 2, "scale": 2})
    save_file(tensors, tmp_path / "lies_hp.safetensors", metadata=meta)
    with pytest.raises(ModelLoadError, match="do not fit srresnet"):
        load_model(tmp_path / "lies_hp.safetensors")
    meta["arch"] = "dncnn"
    meta.pop("hparams")
    save_file(tensors, tmp_path / "lies_arch.safetensors", metadata=meta)
    with pytest.raises(ModelLoadError, match="dncnn"):
        load_model(tmp_path / "lies_arch.safetensors")


def test_nan_weights_are_refused(tmp_path):
    model = DnCNN(nf=8, depth=3, bn=False)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["layers.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(sd, tmp_path / "nan.safetensors")
    with pytest.raises(ModelLoadError, match="NaN"):
        load_model(tmp_path / "nan.safetensors")


def test_corrupt_and_hostile_safetensors(tmp_path):
    (tmp_path / "zero.safetensors").write_bytes(b"")
    (tmp_path / "text.safetensors").write_text("hello, I am not a model")
    # a header that declares a tensor far larger than the file
    header = json.dumps({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}}).encode()
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    # a header size field larger than the file
    (tmp_path / "bighead.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
    for name in ("zero", "text", "huge", "bighead"):
        with pytest.raises(ModelLoadError) as info:
            load_model(tmp_path / f"{name}.safetensors")
        assert "\n" not in str(info.value) and name in str(info.value)


def test_unknown_things(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unknown weight format"):
        load_model(tmp_path / "model.h5")
    save_file({"foo.weight": torch.zeros(3, 3)}, tmp_path / "other.safetensors")
    with pytest.raises(ModelLoadError, match="unrecognised architecture"):
        load_model(tmp_path / "other.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ModelLoadError, match="not a state dict"):
        load_model(tmp_path / "list.pth")


def test_third_party_sr_weights_load_through_spandrel(tmp_path):
    """A Real-ESRGAN 'Compact' (SRVGGNet) state dict is not one of ours: spandrel recognises it."""
    pytest.importorskip("spandrel")
    from spandrel.architectures.Compact import Compact

    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
    path = tmp_path / "compact.pth"
    torch.save({"params": net.state_dict()}, path)
    loaded = load_model(path)
    assert loaded.arch.startswith("spandrel:") and loaded.scale == 2 and loaded.task == "sr"
    out = loaded.run(torch.rand(1, 3, 10, 12))
    assert out.shape == (1, 3, 20, 24) and out.min() >= 0 and out.max() <= 1
