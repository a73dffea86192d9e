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
