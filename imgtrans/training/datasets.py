"""Training data, part 2: deterministic datasets and the batches of each iteration.

Every random choice is a pure function of the run's seed and *where* it is made, never of what ran
before: the image order of epoch ``e`` comes from ``(seed, e)`` and the augmentation of sample ``i`` of
epoch ``e`` from ``(seed, e, i)``. So iteration ``k`` always sees the same batch, whether the run was
resumed, how many loader processes there are, or how many torchrun processes share the batch
(process ``r`` of ``w`` takes the ``r``-th contiguous slice of the global batch). Resuming needs
nothing but the step counter.

Samples handed to the networks are float tensors; their ranges are documented per dataset.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from imgtrans.training.data import ImageCache, ImageRecord, generator, load_rgb8, resize, to_unit
from imgtrans.training.errors import DataError


def epoch_order(n: int, seed: int, epoch: int, stream: str, index: int) -> int:
    """Which of ``n`` images sits at position ``index`` of epoch ``epoch``: a fresh permutation per
    pass over the images (positions past ``n`` start another pass with another permutation)."""
    cycle, pos = divmod(index, n)
    perm = torch.randperm(n, generator=generator(seed, "order", stream, epoch, cycle))
    return int(perm[pos])


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of ``(C,H,W)`` (k in 0..7); square crops keep their shape."""
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


# ------------------------------------------------------------------------------------ datasets


