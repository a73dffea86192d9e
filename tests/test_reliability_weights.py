"""Hostile weight files beyond tests/test_weights.py (issue 8): code-executing pickles inside real
zip checkpoints, safetensors headers that lie about sizes/offsets/dtypes, metadata that makes the
loader build absurd networks, and broken files in the user models folder. Each must be refused with a
one-line :class:`~imgtrans.weights.ModelLoadError` (or a one-line CLI message), never a traceback, and a
pickle's payload must never run; a broken user model must not stop listing or converting with others.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import write_rgb
from safetensors.torch import save_file

from imgtrans import catalog
from imgtrans.archs import SRResNet
from imgtrans.catalog import read_safetensors_metadata
from imgtrans.cli import main
from imgtrans.weights import ModelLoadError, load_model, save_model

# ------------------------------------------------------------------------------ code in pickles


def _payload(module: str, name: str, arg: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(arg)`` when loaded (GLOBAL + REDUCE)."""
    args = pickle.dumps((arg,), protocol=2)[2:-1]  # the tuple, without the header and STOP
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + b"R."


def _zip_checkpoint_with(tmp_path: Path, data_pkl: bytes, name: str) -> Path:
    """A real torch.save zip checkpoint whose ``data.pkl`` is replaced by ``data_pkl``."""
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(2)}, good)
    path = tmp_path / name
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, data_pkl if item.filename.endswith("data.pkl") else data)
    return path


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("subprocess", "getoutput"),
                                         ("builtins", "exec"), ("builtins", "eval")])
@pytest.mark.parametrize("suffix", [".pth", ".ckpt"])
def test_zip_checkpoint_calling_an_arbitrary_global_is_refused(tmp_path, module, name, suffix):
    marker = tmp_path / "pwned"
    if name in ("system", "getoutput"):
        arg = f"touch {marker}"
    elif name == "exec":
        arg = f"open({str(marker)!r}, 'w').close()"
    else:
        arg = f"__import__('os').system('touch {marker}')"
    payload = _payload(module, name, arg)
    path = _zip_checkpoint_with(tmp_path, payload, f"evil{suffix}")
    with pytest.raises(ModelLoadError, match="refused") as info:
        load_model(path)
    assert "\n" not in str(info.value) and f"evil{suffix}" in str(info.value)
    assert not marker.exists()
    # the payload is live: plain unpickling would have run it
    if module == "os":
        pickle.loads(payload)
        assert marker.exists()


def test_legacy_format_checkpoint_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(1), "x": Evil()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelLoadError, match="refused"):
        load_model(path)
    assert not marker.exists()


def test_cli_refuses_evil_checkpoint_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = _zip_checkpoint_with(tmp_path, _payload("os", "system", f"touch {marker}"), "evil.pth")
    write_rgb(tmp_path / "a.png")
    proc = subprocess.run([sys.executable, "-m", "imgtrans", "convert", str(tmp_path / "a.png"), "-o",
                           str(tmp_path / "o"),
                           "-m", str(path)], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert proc.returncode == 2 and "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "o" / "a.png").exists()


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.97])
def test_truncated_checkpoint(tmp_path, frac):
    good = tmp_path / "real.pth"
    torch.save(SRResNet(nf=8, n_blocks=1, scale=2).state_dict(), good)
    data = good.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "cut.pth")
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- lying safetensors


def _st(tmp_path: Path, name: str, header, data: bytes) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _t(dtype: str, shape, start: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


HOSTILE_SAFETENSORS = {
    "bytes_short_of_shape": ({"w": _t("F32", [4, 4], 0, 16)}, b"\0" * 16),  # 16 floats declared, 4 stored
    "shape_short_of_bytes": ({"w": _t("F32", [2, 2], 0, 64)}, b"\0" * 64),
    "overlapping_offsets": ({"a": _t("F32", [16], 0, 64), "b": _t("F32", [16], 32, 96)}, b"\0" * 96),
    "duplicate_offsets": ({"a": _t("F32", [16], 0, 64), "b": _t("F32", [16], 0, 64)}, b"\0" * 64),
    "gap_between_tensors": ({"a": _t("F32", [4], 0, 16), "b": _t("F32", [4], 32, 48)}, b"\0" * 48),
    "offsets_reversed": ({"w": _t("F32", [0], 16, 0)}, b"\0" * 16),
    "offset_overflow": ({"w": _t("F32", [4], 2**64 - 8, 8)}, b"\0" * 16),
    "shape_overflow": ({"w": _t("F32", [2**62, 2**62, 16], 0, 0)}, b""),
    "negative_dim": (b'{"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}', b"\0" * 16),
    "unknown_dtype": ({"w": _t("F128", [4], 0, 64)}, b"\0" * 64),
    "trailing_bytes": ({"w": _t("F32", [4], 0, 16)}, b"\0" * 1000),
    "huge_declared": ({"w": _t("F32", [100000, 100000], 0, 40_000_000_000)}, b"\0" * 16),
    "metadata_not_strings": ({"__metadata__": {"arch": 5}, "w": _t("F32", [4], 0, 16)}, b"\0" * 16),
    "metadata_is_a_list": ({"__metadata__": [1, 2], "w": _t("F32", [4], 0, 16)}, b"\0" * 16),
    "header_not_utf8": (b'{"w\xff": 1}', b""),
    "header_is_a_list": ([1, 2, 3], b""),
    "arch_is_a_path": ({"__metadata__": {"arch": "../../etc/passwd"}, "w": _t("F32", [4], 0, 16)}, b"\0" * 16),
    "hparams_is_a_list": ({"__metadata__": {"arch": "srresnet", "hparams": "[1, 2]"}, "w": _t("F32", [4], 0, 16)},
                          b"\0" * 16),
    "hparams_nan": ({"__metadata__": {"arch": "srresnet", "hparams": '{"nf": NaN}'}, "w": _t("F32", [4], 0, 16)},
                    b"\0" * 16),
    "scale_absurd": ({"__metadata__": {"arch": "srresnet",
                                       "hparams": '{"nf": 8, "n_blocks": 1, "scale": 1099511627776}'},
                      "w": _t("F32", [4], 0, 16)}, b"\0" * 16),
    "integer_weights": ({"w": _t("I64", [4], 0, 32)}, b"\0" * 32),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SAFETENSORS))
