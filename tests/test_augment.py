"""DiffAugment for the CycleGAN discriminators (imgtrans.training.augment): each transform does what
it says on a real photo crop, draws are reproducible from the seed, gradients reach the generator,
and a run with --d-augment trains, logs different discriminator losses and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_training import QUIET, TINY_GAN, domains, losses_of, one_thread  # noqa: F401 - fixtures

from imgtrans.training.augment import color, cutout, diff_augment, parse_policy, translation
from imgtrans.training.config import resolve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A (2,3,64,80) crop pair of a bundled sample photo, in [-1,1]."""
    rgb = np.asarray(Image.open(ROOT / "resources" / "samples" / "mars_nasa.jpg").convert("RGB")).copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1
    return torch.stack([x[:, :64, :80], x[:, 64:128, 80:160]])


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_policy_parsing_and_validation():
    assert parse_policy("cutout, Translation") == ("translation", "cutout")  # canonical order
    assert parse_policy("") == parse_policy(None) == parse_policy("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation flip"):
        parse_policy("translation,flip")
    with pytest.raises(ValueError, match="--d-augment"):
        resolve("cyclegan", {"domain_a": "a", "domain_b": "b", "d_augment": "rotate"})
    assert resolve("cyclegan",
                   {"domain_a": "a", "domain_b": "b", "d_augment": "color,cutout"}).d_augment == "color,cutout"


def test_translation_is_a_whole_pixel_shift_with_grey_fill(photo):
    out = translation(photo, g(3))
    assert out.shape == photo.shape
    h, w = photo.shape[-2:]
    for i in range(len(photo)):  # each image is the input shifted by one (dy, dx) within 1/8 of the side
        matches = []
        for dy in range(-(h // 8), h // 8 + 1):
            for dx in range(-(w // 8), w // 8 + 1):
                ref = torch.zeros_like(photo[i])
                ys, xs = slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))
                yt, xt = slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))
                ref[:, ys, xs] = photo[i][:, yt, xt]
                if torch.equal(ref, out[i]):
                    matches.append((dy, dx))
        assert len(matches) == 1, matches
    assert not torch.equal(out, photo)  # with this seed at least one image moved


def test_cutout_greys_one_half_size_rectangle_and_keeps_the_rest(photo):
    out = cutout(photo, g(5))
    h, w = photo.shape[-2:]
    for i in range(len(photo)):
        cut = (out[i] == 0).all(0) & (photo[i] != 0).any(0)
        rows, cols = cut.any(1).nonzero().flatten(), cut.any(0).nonzero().flatten()
        assert 0 < len(rows) <= h // 2 and 0 < len(cols) <= w // 2
        box = torch.zeros_like(cut)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        assert torch.equal(cut, box)  # one solid rectangle
        assert torch.equal(out[i][:, ~box], photo[i][:, ~box])  # nothing else touched


def test_color_jitter_changes_each_image_differently_and_draws_are_reproducible(photo):
    a, b = color(photo, g(1)), color(photo, g(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, color(photo, g(2)))
    assert (a - photo).abs().mean() > 0.01
    shift = (a - photo).mean(dim=(1, 2, 3))
    assert abs(float(shift[0] - shift[1])) > 1e-3  # per-image parameters, not one for the batch


def test_diff_augment_is_differentiable_and_empty_policy_is_the_identity(photo):
    assert diff_augment(photo, (), g()) is photo
    x = photo.clone().requires_grad_(True)
    y = diff_augment(x, parse_policy("color,translation,cutout"), g(7))
    y.square().sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert torch.equal(diff_augment(photo, ("translation", "cutout"), g(7)),
                       diff_augment(photo, ("translation", "cutout"), g(7)))


def test_a_run_with_d_augment_reaches_the_discriminators_and_resumes_exactly(domains, isolated_home):
    import threading

    from imgtrans.training import events as ev
    from imgtrans.training.loop import train

    a, b = domains
    base = {**TINY_GAN, **QUIET, "domain_a": str(a), "domain_b": str(b), "steps": 4}
    list(train(resolve("cyclegan", dict(base, name="plain"))))
    list(train(resolve("cyclegan", dict(base, name="aug", d_augment="translation,cutout"))))
    cfg = resolve("cyclegan", dict(base, name="aug-stopped", d_augment="translation,cutout"))
    cancel = threading.Event()
    for e in train(cfg, cancel):
        if isinstance(e, ev.Step) and e.step == 2:
            cancel.set()
    list(train(cfg))  # continues from iteration 2
    plain, aug = losses_of("plain"), losses_of("aug")
    assert plain[0] != aug[0]  # the first iteration's losses already differ: D saw augmented images
    assert losses_of("aug-stopped") == aug
