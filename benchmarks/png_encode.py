"""PNG encoding speed and size: what imgtrans writes against Pillow's usual settings.

    .venv/bin/python benchmarks/png_encode.py [FOLDER ...] [--limit N]

Each folder's images (default: the fetched space-photos and paintings sets, and resources/samples)
are decoded once to 8-bit RGB and encoded in memory, no metadata, no disk: ms per megapixel and
KiB per megapixel for each encoder, on the same arrays in the same process. A synthetic 16-bit
set (the photos upscaled x1.5 with bicubic, as SR/denoise outputs stored at 16 bits) is added.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgtrans.imageio.encode import encode_png

ROOT = Path(__file__).resolve().parent.parent
DATA = Path.home() / ".cache" / "imgtrans" / "data"
DEFAULT = [DATA / "space-photos", DATA / "paintings", ROOT / "resources" / "samples"]


def pillow(level: int):
    def encode(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", compress_level=level)
        return buf.getvalue()
    return encode


def ours(arr: np.ndarray) -> bytes:
    return encode_png(arr, None, None, None, None)


def opencv_level3(arr: np.ndarray) -> bytes:
    """What imgtrans used for 16-bit before the RLE strategy: OpenCV, level 3, zlib's default strategy."""
    import cv2

    return cv2.imencode(".png", np.ascontiguousarray(arr[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes()


def load(folder: Path, limit: int) -> list[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    return [np.asarray(Image.open(p).convert("RGB")) for p in files]


def measure(arrays: list[np.ndarray], encode) -> tuple[float, float]:
    mp = sum(a.shape[0] * a.shape[1] for a in arrays) / 1e6
    t0 = time.perf_counter()
    size = sum(len(encode(a)) for a in arrays)
    return (time.perf_counter() - t0) * 1000 / mp, size / 1024 / mp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=12, help="images per folder")
    args = ap.parse_args()
    print("| images | imgtrans (OpenCV libpng, level 3, RLE) | before (8-bit: Pillow level 3; 16-bit: OpenCV level 3) "
          "| Pillow level 6 (its default) |")
    print("|---|---|---|---|")
    sets = [(f.name, load(f, args.limit)) for f in args.folders if f.is_dir()]
    if sets:
        import cv2

        sixteen = [(cv2.resize(a.astype(np.float32) / 255, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
                    .clip(0, 1) * 65535 + 0.5).astype(np.uint16) for a in sets[0][1][:4]]
        sets.append((f"{sets[0][0]} x1.5, 16-bit", sixteen))
    for name, arrays in sets:
        if not arrays:
            continue
        eight = arrays[0].dtype == np.uint8
        encoders = (ours, pillow(3), pillow(6)) if eight else (ours, opencv_level3)  # Pillow has no 16-bit RGB
        cells = [f"{t:.0f} ms/MP, {s:.0f} KiB/MP" for t, s in (measure(arrays, enc) for enc in encoders)]
        print(f"| {name} ({len(arrays)}) | " + " | ".join(cells + ["-"] * (3 - len(cells))) + " |")


if __name__ == "__main__":
    main()
