"""training/data/fetch.py: a cached data set is reused only while it still matches its definition."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fetch():
    """training/data/fetch.py as a module (it puts its own folder on sys.path for split.py)."""
    spec = importlib.util.spec_from_file_location("imgtrans_fetch", ROOT / "training" / "data" / "fetch.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


class Built(Exception):
    """Raised by the stand-in builder: fetch_set decided to (re)build the set."""


def _cached_set(dest: Path, packages: dict) -> Path:
    folder = dest / "paintings"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"not really a jpeg")
    (folder / "manifest.json").write_text(json.dumps({"files": [{"file": "a.jpg"}]}))
    (folder / "splits.json").write_text(json.dumps({"train": ["a.jpg"], "val": [], "test": []}))
    (folder / ".complete.json").write_text(json.dumps({"set": "paintings", "count": 1, "packages": packages}))
    return folder


def _stand_in_builder(*args, **kwargs):
    raise Built


def test_a_cached_set_from_the_same_packages_is_reused(fetch, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "build_deb_set", _stand_in_builder)
    packages = {s.package: "1" for s in fetch.SETS["paintings"].sources}
    folder = _cached_set(tmp_path, packages)
    assert fetch.fetch_set("paintings", tmp_path) == folder


def test_a_cached_set_is_rebuilt_when_its_definition_takes_more_packages(fetch, tmp_path, monkeypatch):
    """The paintings set grew from two Wesnoth packages to seven: a machine that fetched the old set
    must not train on it believing it has the new one."""
    monkeypatch.setattr(fetch, "build_deb_set", _stand_in_builder)
    folder = _cached_set(tmp_path, {"wesnoth-1.16-data": "1", "wesnoth-1.16-trow": "1"})
    with pytest.raises(Built):
        fetch.fetch_set("paintings", tmp_path)
    assert (folder / "a.jpg").is_file()  # the old set stays until a new one is complete


def test_a_cached_set_is_rebuilt_when_its_selection_changes_within_the_same_package(fetch, tmp_path, monkeypatch):
    """vangogh took eight paintings from gcompris-qt-data, then nine from the same package."""
    monkeypatch.setattr(fetch, "build_deb_set", _stand_in_builder)
    packages = {s.package: "1" for s in fetch.SETS["paintings"].sources}
    folder = _cached_set(tmp_path, packages)
    marker = json.loads((folder / ".complete.json").read_text())
    marker["definition"] = fetch.definition_key(fetch.SETS["paintings"])
    (folder / ".complete.json").write_text(json.dumps(marker))
    assert fetch.fetch_set("paintings", tmp_path) == folder
    marker["definition"] = "an older selection"
    (folder / ".complete.json").write_text(json.dumps(marker))
    with pytest.raises(Built):
        fetch.fetch_set("paintings", tmp_path)


# --------------------------------------------------------------------------- Qt resource files

def _qt_rcc() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    for rel in ("Qt/libexec/rcc", "rcc", "Qt/bin/rcc", "rcc.exe"):
        exe = Path(PySide6.__file__).parent / rel
        if exe.is_file():
            return exe
    return None


def _compile_rcc(tmp_path: Path, files: dict, *options: str) -> Path:
    """A binary Qt resource file made by Qt's own rcc from {path inside: bytes}."""
    import subprocess
    exe = _qt_rcc()
    if exe is None:
        pytest.skip("Qt's rcc (PySide6) is not installed")
    src = tmp_path / "src"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    entries = "".join(f"<file>{rel}</file>" for rel in files)
    (src / "res.qrc").write_text(f'<RCC><qresource prefix="/">{entries}</qresource></RCC>')
    out = tmp_path / "res.rcc"
    subprocess.run([str(exe), "--binary", *options, "-o", str(out), str(src / "res.qrc")], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("options", [("--no-compress",), ("--compress-algo", "zlib", "--threshold", "0")])
def test_read_rcc_returns_every_file_of_a_qt_resource_file(fetch, tmp_path, options):
    files = {"gcompris/a/x.txt": b"hello " * 200, "gcompris/a/b/y.bin": bytes(range(256)) * 4,
             "top.txt": b"t"}
    got = fetch.read_rcc(_compile_rcc(tmp_path, files, *options).read_bytes())
    assert got == files


def test_image_size_reads_webp_headers(fetch, tmp_path):
    from PIL import Image
    im = Image.new("RGB", (123, 45), (10, 200, 30))
    for kind, kw in (("lossy", {"quality": 80}), ("lossless", {"lossless": True})):
        path = tmp_path / f"{kind}.webp"
        im.save(path, **kw)
        assert fetch.image_size(path) == (123, 45), kind
    rgba = tmp_path / "alpha.webp"  # extended format (VP8X) when there is alpha
    Image.new("RGBA", (77, 31), (1, 2, 3, 128)).save(rgba, quality=80)
    assert fetch.image_size(rgba) == (77, 31)


def _jigsaw(picture, tmp_path: Path):
    """picture cut into 2x2 pieces whose edges interlock (a tab in the middle of each inner edge),
    as GCompris's painting puzzles are, plus the board QML that places them."""
    import numpy as np
    from PIL import Image
    w, h = picture.size
    owner = np.zeros((h, w), np.int64)  # which piece each pixel belongs to: 0..3
    yy, xx = np.mgrid[0:h, 0:w]
    right, low = xx >= w // 2, yy >= h // 2
    tab_x = (np.abs(yy - h // 4) < 6) & (xx >= w // 2) & (xx < w // 2 + 8)  # left pieces reach right
    tab_y = (np.abs(xx - 3 * w // 4) < 6) & (yy >= h // 2) & (yy < h // 2 + 8)  # upper pieces reach down
    right &= ~tab_x
    low &= ~tab_y
    owner = right.astype(int) + 2 * low.astype(int)
    owner[h // 3, w // 5] = -1  # one pixel no piece covers, as along GCompris's cuts
    rgb = np.asarray(picture)
    files, lines = {}, ['"pixmapfile" : "image/bg.svg", "type" : "SHAPE_BACKGROUND_IMAGE", "width": 300, "height": 200']
    offset = (40, 25)  # the picture sits inside a larger board
    for k, name in enumerate(("Test_a1", "Test_b1", "Test_a2", "Test_b2")):
        ys, xs = np.nonzero(owner == k)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        mask = owner[y0:y1, x0:x1] == k
        rgba[..., :3] = rgb[y0:y1, x0:x1]
        rgba[..., 3] = mask * 255
        buf = tmp_path / f"{name}.webp"
        Image.fromarray(rgba).save(buf, lossless=True)
        files[f"gcompris/act/paintings/resource/image/{name}.webp"] = buf.read_bytes()
        cx, cy = offset[0] + (x0 + x1) / 2, offset[1] + (y0 + y1) / 2
        lines.append(f'"pixmapfile" : "image/{name}.webp",\n "x" : "{cx / 300:.6f}",\n "y" : "{cy / 200:.6f}"')
    board = ('QtObject {\n property string instruction: qsTr("Test Painter, A Test - 1900")\n'
             ' property var levels : [\n' + ",\n".join("{" + x + "}" for x in lines) + "]\n}\n")
    files["gcompris/act/paintings/resource/board/board1_0.qml"] = board.encode()
    other = board.replace("Test Painter", "Someone Else").replace("Test_", "Other_")
    files["gcompris/act/paintings/resource/board/board2_0.qml"] = other.encode()
    return files


def test_puzzle_boards_are_put_back_together(fetch, tmp_path):
    """A GCompris painting puzzle becomes the whole picture again: pieces in place, the picture
    cropped to them, an uncovered pixel filled from its neighbours; other painters' boards are left."""
    import numpy as np
    from PIL import Image
    yy, xx = np.mgrid[0:120, 0:160]
    smooth = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.8], -1).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(smooth)
    rcc = _compile_rcc(tmp_path, _jigsaw(picture, tmp_path), "--no-compress")
    src = fetch.Source("pkg", "root", ("gcompris/act/paintings/resource/board",), (".qml",), 50,
                       rcc="res.rcc", rcc_prefix="gcompris/", puzzles=r"Test Painter,.*")
    stage = tmp_path / "stage"
    stage.mkdir()
    root = fetch.unpack_rcc(rcc, tmp_path / "unpacked", src)
    records = fetch._assemble_puzzles(src, root, "/root/res.rcc:", "1", None, stage, set())
    assert [r["file"] for r in records] == ["Test.png"]
    rec = records[0]
    assert rec["title"] == "Test Painter, A Test - 1900" and rec["assembled_from"] == 4
    assert rec["uncovered_pixels_filled"] == 1 and (rec["width"], rec["height"]) == (160, 120)
    got = np.asarray(Image.open(stage / "Test.png").convert("RGB")).astype(int)
    diff = np.abs(got - smooth.astype(int))
    diff[120 // 3, 160 // 5] = 0
    assert diff.max() == 0  # every covered pixel is the original (lossless pieces)
    assert np.abs(got[120 // 3, 160 // 5] - smooth[120 // 3, 160 // 5].astype(int)).max() <= 6
    assert sorted(p.name for p in stage.iterdir()) == ["Test.png"]  # no temporary files left


def test_two_fetches_of_one_set_take_turns(fetch, tmp_path, monkeypatch):
    """Two recipes side by side fetch the same set: the second waits for the first and finds the set
    complete, instead of deleting the folder the first has just put in place (seen: a changed set
    definition made both style recipes rebuild space-photos at once, and one of them died)."""
    import threading
    import time

    calls = []

    def slow_builder(ds, stage, debdir, work, keep_debs):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough for the other thread to reach the lock
        (stage / "a.png").write_bytes(b"x")
        rec = {"file": "a.png", "bytes": 1, "licence": "public-domain", "width": 1, "height": 1}
        return [rec], {s.package: "1" for s in ds.sources}

    monkeypatch.setattr(fetch, "build_deb_set", slow_builder)
    monkeypatch.setattr(fetch, "write_licence", lambda *a, **k: None)
    errors = []

    def run():
        try:
            fetch.fetch_set("paintings", tmp_path)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, name=f"recipe{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(calls) == 1
    assert fetch.is_complete(tmp_path / "paintings") is not None
