"""Training the CycleGAN generators with the app's mirrored border (``--edge-context``): the trainer's
border path computes what the app computes with the exported model, a run with it trains, and its
losses differ from a run without it from the first iteration on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training import QUIET, TINY_GAN, domains, losses_of, one_thread, pattern  # noqa: F401 - fixtures

from imgtrans.training.config import resolve


def test_edge_context_is_validated():
    with pytest.raises(ValueError, match="--edge-context"):
        resolve("cyclegan", {"domain_a": "a", "domain_b": "b", "size": 32, "edge_context": 32})
    with pytest.raises(ValueError, match="--edge-context"):
        resolve("cyclegan", {"domain_a": "a", "domain_b": "b", "edge_context": -1})
    assert resolve("cyclegan", {"domain_a": "a", "domain_b": "b", "size": 64, "edge_context": 32}).edge_context == 32


def test_a_run_with_a_border_trains_and_matches_the_apps_path(domains, isolated_home):
    from imgtrans.tiling import run_model, run_with_edge_context
    from imgtrans.training.loop import train
    from imgtrans.weights import load_model, read_safetensors_metadata

    a, b = domains
    base = {**TINY_GAN, **QUIET, "domain_a": str(a), "domain_b": str(b), "steps": 3}
    list(train(resolve("cyclegan", dict(base, name="bare"))))
    list(train(resolve("cyclegan", dict(base, name="border", edge_context=16, export=True))))
    bare, border = losses_of("bare"), losses_of("border")
    assert len(border) == 3
    assert all(np.isfinite(float(v)) for row in border for v in row[1:] if v)
    assert bare[0][0] == border[0][0] and bare[0] != border[0]  # same weights, other inputs: other losses

    path = isolated_home / "models" / "border_a2b.safetensors"
    assert '"edge_context": 16' in read_safetensors_metadata(path)["train_options"]
    model = load_model(path)
    assert model.edge_context == 48  # the app's border for an n_down=2 generator
    # the trainer's border path is the app's: the same output for a real-sized picture, to rounding
    rgb = np.concatenate([pattern(5, 80, 64), pattern(6, 80, 64)[:, :, ::-1]], axis=0)  # 128x80
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        app = run_model(model, x, tile=0)
        ours = model.from_model_range(run_with_edge_context(model.module, model.to_model_range(x), model.edge_context))
    assert app.shape == ours.shape == x.shape
    assert float((app - ours).abs().max()) < 1e-4
