"""What the blind A/B benchmarks (style_ab.py, sr_ab.py) share: the seeded coin that puts our output
left or right, the sheets a reviewer looks at, the key kept apart from them, reading the reviewer's
answers, counting them and the unblinded sheet that is published.

The layout of a comparison's folder OUT:

* ``OUT/sheets/pair_NN.*``: what the reviewer sees, two candidates labelled A and B (plus whatever the
  benchmark shows beside them: the painting, the input); nothing there says which is ours;
* ``OUT/key.json``: ``{"model", "other", "pairs": {"NN": {"ours": "A"|"B", ...}}, ...}``, away from the
  sheets; a pair's ``kind`` (when it has one) groups the counts;
* ``OUT/answers.json``: written by the reviewer, ``{"NN": "A"|"B"|"tie", ...}``, one answer per sheet;
* ``OUT/result.json`` and ``OUT/sheet.jpg``: the counts and an unblinded sheet of some pairs, the files
  that go into git.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

VERDICTS = ("ours", "other", "tie")


def pair_id(i: int) -> str:
    """The name of the ``i``-th pair (from 1): ``01``, ``02``, ... (sheets sort by it)."""
    return f"{i:02d}"


def ours_sides(seed: int, n: int) -> list[str]:
    """Where our output goes on each of ``n`` sheets, ``"A"`` (left) or ``"B"`` (right): one fair coin
    per pair, in order, from ``random.Random(seed)`` (the same seed gives the same sides)."""
    coin = random.Random(seed)
    return ["A" if coin.random() < 0.5 else "B" for _ in range(n)]


def fit(img: Image.Image, long_side: int) -> Image.Image:
    """``img`` in RGB, resized (Lanczos) so that its long side is ``long_side``."""
    scale = long_side / max(img.size)
    return img.convert("RGB").resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                     Image.LANCZOS)


def sheet(panels: list[tuple[str, Image.Image]], header: Image.Image | None = None, pad: int = 10,
          label: int = 24, font_size: int | None = None) -> Image.Image:  # fmt: skip
    """One reviewer's page: ``panels`` side by side at the size given, each with its label above it, and
    ``header`` (when given) centred on top; white background. Labels in Pillow's default font, at
    ``font_size`` px when given (``label`` is the height of their line)."""
    w = sum(img.width for _, img in panels) + (len(panels) + 1) * pad
    top = header.height + pad if header is not None else 0
    y = top + pad + label
    page = Image.new("RGB", (w, y + max(img.height for _, img in panels) + pad), "white")
    if header is not None:
        page.paste(header, ((w - header.width) // 2, pad))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=font_size) if font_size else None
    x = pad
    for text, img in panels:
        page.paste(img, (x, y))
        draw.text((x, y - label + 4), text, fill="black", font=font)
        x += img.width + pad
    return page


def write_key(out: Path, key: dict) -> Path:
    """``OUT/key.json`` (one space indent, as the committed keys are)."""
    path = out / "key.json"
    path.write_text(json.dumps(key, indent=1) + "\n")
    return path


def read_key(out: Path) -> dict:
    return json.loads((out / "key.json").read_text())


def read_answers(out: Path, key: dict) -> dict[str, str]:
    """``OUT/answers.json`` as ``{pair: "A"|"B"|"tie"}`` (case and spaces ignored). Raises ``SystemExit``
    naming the pairs without an answer and the answers that are none of A, B or tie."""
    path = out / "answers.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the reviewer writes it, one answer (A, B or tie) per sheet")
    raw = json.loads(path.read_text())
    answers, problems = {}, []
    for pair in key["pairs"]:
        said = str(raw.get(pair, "")).strip().lower()
        if said in ("a", "b", "tie"):
            answers[pair] = said.upper() if said != "tie" else "tie"
        else:
            problems.append(f"{pair}: {raw[pair]!r}" if pair in raw else f"{pair}: no answer")
    if problems:
        raise SystemExit(f"{path}: answer each pair with A, B or tie ({'; '.join(problems)})")
    return answers


def verdict(info: dict, said: str) -> str:
    """``ours``, ``other`` or ``tie`` for one pair of the key and its answer."""
    if said == "tie":
        return "tie"
    return "ours" if said == info["ours"] else "other"


def count(key: dict, answers: dict[str, str], pairs: Iterable[str] | None = None) -> dict:
    """``{"pairs", "ours", "other", "tie", "ours_or_tie"}`` over ``pairs`` (default: all of the key);
    ``ours_or_tie`` is a fraction (None for no pairs)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for pair in key["pairs"] if pairs is None else pairs:
        counts[verdict(key["pairs"][pair], answers[pair])] += 1
    n = sum(counts.values())
    return {"pairs": n, **counts, "ours_or_tie": (counts["ours"] + counts["tie"]) / n if n else None}


def count_by_kind(key: dict, answers: dict[str, str]) -> dict[str, dict]:
    """:func:`count` per ``kind`` of the key's pairs, in the order the kinds first appear."""
    kinds: dict[str, list[str]] = {}
    for pair, info in key["pairs"].items():
        kinds.setdefault(info.get("kind", ""), []).append(pair)
    return {kind: count(key, answers, pairs) for kind, pairs in kinds.items()}


def counts_line(other: str, c: dict) -> str:
    """``ours 26, photo2vangogh-a2b 1, tie 0 of 27 (ours or tie 96 %)`` for one :func:`count`."""
    return (f"ours {c['ours']}, {other} {c['other']}, tie {c['tie']} of {c['pairs']} "
            f"(ours or tie {100 * c['ours_or_tie']:.0f} %)")  # fmt: skip


def publish(out: Path, key: dict, answers: dict[str, str], pairs: list[str], header: str,
            row: Callable[[str, dict], tuple[str, list[Image.Image]]], quality: int = 85, label: int = 18,
            font_size: int | None = None) -> Path:  # fmt: skip
    """``OUT/sheet.jpg``, unblinded: one row per pair of ``pairs``, its pictures side by side as
    ``row(pair, info)`` gives them (ours before the other's) under a line of text that it gives too, to
    which the reviewer's verdict is appended; ``header`` on top (which column is which). Text as in
    :func:`sheet`."""
    pictures = []
    for pair in pairs:
        info = key["pairs"][pair]
        said = verdict(info, answers[pair])
        text, images = row(pair, info)
        pictures.append((f"{text}: {said + ' preferred' if said != 'tie' else 'tie'}", images))
    pad = 8
    width = max(sum(img.width for img in images) + (len(images) + 1) * pad for _, images in pictures)
    height = sum(max(img.height for img in images) + label + pad for _, images in pictures) + label + pad
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=font_size) if font_size else None
    draw.text((pad, 4), header, fill="black", font=font)
    y = label + pad
    for text, images in pictures:
        draw.text((pad, y), text, fill="black", font=font)
        x = pad
        for img in images:
            page.paste(img, (x, y + label))
            x += img.width + pad
        y += max(img.height for img in images) + label + pad
    page.save(out / "sheet.jpg", quality=quality)
    return out / "sheet.jpg"
