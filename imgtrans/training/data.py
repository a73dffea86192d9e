"""Training data, part 1: folder checks, train/val splits, decoding.

:func:`check_folder` decodes every image once with :func:`imgtrans.imageio.read_image` (the project's
one decoder) and reports what it found; :func:`load_rgb8` turns a file into RGB (grey replicated, alpha
composited onto white) kept in memory as ``(3,H,W)`` uint8 tensors. The datasets built on these live in
:mod:`imgtrans.training.datasets`.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from imgtrans.training.errors import DataError

IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".gif",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".avif", ".jp2", ".qoi",
)  # fmt: skip
MIN_IMAGES = 4  # fewer usable images than this is refused: nothing useful can be learned
SPLITS_FILE = "splits.json"  # written by training/data/split.py: {"train": [...], "val": [...], "test": [...]}
VAL_FRACTION = 0.1  # without splits.json: this share of files (by name hash) is held out
MIN_HASH_SPLIT = 10  # ... from folders of at least this many image files (of 4, the hash could take 2)


def mix_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (stable across runs, processes and machines)."""
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(mix_seed(*parts))


# ------------------------------------------------------------------------------------ folder checks


@dataclass
class ImageRecord:
    path: Path
    rel: str  # path relative to the folder, with "/" separators
    height: int
    width: int


@dataclass
class FolderReport:
    """What :func:`check_folder` found. ``train``/``val`` are the usable images of each split."""

    label: str
    root: Path
    found: int = 0
    train: list[ImageRecord] = field(default_factory=list)
    val: list[ImageRecord] = field(default_factory=list)
    test_held_out: int = 0
    undecodable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    too_small: list[str] = field(default_factory=list)
    small_policy: str = "skipped"  # or "upscaled"
    min_side: int = 0
    gray: int = 0
    alpha: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped file, same as)
    split_source: str = "file-name hash"
    val_from_train: bool = False
    digests: set[str] = field(default_factory=set)  # sha256 of every usable file

    @property
    def usable(self) -> int:
        return len(self.train) + (0 if self.val_from_train else len(self.val))

    def lines(self) -> list[str]:
        """The short report printed before the first step."""
        out = [
            f"{self.label}: {self.root} - {self.found} image file(s), {self.usable} usable: {len(self.train)} train"
            + ("" if self.val_from_train else f", {len(self.val)} held out for evaluation")
            + (f", {self.test_held_out} test (not used)" if self.test_held_out else "")
            + f" [split: {self.split_source}]"
        ]
        if self.val_from_train:
            out.append(f"  no held-out images: evaluating on {len(self.val)} training image(s) "
                       f"(folders of {MIN_HASH_SPLIT}+ images hold 10 % out; or add a splits.json)")
        if self.undecodable:
            out.append(f"  skipped {len(self.undecodable)} file(s) that do not decode:")
            out += [f"    {name}: {reason}" for name, reason in self.undecodable[:20]]
            if len(self.undecodable) > 20:
                out.append(f"    ... and {len(self.undecodable) - 20} more")
        if self.too_small:
            shown = ", ".join(self.too_small[:8]) + (" ..." if len(self.too_small) > 8 else "")
            out.append(f"  {len(self.too_small)} image(s) smaller than {self.min_side} px ({self.small_policy}): "
                       f"{shown}")
        if self.gray or self.alpha:
            out.append(f"  converted to RGB: {self.gray} grayscale, {self.alpha} with alpha (composited onto white)")
        if self.duplicates:
            out.append(f"  skipped {len(self.duplicates)} exact duplicate(s):")
            out += [f"    {dup} = {orig}" for dup, orig in self.duplicates[:10]]
            if len(self.duplicates) > 10:
                out.append(f"    ... and {len(self.duplicates) - 10} more")
        return out


