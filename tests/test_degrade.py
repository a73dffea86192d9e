"""Real-world SR degradations (issue 31): Real-ESRGAN's second-order pipeline in
imgtrans.training.degrade, and the SR trainer's --degrade realworld (a few tiny steps, exact resume,
what the exported model records)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_training import QUIET, losses_of, make_folder, one_thread, run_events  # noqa: F401 - fixtures

from imgtrans.training import degrade as dg, events as ev
from imgtrans.training.config import resolve
from imgtrans.training.data import generator, load_rgb8, to_unit
from imgtrans.training.loop import train

PHOTO = Path(__file__).parent / "data" / "photos" / "astronaut.png"


@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    """A real photo (astronaut portrait, 96 px): (3,96,96) in [0,1]."""
    return to_unit(load_rgb8(PHOTO))


@pytest.mark.parametrize("scale", [2, 4])
def test_realworld_pairs_are_a_pure_function_of_the_seed(hr, scale):
    outs = [dg.realworld(hr, scale, generator(0, "t", i)) for i in range(8)]
    again = [dg.realworld(hr, scale, generator(0, "t", i)) for i in range(8)]
    for a, b in zip(outs, again):
        assert torch.equal(a, b)
        assert a.shape == (3, 96 // scale, 96 // scale) and a.dtype == torch.float32
        assert a.min() >= 0 and a.max() <= 1
        assert torch.equal(a * 255, (a * 255).round())  # quantised like a real 8-bit picture
    # every seed gives another degradation
    assert all(not torch.equal(outs[i], outs[j]) for i in range(8) for j in range(i + 1, 8))


def test_realworld_blurs_and_adds_noise(hr):
    """Over 24 seeds the pipeline removes detail from a real photo (blur, resizing; the clean
    bicubic LR is the reference) by widely different amounts, moves every picture away from the clean
    one, and leaves visible noise on a flat grey picture, which bicubic downscaling keeps flat."""
    clean = F.interpolate(hr[None], scale_factor=0.25, mode="bicubic", antialias=True)[0].clamp(0, 1)

    def detail(x):  # mean absolute Laplacian: high-frequency energy
        lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).expand(3, 1, 3, 3)
        return float(F.conv2d(x[None], lap, groups=3).abs().mean())

    lrs = [dg.realworld(hr, 4, generator(1, i)) for i in range(24)]
    ratios = sorted(detail(x) / detail(clean) for x in lrs)
    assert ratios[12] < 0.8 and ratios[-1] / ratios[0] > 2, ratios
    assert all(float((x - clean).abs().mean()) > 0.005 for x in lrs)
    flat = torch.full((3, 96, 96), 0.5)
    noise = sorted(float(dg.realworld(flat, 4, generator(1, i)).std()) * 255 for i in range(24))
    assert noise[0] > 1 and noise[12] > 5, noise  # grey levels


def test_kernels_are_normalised_and_match_kornias_gaussian():
    from kornia.filters import get_gaussian_kernel2d

    iso = dg.shaped_kernel(15, 2.0, 2.0, 0.0)
    ref = get_gaussian_kernel2d((15, 15), (2.0, 2.0))[0]
    assert torch.allclose(iso, ref, atol=1e-6)
    # an anisotropic kernel turned by 90 degrees is the array turned by 90 degrees, and the one with its
    # sigmas swapped; beta 1 is the plain Gaussian
    a = dg.shaped_kernel(21, 3.0, 1.0, 0.3)
    turned = dg.shaped_kernel(21, 3.0, 1.0, 0.3 + math.pi / 2)
    assert torch.allclose(turned, torch.rot90(a), atol=1e-6) and not torch.allclose(turned, a, atol=1e-4)
    assert torch.allclose(turned, dg.shaped_kernel(21, 1.0, 3.0, 0.3), atol=1e-6)
    assert torch.allclose(dg.shaped_kernel(21, 3.0, 1.0, 0.3, "generalized", 1.0), a, atol=1e-6)
    assert not torch.allclose(dg.shaped_kernel(21, 3.0, 1.0, 0.3, "plateau", 1.5), a, atol=1e-3)
    for i in range(40):  # every random kernel: odd size 7-21, sums to 1, point-symmetric
        k = dg.random_kernel(generator(2, i), dg.REALWORLD.kernel_prob, (0.2, 3.0), (0.5, 4.0), (1.0, 2.0), 0.3)
        assert k.shape[0] == k.shape[1] and k.shape[0] in dg.KERNEL_SIZES
        assert abs(float(k.sum()) - 1) < 1e-5 and torch.allclose(k, k.flip(0, 1), atol=1e-6)


def test_sinc_kernel_is_a_circular_low_pass_with_ringing():
    k = dg.sinc_kernel(21, math.pi / 3)
    assert abs(float(k.sum()) - 1) < 1e-5 and float(k.min()) < 0  # negative lobes: the ringing
    assert torch.allclose(k, k.T, atol=1e-7)
    spectrum = torch.fft.fftshift(torch.fft.fft2(F.pad(k, (0, 43, 0, 43))).abs())  # 64x64 response
    centre = spectrum[32, 32]
    assert abs(float(centre) - 1) < 1e-4
    assert float(spectrum[32, 32 + 28]) < 0.1  # far above the cutoff (pi/3 = 10.7 of 32 bins): stopped


def test_operations_keep_range_and_grey_noise_is_the_same_on_every_channel():
    x = torch.full((1, 3, 16, 16), 0.5)
    g = dg.gaussian_noise(x, 20.0, True, generator(3))
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2]) and float(g.std()) > 0.05
    c = dg.gaussian_noise(x, 20.0, False, generator(3))
    assert not torch.equal(c[:, 0], c[:, 1])
    p = dg.poisson_noise(torch.rand(2, 3, 16, 16, generator=generator(4)), 3.0, False, generator(5))
    assert p.min() >= 0 and p.max() <= 1
    j = dg.jpeg(torch.rand(1, 3, 16, 16, generator=generator(6)), 30)
    assert j.shape == (1, 3, 16, 16) and torch.equal(j * 255, (j * 255).round())


def test_usm_sharpens_edges_and_leaves_faint_detail_alone():
    edge = torch.zeros(1, 3, 64, 64)
    edge[..., 32:] = 0.6
    edge += 0.2
    sharp = dg.usm_sharpen(edge)
    assert float(sharp[0, 0, 10, 31]) < 0.2 - 0.03 and float(sharp[0, 0, 10, 32]) > 0.8 + 0.03  # overshoot both sides
    assert torch.allclose(sharp[..., :4], edge[..., :4], atol=1e-3)  # far from the edge: unchanged
    faint = 0.5 + 0.01 * torch.rand(1, 3, 64, 64, generator=generator(7))  # 2.5 grey levels of texture
    assert float((dg.usm_sharpen(faint) - faint).abs().max()) < 1e-3  # below the 10-level threshold
    assert dg.usm_sharpen(torch.rand(1, 3, 12, 12)).shape == (1, 3, 12, 12)  # smaller than the kernel


def sr_cfg(data, name, **kw):
    return resolve("sr", dict(QUIET, data=str(data), name=name, nf=8, n_blocks=2, size=32, scale=4, batch_size=2,
                              degrade="realworld", **kw))  # fmt: skip


@pytest.mark.parametrize("arch", ["srresnet", "srvgg"])
def test_sr_trains_on_realworld_pairs_resumes_exactly_and_records_it(tmp_path, isolated_home, arch):
    data = make_folder(tmp_path / "hr", n=6, w=48, h=48)
    run_events(sr_cfg(data, "straight", steps=4, arch=arch))
    cancel = threading.Event()
    events = []
    for e in train(sr_cfg(data, "stopped", steps=4, arch=arch), cancel):
        events.append(e)
        if isinstance(e, ev.Step) and e.step == 2:
            cancel.set()
    assert isinstance(events[-1], ev.Done) and events[-1].reason == "cancelled"
    assert any(isinstance(e, ev.Info) and "real-world degradations" in e.message for e in events)
    events = run_events(sr_cfg(data, "stopped", steps=4, export=True, eval_every=4, arch=arch))
    assert [e.step for e in events if isinstance(e, ev.Step)] == [3, 4]
    assert losses_of("stopped") == losses_of("straight")

    import json

    from imgtrans.weights import load_model, read_safetensors_metadata

    path = isolated_home / "models" / "stopped.safetensors"
    meta = read_safetensors_metadata(path)
    data_meta = json.loads(meta["training_data"])
    assert data_meta["degradation"] == "realworld"
    assert data_meta["degradation_settings"]["jpeg_range"] == [30, 95]
    assert json.loads(meta["train_options"])["degrade"] == "realworld"
    assert "Real-ESRGAN" in meta["description"]
    assert meta["arch"] == arch and json.loads(meta["hparams"])["nf"] == 8
    model = load_model(path)
    assert model.arch == arch and model.run(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_usm_target_trains_towards_sharpened_patches_with_unsharpened_reals(tmp_path, isolated_home):
    from imgtrans.training.data import check_folder
    from imgtrans.training.datasets import SRDataset

    data = make_folder(tmp_path / "hr", n=6, w=48, h=48)
    cfg = sr_cfg(data, "usm", steps=2, gan_after=1, usm_target=True, perceptual="feature-matching", d_nf=8, export=True)
    events = run_events(cfg)
    import json

    from imgtrans.weights import read_safetensors_metadata

    meta = read_safetensors_metadata(isolated_home / "models" / "usm.safetensors")
    assert json.loads(meta["train_options"])["usm_target"] is True and "unsharp-masked" in meta["description"]
    steps = [e for e in events if isinstance(e, ev.Step)]
    assert set(steps[1].losses) == {"pixel", "perceptual", "adv", "D"}
    assert all(math.isfinite(float(v)) for s in steps for v in s.losses.values())
    assert any(isinstance(e, ev.Info) and "unsharp-masked" in e.message for e in events)
    records = check_folder(data, "data", min_side=32).train
    s = SRDataset(records, 32, 4, "realworld", 0, usm_target=True).sample(0, 0)
    plain = SRDataset(records, 32, 4, "realworld", 0).sample(0, 0)
    assert torch.equal(s["real"], plain["hr"]) and not torch.equal(s["hr"], s["real"])
    assert torch.equal(s["hr"], dg.usm_sharpen(plain["hr"][None])[0])


def test_cli_offers_realworld_and_config_refuses_unknown_degradations(tmp_path):
    from imgtrans.training.cli import build_parser

    args = build_parser().parse_args(["sr", "--data", str(tmp_path), "--degrade", "realworld"])
    assert args.degrade == "realworld"
    with pytest.raises(ValueError, match="realworld"):
        resolve("sr", {"data": str(tmp_path), "degrade": "jpeg"})