class UnpairedDataset:
    """CycleGAN: unpaired samples from two domains, as the reference's ``unaligned`` dataset.

    An epoch has ``max(len(A), len(B))`` samples; each image is resized (bicubic) so that its short
    side is ``load_size``, keeping its aspect (``keep_aspect``; the app runs the models on unsquashed
    pictures, and two domains squashed by different ratios would give the discriminator a cue that is
    not style) or, as the reference's ``resize_and_crop``, to ``load_size`` square; then randomly
    cropped to ``size`` and flipped left-right with probability 0.5.
    ``sample(e, i)`` -> ``{"A": (3,size,size), "B": (3,size,size)}`` float in [-1,1].
    """

    def __init__(
        self,
        a: Sequence[ImageRecord],
        b: Sequence[ImageRecord],
        size: int,
        load_size: int,
        seed: int,
        flip: bool = True,
        cache_mb: int = 2048,
        keep_aspect: bool = False,
    ):
        self.domains = {"A": list(a), "B": list(b)}
        self.size, self.load_size, self.seed, self.flip = size, max(load_size, size), seed, flip
        self.keep_aspect = keep_aspect
        self.cache = ImageCache(cache_mb * 2**20)

    def __len__(self) -> int:
        return max(len(v) for v in self.domains.values())

    def _load_shape(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) an image of ``width x height`` is resized to."""
        if not self.keep_aspect:
            return self.load_size, self.load_size
        short = min(width, height)
        return (max(self.load_size, round(height * self.load_size / short)),
                max(self.load_size, round(width * self.load_size / short)))

    def _prepared(self, rec: ImageRecord) -> torch.Tensor:
        def load() -> torch.Tensor:
            img = load_rgb8(rec.path)
            return resize(img, *self._load_shape(img.shape[2], img.shape[1]))

        return self.cache.get((rec.path, self.load_size, self.keep_aspect), load)

    def sample(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        out = {}
        for name, records in self.domains.items():
            rec = records[epoch_order(len(records), self.seed, epoch, name, index)]
            img = self._prepared(rec)
            g = generator(self.seed, "aug", name, epoch, index)
            if self.keep_aspect:
                top = int(torch.randint(0, img.shape[1] - self.size + 1, (), generator=g))
                left = int(torch.randint(0, img.shape[2] - self.size + 1, (), generator=g))
            else:
                top, left = (int(v) for v in torch.randint(0, self.load_size - self.size + 1, (2,), generator=g))
            crop = img[:, top : top + self.size, left : left + self.size]
            if self.flip and bool(torch.rand((), generator=g) < 0.5):
                crop = crop.flip(-1)
            out[name] = to_unit(crop) * 2.0 - 1.0
        return out

    def fixed(self, records: Sequence[ImageRecord], grid: int = 1) -> torch.Tensor:
        """Held-out images, resized as for training, then center-cropped (``grid`` 1), or cut into a
        ``grid x grid`` set of evenly spaced crops spanning each image (overlapping where the image is
        less than ``grid`` crops wide): ``(N*grid*grid,3,size,size)`` in [-1,1], image by image."""
        crops = []
        for r in records:
            img = self._prepared(r)
            for top in spaced_offsets(img.shape[1] - self.size, grid):
                for left in spaced_offsets(img.shape[2] - self.size, grid):
                    crops.append(img[:, top : top + self.size, left : left + self.size])
        return torch.stack([to_unit(c) * 2.0 - 1.0 for c in crops])


class PhotoDataset(UnpairedDataset):
    """Style training: random crops of one folder of photos, prepared as :class:`UnpairedDataset`
    prepares each domain (short side resized to ``load_size``, aspect kept when ``keep_aspect``,
    random ``size`` crop, left-right flip). An epoch is one pass over the photos.
    ``sample(e, i)`` -> ``{"photo": (3,size,size)}`` float in [-1,1]."""

    def __init__(self, photos: Sequence[ImageRecord], size: int, load_size: int, seed: int, flip: bool = True,
                 cache_mb: int = 2048, keep_aspect: bool = True):  # fmt: skip
        super().__init__(photos, (), size, load_size, seed, flip, cache_mb, keep_aspect)
        self.domains = {"photo": list(photos)}


def spaced_offsets(room: int, n: int) -> list[int]:
    """``n`` offsets from 0 to ``room`` evenly spaced (the centre for ``n == 1``)."""
    if n == 1:
        return [room // 2]
    return [round(room * i / (n - 1)) for i in range(n)]


class PatchDataset:
    """Random ``size`` px patches of clean images (SR and denoise), with a random flip/rotation.

    An epoch draws ``patches_per_image`` patches from every image (each pass over the images in a
    new order). Subclasses degrade the patch; ``sample(e, i)`` returns float tensors in [0,1].
    """

    def __init__(self, records: Sequence[ImageRecord], size: int, seed: int, cache_mb: int = 2048,
                 patches_per_image: int = 1):  # fmt: skip
        self.records = list(records)
        self.size, self.seed, self.patches_per_image = size, seed, max(1, patches_per_image)
        self.cache = ImageCache(cache_mb * 2**20)

    def __len__(self) -> int:
        return len(self.records) * self.patches_per_image

    def image(self, rec: ImageRecord) -> torch.Tensor:
        img = self.cache.get(rec.path, lambda: load_rgb8(rec.path))
        if min(img.shape[-2:]) < self.size:  # only with small_policy="upscaled"
            h, w = img.shape[-2:]
            f = self.size / min(h, w)
            img = resize(img, max(self.size, math.ceil(h * f)), max(self.size, math.ceil(w * f)))
        return img

    def clean_patch(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Generator]:
        rec = self.records[epoch_order(len(self.records), self.seed, epoch, "data", index)]
        img = self.image(rec)
        g = generator(self.seed, "aug", epoch, index)
        h, w = img.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, (), generator=g))
        left = int(torch.randint(0, w - self.size + 1, (), generator=g))
        patch = img[:, top : top + self.size, left : left + self.size]
        patch = dihedral(patch, int(torch.randint(0, 8, (), generator=g)))
        return to_unit(patch), g

    def center(self, rec: ImageRecord, side: int, multiple: int = 1) -> torch.Tensor:
        """A deterministic center crop of at most ``side`` px (a multiple of ``multiple``): ``(3,h,w)``."""
        img = self.image(rec)
        h, w = img.shape[-2:]
        ch, cw = min(h, side) // multiple * multiple, min(w, side) // multiple * multiple
        top, left = (h - ch) // 2, (w - cw) // 2
        return to_unit(img[:, top : top + ch, left : left + cw])


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(B,C,H,W)`` blurred with a Gaussian of ``sigma`` px, 3 sigma each side (at least 1 px),
    reflect padding: :func:`kornia.filters.gaussian_blur2d`, separable."""
    from kornia.filters import gaussian_blur2d

    size = 2 * max(1, math.ceil(3 * sigma)) + 1
    return gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect", separable=True)


DEGRADATIONS = ("bicubic", "blur", "realworld")  # the SR trainer's --degrade


