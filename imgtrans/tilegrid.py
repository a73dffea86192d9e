"""Where images are cut, padded and bordered: the torch-free geometry that the torch engine
(:mod:`imgtrans.tiling`) and the lite engine (:mod:`imgtrans.lite`) share, so both cut the same
tiles, pad the same way and mirror the same border.

Everything here works on sizes and NumPy arrays; importing it never imports torch.
"""

from __future__ import annotations

import itertools

import numpy as np


def split(size: int, tile: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Split ``[0, size)`` into about equal pieces of at most ``tile`` whose cut points are multiples
    of ``multiple``; returns ``[(start, length), ...]`` covering the range exactly once."""
    n = max(1, -(-size // max(tile, 1)))
    cuts = sorted({min(size, round(i * size / n / multiple) * multiple) for i in range(n + 1)} | {0, size})
    return [(a, b - a) for a, b in itertools.pairwise(cuts) if b > a]


def regions(height: int, width: int, tile: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """The tiles of a ``height`` x ``width`` image, row by row: ``[(y, x, h, w), ...]``."""
    return [(y, x, th, tw) for y, th in split(height, tile, multiple) for x, tw in split(width, tile, multiple)]


def padded_size(height: int, width: int, multiple: int, minimum: int = 1) -> tuple[int, int]:
    """The size an image is padded to (bottom/right) so that both sides are multiples of
    ``multiple`` and at least ``minimum``."""
    def one(n: int) -> int:
        n = max(minimum, -(-n // multiple) * multiple)
        return -(-n // multiple) * multiple

    return one(height), one(width)


def pad_mode(height: int, width: int, pad_h: int, pad_w: int) -> str:
    """``"reflect"`` where the image is big enough to mirror the padding, else ``"replicate"``."""
    return "reflect" if (pad_h < height and pad_w < width) else "replicate"


def border_mode(height: int, width: int, context: int) -> str:
    """How the mirrored border of ``context`` pixels per side is made: ``"reflect"``, or
    ``"replicate"`` where the image is too small to mirror it."""
    return "reflect" if min(height, width) > context else "replicate"


def pad_array(x: np.ndarray, multiple: int, minimum: int = 1) -> np.ndarray:
    """``(1,C,H,W)`` padded at the bottom/right to :func:`padded_size` (:func:`pad_mode`)."""
    _, _, h, w = x.shape
    th, tw = padded_size(h, w, multiple, minimum)
    if (th, tw) == (h, w):
        return x
    mode = "reflect" if pad_mode(h, w, th - h, tw - w) == "reflect" else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, th - h), (0, tw - w)), mode=mode)


def add_border_array(pixels: np.ndarray, context: int) -> np.ndarray:
    """``(H,W,C)`` -> ``(H+2c,W+2c,C)`` with ``context`` pixels mirrored onto every side (:func:`border_mode`)."""
    if context <= 0:
        return pixels
    h, w = pixels.shape[:2]
    mode = "reflect" if border_mode(h, w, context) == "reflect" else "edge"
    return np.pad(pixels, ((context, context), (context, context), (0, 0)), mode=mode)


def cut_border(out: np.ndarray, context: int, scale: int, height: int, width: int) -> np.ndarray:
    """The inside of an ``(H',W',C)`` output of a bordered input: the border's ``context * scale``
    output pixels cut away, leaving ``height * scale`` x ``width * scale``."""
    if context <= 0:
        return out
    c = context * scale
    return np.ascontiguousarray(out[c : c + height * scale, c : c + width * scale])


def tile_window(y: int, x: int, th: int, tw: int, height: int, width: int, context: int,
                blend: int = 0) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """For the tile ``(y, x, th, tw)`` of a ``height`` x ``width`` input: the area kept (the core grown
    by ``blend`` where a neighbour exists) and the area read (the kept area grown by ``context``,
    clipped to the image), each as ``(y0, x0, y1, x1)`` in input pixels."""
    ky0, kx0 = max(0, y - blend), max(0, x - blend)
    ky1, kx1 = min(height, y + th + blend), min(width, x + tw + blend)
    cy0, cx0 = max(0, ky0 - context), max(0, kx0 - context)
    cy1, cx1 = min(height, ky1 + context), min(width, kx1 + context)
    return (ky0, kx0, ky1, kx1), (cy0, cx0, cy1, cx1)


def round_up(n: int, multiple: int) -> int:
    return -(-n // max(multiple, 1)) * max(multiple, 1)
