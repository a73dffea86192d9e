"""training/make_domain.py: a domain folder is rebuilt only when its selection changes, never in place."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make(src: Path, out: Path, *prefixes: str) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "training" / "make_domain.py"), "--src", str(src),
                        "--out", str(out), "--prefix", *prefixes], capture_output=True, text=True, check=True)
    return r.stdout


def test_a_domain_is_made_once_and_rebuilt_when_its_prefixes_change(tmp_path):
    src = tmp_path / "set"
    src.mkdir()
    names = ["snow1.jpg", "snow2.jpg", "fog1.jpg", "city1.jpg"]
    for n in names:
        (src / n).write_bytes(b"x")
    (src / "splits.json").write_text(json.dumps({"train": names[:2] + names[3:], "val": ["fog1.jpg"], "test": []}))
    out = tmp_path / "domains" / "cold"
    assert "up to date" not in _make(src, out, "snow")
    first = (out / "splits.json").stat().st_ino
    assert "up to date" in _make(src, out, "snow")  # a second recipe starting at the same time reuses it
    assert (out / "splits.json").stat().st_ino == first
    _make(src, out, "snow", "fog")
    assert sorted(p.name for p in out.iterdir() if p.is_symlink()) == ["fog1.jpg", "snow1.jpg", "snow2.jpg"]
    assert json.loads((out / "splits.json").read_text())["val"] == ["fog1.jpg"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["cold"]  # no half-made or old folders left
