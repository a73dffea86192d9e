"""Tiled inference equals untiled inference, for every family, at odd sizes, within budget."""

import pytest
import torch

from imgtrans.tiling import auto_tile, pad_to_multiple, run_model, run_tiled
from imgtrans.weights import load_model


def _image(h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (xx * yy).sqrt()])[None]
    return (base * 0.7 + torch.rand(1, 3, h, w, generator=gen) * 0.3).clamp(0, 1)


def test_instance_norm_generator_streamed_equals_untiled_512(tiny_models):
    """The acceptance figure: < 1/255 mean abs difference on 512x512 (we get float rounding)."""
    model = load_model(tiny_models["style"])
    x = _image(512, 512)
    whole = run_model(model, x, tile=0)
    banded = run_model(model, x, tile=64)
    diff = (whole - banded).abs()
    print(f"instance-norm streaming on 512x512: mean abs diff {diff.mean():.2e}, max {diff.max():.2e}")
    assert diff.mean() < 1 / 255 / 100 and diff.max() < 1e-4


def test_naive_tiles_would_not_do_for_instance_norm(tiny_models):
    """Why the streamed path exists: independent tiles of an instance-norm generator differ a lot."""
    model = load_model(tiny_models["style"])
    x = _image(128, 128)
    whole = run_model(model, x, tile=0)
    left = model.run(x[:, :, :, :64])
    assert (whole[:, :, :, :64] - left).abs().mean() > 1e-3


def test_resize_upsampling_generator_streams_exactly(tmp_path):
    from imgtrans.archs import ResnetGenerator
    from imgtrans.weights import save_model

    torch.manual_seed(1)
    hp = {"ngf": 8, "n_blocks": 2, "upsample": "resize"}
    net = ResnetGenerator(**hp).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model = load_model(save_model(tmp_path / "r.safetensors", net, "cyclegan_resnet", hp, {}))
    assert model.hparams["upsample"] == "resize"
    x = _image(150, 98, seed=2)
    whole = run_model(model, x, tile=0)
    banded = run_model(model, x, tile=32)
    assert (whole - banded).abs().max() < 1e-4


@pytest.mark.parametrize("size", [(37, 53), (130, 97), (8, 300)])
def test_odd_sizes_streamed(tiny_models, size):
    model = load_model(tiny_models["style"])
    x = _image(*size, seed=1)
    whole = run_model(model, x, tile=0)
    banded = run_model(model, x, tile=16)
    assert whole.shape == banded.shape == (1, 3, *size)
    assert (whole - banded).abs().max() < 1e-4


@pytest.mark.parametrize("key", ["sr", "sr_vgg", "denoise", "denoise_map", "ffdnet"])
@pytest.mark.parametrize("size", [(61, 47), (100, 100), (33, 71)])
def test_local_models_tiled_equals_untiled(tiny_models, key, size):
    model = load_model(tiny_models[key])
    x = _image(*size, seed=2)
    whole = run_model(model, x, tile=0, noise_level=20)
    tiled = run_model(model, x, tile=24, noise_level=20)
    assert whole.shape == tiled.shape == (1, 3, size[0] * model.scale, size[1] * model.scale)
    assert (whole - tiled).abs().max() < 1e-5


def test_blended_tiles_for_unknown_receptive_field(tiny_models):
    """Third-party models have no known radius: overlapping tiles are blended with cosine weights.
    No seam: the error near tile borders is not larger than elsewhere."""
    model = load_model(tiny_models["sr"])
    model.receptive_radius = None
    x = _image(96, 96, seed=3)
    whole = run_model(model, x, tile=0)
    tiled = run_tiled(model, x, tile=32, context=2, blend=8)  # deliberately too little context
    err = (whole - tiled).abs()
    assert err.mean() < 1e-3
    border_cols = err[..., [63, 64, 127, 128]].mean()
    assert border_cols < 5 * err.mean() + 1e-3


def test_oom_splits_the_tile_and_retries(tiny_models, monkeypatch):
    model = load_model(tiny_models["sr"])
    x = _image(64, 64, seed=4)
    whole = run_model(model, x, tile=0)
    real_run = model.run
    calls = []

    def picky_run(t, noise_level=None):
        calls.append(tuple(t.shape[-2:]))
        if t.shape[-1] * t.shape[-2] > 40 * 40:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_run(t, noise_level)

    monkeypatch.setattr(model, "run", picky_run)
    tiled = run_tiled(model, x, tile=64, context=model.receptive_radius)
    assert (whole - tiled).abs().max() < 1e-5
    assert len(calls) > 4


def test_progress_and_cancel(tiny_models):
    model = load_model(tiny_models["style"])
    seen = []

    class Stop(Exception):
        pass

    def step(done, total):
        seen.append((done, total))
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        run_model(model, _image(64, 64), tile=16, step=step)
    assert seen[-1][0] == 3 and seen[-1][1] > 3


def test_auto_tile_respects_budget(tiny_models):
    model = load_model(tiny_models["sr"])
    small, big = auto_tile(model, budget=10_000_000), auto_tile(model, budget=1_000_000_000)
    assert 64 <= small < big <= 2048


def test_pad_to_multiple_tiny_inputs():
    x = torch.rand(1, 3, 1, 1)
    padded, h, w = pad_to_multiple(x, 4, minimum=32)
    assert padded.shape == (1, 3, 32, 32) and (h, w) == (1, 1)
    assert torch.allclose(padded, x.expand_as(padded))


@pytest.mark.parametrize("tile", [0, 32])
def test_style_generators_run_with_a_mirrored_border_that_is_cut_away(tiny_models, tile):
    """run_model mirrors ArchSpec.edge_context pixels onto every side of a CycleGAN generator's input
    and crops them off its output, on the whole-image and the band-streamed path alike."""
    import torch.nn.functional as F

    model = load_model(tiny_models["style"])
    c = model.edge_context
    assert c == 48 and c % model.size_multiple == 0
    x = _image(60, 84)
    out = run_model(model, x, tile=tile)
    assert out.shape == x.shape
    padded = F.pad(x, (c, c, c, c), mode="reflect")
    with torch.no_grad():
        expect = model.run(padded)[:, :, c:-c, c:-c]
    assert (out - expect).abs().max() < 1e-4
    assert (out - model.run(x)).abs().mean() > 1e-4  # and that is not what the bare network gives
    tiny = _image(12, 20)  # smaller than the border: replicated instead of mirrored
    assert run_model(model, tiny, tile=tile).shape == tiny.shape


def test_local_models_get_no_border(tiny_models):
    for key in ("sr", "denoise", "ffdnet"):
        assert load_model(tiny_models[key]).edge_context == 0


def test_ffdnet_pads_odd_sizes_by_reflection(tiny_models):
    """FFDNet (size multiple 2) on an odd-sized image: the engine mirrors one row/column at the bottom and
    right, runs it and crops; the result is the network's on that padded image."""
    import torch.nn.functional as F

    model = load_model(tiny_models["ffdnet"])
    assert model.size_multiple == 2 and model.receptive_radius == 9
    x = _image(37, 51, seed=5)
    out = run_model(model, x, tile=0, noise_level=20)
    with torch.no_grad():
        expect = model.run(F.pad(x, (0, 1, 0, 1), mode="reflect"), noise_level=20)[:, :, :37, :51]
    assert out.shape == x.shape and (out - expect).abs().max() < 1e-6