def list_image_files(root: Path) -> list[Path]:
    """Image files under ``root``, recursively, sorted; hidden files and folders are skipped."""
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _name_fraction(rel: str) -> float:
    digest = hashlib.sha256(f"imgtrans-val:{rel.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def held_out_files(root: str | Path) -> list[Path]:
    """Image files under ``root`` that training never uses for gradient steps, by the same rules as
    :func:`check_folder`: the ``test`` list of ``splits.json`` when it has one, else the files the
    file-name hash holds out for evaluation. Sorted; nothing is decoded."""
    root = Path(root)
    splits = _read_splits(root)
    files = list_image_files(root)
    if splits is not None and splits["test"]:
        return [p for p in files if p.relative_to(root).as_posix() in splits["test"]]
    return [p for p in files if _hash_held_out(p.relative_to(root).as_posix(), len(files))]


def _hash_held_out(rel: str, n_files: int) -> bool:
    """Whether a file that no splits.json places is held out: by name hash, in folders big enough."""
    return n_files >= MIN_HASH_SPLIT and _name_fraction(rel) < VAL_FRACTION


def _read_splits(root: Path) -> dict[str, set[str]] | None:
    path = root / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {k: {str(n).replace("\\", "/") for n in data.get(k, [])} for k in ("train", "val", "test")}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise DataError(f"{path}: not a valid splits file ({exc}); fix or delete it") from None


def check_folder(
    root: str | Path,
    label: str,
    *,
    min_side: int,
    small_policy: str = "skipped",
    min_images: int = MIN_IMAGES,
    progress: Callable[[int, int], None] | None = None,
) -> FolderReport:
    """Decode every image under ``root`` once and sort them into train/val.

    Undecodable files and exact duplicates (same bytes) are skipped; images whose shorter side is below
    ``min_side`` are skipped (``small_policy="skipped"``) or kept to be upscaled (``"upscaled"``).
    Splits come from ``root/splits.json`` when present (its ``test`` list is never used for training;
    files it does not list are split by name hash), else from a hash of each file's relative path.
    Raises :class:`DataError` for a missing or empty folder or fewer than ``min_images`` usable images.
    One function: a single pass over the files whose branches all fill the same report; split, it reads worse.
    """
    from imgtrans.imageio import ImageReadError, read_image

    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{label}: folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{label}: {root} is not a folder")
    files = list_image_files(root)
    if not files:
        raise DataError(
            f"{label}: no images found in {root} (searched sub-folders too, for {', '.join(IMAGE_SUFFIXES[:6])}, ...)"
        )
    report = FolderReport(label=label, root=root, found=len(files), small_policy=small_policy, min_side=min_side)
    splits = _read_splits(root)
    if splits is not None:
        report.split_source = SPLITS_FILE
    seen: dict[str, str] = {}
    unlisted = 0
    for i, path in enumerate(files):
        if progress is not None:
            progress(i, len(files))
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.undecodable.append((rel, exc.strerror or str(exc)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            report.duplicates.append((rel, seen[digest]))
            continue
        try:
            img = read_image(path)
        except ImageReadError as exc:
            report.undecodable.append((rel, str(exc)))
            continue
        seen[digest] = rel
        report.digests.add(digest)
        report.gray += int(img.is_gray)
        report.alpha += int(img.has_alpha)
        if min(img.height, img.width) < min_side:
            report.too_small.append(rel)
            if small_policy == "skipped":
                continue
        record = ImageRecord(path=path, rel=rel, height=img.height, width=img.width)
        if splits is not None and rel in splits["test"]:
            report.test_held_out += 1
        elif splits is not None and rel in splits["val"]:
            report.val.append(record)
        elif splits is not None and rel in splits["train"]:
            report.train.append(record)
        else:
            unlisted += splits is not None
            (report.val if _hash_held_out(rel, len(files)) else report.train).append(record)
    if unlisted:
        report.split_source += f" (+{unlisted} unlisted file(s) split by name hash)"
    if report.usable < min_images:
        problems = []
        if report.undecodable:
            problems.append(f"{len(report.undecodable)} undecodable")
        if report.too_small and small_policy == "skipped":
            problems.append(f"{len(report.too_small)} smaller than {min_side} px")
        if report.duplicates:
            problems.append(f"{len(report.duplicates)} duplicates")
        detail = f" ({', '.join(problems)})" if problems else ""
        raise DataError(
            f"{label}: only {report.usable} usable image(s) in {root}{detail}; at least {min_images} are needed"
        )
    if not report.train:  # everything landed in val: train on the val images rather than on nothing
        report.train, report.val = report.val, []
    if not report.val:
        report.val = report.train[: max(2, min(4, len(report.train) // 10))]
        report.val_from_train = True
    return report


# ------------------------------------------------------------------------------------ decoding, cache


def load_rgb8(path: Path) -> torch.Tensor:
    """Decode a file into ``(3,H,W)`` uint8 RGB (grey replicated, alpha composited onto white)."""
    from imgtrans.imageio import read_image, to_rgb

    img = read_image(path)
    px = to_rgb(img.pixels)
    if img.alpha is not None:
        a = img.alpha[:, :, None]
        px = px * a + (1.0 - a)
    t = torch.from_numpy(px).permute(2, 0, 1)
    return (t.clamp(0, 1) * 255.0).round().to(torch.uint8).contiguous()


class ImageCache:
    """Least-recently-used cache of prepared uint8 images, bounded in bytes (per process)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[object, torch.Tensor] = OrderedDict()

    def get(self, key: object, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
            return hit
        value = make()
        size = value.numel() * value.element_size()
        if size <= self.max_bytes:
            self.items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.bytes -= old.numel() * old.element_size()
        return value


def resize(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(C,H,W)`` uint8 or float -> ``(C,h,w)`` same dtype; bicubic with antialiasing (as PIL's)."""
    if img.shape[-2:] == (h, w):
        return img
    x = F.interpolate(img[None].float(), size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0]
    if img.dtype == torch.uint8:
        return x.round().clamp(0, 255).to(torch.uint8)
    return x


def to_unit(img8: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0,1]."""
    return img8.float() / 255.0