def test_lying_safetensors_give_one_clear_line(tmp_path, name):
    header, data = HOSTILE_SAFETENSORS[name]
    path = _st(tmp_path, name, header, data)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    text = str(info.value)
    assert "\n" not in text and name in text and len(text) < 400


def test_duplicate_keys_in_header_do_not_confuse_the_loader(tmp_path):
    raw = (b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},'
           b' "w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}')
    path = _st(tmp_path, "dup", raw, b"\0" * 32)
    with pytest.raises(ModelLoadError):
        load_model(path)


def _lying_hparams(tmp_path: Path, hparams: dict) -> Path:
    model = SRResNet(nf=8, n_blocks=2, scale=2)
    path = save_model(tmp_path / "real.safetensors", model, "srresnet", {"nf": 8, "n_blocks": 2, "scale": 2})
    meta = read_safetensors_metadata(path)
    meta["hparams"] = json.dumps(hparams)
    lying = tmp_path / "lying.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, lying, metadata=meta)
    return lying


def test_hparams_for_many_blocks_are_caught_by_shapes(tmp_path):
    with pytest.raises(ModelLoadError, match="do not fit srresnet"):
        load_model(_lying_hparams(tmp_path, {"nf": 8, "n_blocks": 200, "scale": 2}))


def test_hparams_demanding_a_huge_network_give_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError):
        load_model(_lying_hparams(tmp_path, {"nf": 2**40, "n_blocks": 2, "scale": 2}))


def test_negative_hparams_give_a_clear_error(tmp_path):
    path = _st(tmp_path, "neg", {"__metadata__": {"arch": "dncnn", "hparams": '{"nf": -8, "depth": -4}'},
                                 "w": _t("F32", [4], 0, 16)}, b"\0" * 16)
    with pytest.raises(ModelLoadError):
        load_model(path)


def test_float8_weights_give_a_clear_error(tmp_path):
    path = _st(tmp_path, "f8", {"w": _t("F8_E4M3", [4], 0, 4)}, b"\x7f" * 4)
    with pytest.raises(ModelLoadError):
        load_model(path)


def test_deeply_nested_header_gives_a_clear_error(tmp_path):
    path = _st(tmp_path, "deep", b"[" * 100000 + b"]" * 100000, b"")
    with pytest.raises(ModelLoadError):
        load_model(path)


# ----------------------------------------------------------------------- the user models folder


def test_one_bad_user_model_does_not_break_convert(tmp_path, tiny_models):
    from imgtrans.paths import user_models_dir

    user = user_models_dir()
    user.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, user / "bad.safetensors", metadata={"id": "bad", "scale": "x2"})
    write_rgb(tmp_path / "a.png")
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]),
                 "--no-progress"]) == 0


def test_hostile_header_in_user_models_does_not_break_listing(tmp_path):
    from imgtrans.paths import user_models_dir

    user = user_models_dir()
    user.mkdir(parents=True)
    raw = b"[" * 100000 + b"]" * 100000
    (user / "deep.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert main(["models", "--json"]) == 0


def test_unreadable_user_models_folder_does_not_break_convert(tmp_path, tiny_models, monkeypatch):
    class Unreadable(type(Path())):
        def is_dir(self):
            raise PermissionError(13, "Permission denied", str(self))

        def iterdir(self):
            raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(catalog, "user_models_dir", lambda: Unreadable(tmp_path / "models"))
    write_rgb(tmp_path / "a.png")
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise"]),
                 "--no-progress"]) == 0


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes_as_pth_give_a_load_error(tmp_path, seed):
    """torch's weights-only unpickler fails on garbage with all kinds of errors (seed 2: IndexError
    inside it); every one must become a ModelLoadError naming the file, never escape."""
    import random

    path = tmp_path / "not_a_model.pth"
    path.write_bytes(random.Random(seed).randbytes(2000))
    with pytest.raises(ModelLoadError, match=r"not_a_model\.pth"):
        load_model(path)