def downscale(hr: torch.Tensor, scale: int, degrade: str, g: torch.Generator | None) -> torch.Tensor:
    """``(3,H,W)`` in [0,1] -> ``(3,H/scale,W/scale)`` in [0,1], quantised to 8 bits like a real image.

    ``bicubic``: antialiased bicubic. ``blur``: a Gaussian blur with sigma uniform in
    [0.2, 0.5*scale] first (drawn from ``g``; the midpoint without ``g``). ``realworld``: Real-ESRGAN's
    second-order pipeline of blur, resize, noise and JPEG (:func:`imgtrans.training.degrade.realworld`),
    every parameter drawn from ``g`` (required).
    """
    if degrade == "realworld":
        from imgtrans.training.degrade import realworld

        if g is None:
            raise ValueError("the realworld degradation draws its parameters from a generator")
        return realworld(hr, scale, g)
    x = hr[None]
    if degrade == "blur":
        hi = 0.5 * scale
        sigma = 0.2 + float(torch.rand((), generator=g)) * (hi - 0.2) if g is not None else (0.2 + hi) / 2
        x = gaussian_blur(x, sigma)
    h, w = hr.shape[-2:]
    lr = F.interpolate(x, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)[0]
    return (lr.clamp(0, 1) * 255).round() / 255


class SRDataset(PatchDataset):
    """``sample(e, i)`` -> ``{"lr": (3,size/scale,size/scale), "hr": (3,size,size)}`` in [0,1].

    ``usm_target``: as Real-ESRGAN, the patch is sharpened first (:func:`imgtrans.training.degrade.usm_sharpen`),
    ``hr`` is the sharpened patch (the pixel and perceptual losses' target) and the LR is degraded from it;
    the sample then also holds ``"real"``: the unsharpened patch, what the discriminator learns as real."""

    def __init__(self, records, size: int, scale: int, degrade: str, seed: int, cache_mb: int = 2048,
                 patches_per_image: int = 1, usm_target: bool = False):  # fmt: skip
        super().__init__(records, size, seed, cache_mb, patches_per_image)
        self.scale, self.degrade, self.usm_target = scale, degrade, usm_target

    def _target(self, hr: torch.Tensor) -> torch.Tensor:
        if not self.usm_target:
            return hr
        from imgtrans.training.degrade import usm_sharpen

        return usm_sharpen(hr[None])[0]

    def sample(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        hr, g = self.clean_patch(epoch, index)
        target = self._target(hr)
        out = {"lr": downscale(target, self.scale, self.degrade, g), "hr": target}
        if self.usm_target:
            out["real"] = hr
        return out

    def fixed(self, records: Sequence[ImageRecord], side: int = 256) -> list[dict[str, torch.Tensor]]:
        """Held-out pairs (center crops, sharpened with ``usm_target``; fixed degradation: ``blur`` at its
        middle sigma, ``realworld`` drawn from a generator seeded by the run's seed and the image's
        position), one dict per image (sizes differ)."""
        out = []
        for k, rec in enumerate(records):
            hr = self._target(self.center(rec, side, self.scale))
            g = generator(self.seed, "val-degrade", k) if self.degrade == "realworld" else None
            out.append({"lr": downscale(hr, self.scale, self.degrade, g), "hr": hr})
        return out


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``(3,H,W)`` or ``(1,H,W)`` in [0,1] -> the same after 8-bit JPEG compression at ``quality``
    (in memory; grey JPEG for one channel)."""
    from PIL import Image

    c = x.shape[0]
    mode = "RGB" if c == 3 else "L"
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr if c == 3 else arr[:, :, 0], mode).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = torch.frombuffer(bytearray(im.convert(mode).tobytes()), dtype=torch.uint8)
    return out.view(x.shape[1], x.shape[2], c).permute(2, 0, 1).float() / 255.0


def luma(x: torch.Tensor) -> torch.Tensor:
    """``(3,H,W)`` RGB in [0,1] -> ``(1,H,W)`` Rec.601 luma (0.299, 0.587, 0.114; kornia's
    ``rgb_to_grayscale``), as :func:`imgtrans.imageio.to_gray` makes grey images."""
    from kornia.color import rgb_to_grayscale

    return rgb_to_grayscale(x)


def add_noise(
    clean: torch.Tensor,
    sigma: float,
    g: torch.Generator,
    poisson: bool = False,
    jpeg: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``(3,H,W)`` clean in [0,1] -> noisy: optional Poisson (shot) noise with a peak of 10-1000
    photons, then Gaussian noise of ``sigma`` (0-255 scale), then optional JPEG compression with a
    quality drawn from ``jpeg``. Gaussian-only results are not clipped (as in DnCNN)."""
    x = clean
    if poisson:
        peak = 10.0 ** (1.0 + 2.0 * float(torch.rand((), generator=g)))
        x = torch.poisson(x.clamp(0, 1) * peak, generator=g) / peak
    x = x + torch.randn(x.shape, generator=g) * (sigma / 255.0)
    if jpeg is not None:
        q = int(torch.randint(jpeg[0], jpeg[1] + 1, (), generator=g))
        x = jpeg_roundtrip(x, q)
    return x


EVAL_SIGMAS = (15.0, 25.0, 50.0)


class DenoiseDataset(PatchDataset):
    """``sample(e, i)`` -> ``{"noisy": (C,size,size), "clean": (C,size,size), "sigma": ()}``; images in
    [0,1] (noisy may leave it), ``sigma`` the Gaussian level on the [0,1] scale. ``channels`` 3: the
    colour patch; 1: its luma (:func:`luma`), noise added to that."""

    def __init__(self, records, size: int, sigma: tuple[float, float], seed: int, poisson: bool = False,
                 jpeg: tuple[int, int] | None = None, cache_mb: int = 2048, patches_per_image: int = 1,
                 channels: int = 3):  # fmt: skip
        super().__init__(records, size, seed, cache_mb, patches_per_image)
        self.sigma, self.poisson, self.jpeg = sigma, poisson, jpeg
        self.channels = channels

    def _planes(self, clean: torch.Tensor) -> torch.Tensor:
        return luma(clean) if self.channels == 1 else clean

    def sample(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        clean, g = self.clean_patch(epoch, index)
        clean = self._planes(clean)
        lo, hi = self.sigma
        sigma = lo + float(torch.rand((), generator=g)) * (hi - lo)
        noisy = add_noise(clean, sigma, g, self.poisson, self.jpeg)
        return {"noisy": noisy, "clean": clean, "sigma": torch.tensor(sigma / 255.0)}

    def eval_levels(self) -> list[float]:
        """The Gaussian levels (0-255 scale) evaluation reports: the benchmark levels 15/25/50 that lie in
        the trained range, else the range's midpoint (a single-level model: that level)."""
        lo, hi = self.sigma
        return [s for s in EVAL_SIGMAS if lo <= s <= hi] or [(lo + hi) / 2]

    def fixed(self, records: Sequence[ImageRecord], side: int = 128,
              multiple: int = 1) -> list[dict[str, torch.Tensor]]:
        """Held-out items: each image at every level of :meth:`eval_levels`, with fixed noise; center
        crops of at most ``side`` px, sides a multiple of ``multiple`` (the network's size multiple)."""
        levels = self.eval_levels()
        out = []
        for k, rec in enumerate(records):
            clean = self._planes(self.center(rec, side, multiple))
            for sigma in levels:
                g = generator(self.seed, "val-noise", k, sigma)
                noisy = add_noise(clean, sigma, g, self.poisson, self.jpeg)
                out.append({"noisy": noisy, "clean": clean, "sigma": torch.tensor(sigma / 255.0)})
        return out


# ------------------------------------------------------------------------------------ batches per step


class StepBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``k`` is *this process's* share of the batch of iteration ``k``.

    Iteration ``k`` is position ``k % steps_per_epoch`` of epoch ``k // steps_per_epoch``; its global
    batch is samples ``[j*B, (j+1)*B)`` of that epoch (the last partial batch of an epoch is dropped),
    and process ``rank`` of ``world`` takes the contiguous slice ``rank*B/world ...``. Items are dicts of
    stacked tensors, as the default collate would make.
    """

    def __init__(self, dataset, global_batch: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise DataError(f"--batch-size {global_batch} must be a multiple of the number of processes ({world})")
        self.dataset, self.global_batch, self.rank, self.world = dataset, global_batch, rank, world
        # an epoch smaller than one batch still makes one iteration (sample positions wrap around)
        self.steps_per_epoch = max(1, len(dataset) // global_batch)

    def __len__(self) -> int:  # unbounded in principle; the sampler decides which steps are drawn
        return 1 << 62

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        epoch, j = divmod(step, self.steps_per_epoch)
        local = self.global_batch // self.world
        first = j * self.global_batch + self.rank * local
        samples = [self.dataset.sample(epoch, first + t) for t in range(local)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def iterate_batches(batches: StepBatches, start: int, stop: int, workers: int = 0):
    """Yield ``(step, batch)`` for steps ``start .. stop-1``; with ``workers`` loader processes."""
    if workers <= 0:
        for step in range(start, stop):
            yield step, batches[step]
        return
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )
    yield from zip(range(start, stop), loader)
