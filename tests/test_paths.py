"""Where resources are found: a source checkout, the PyInstaller bundle (frozen), an override.

The bundle itself is built and run by ``make bundle-check`` (minutes); this only checks the lookup."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imgtrans import paths

REPO = Path(__file__).resolve().parent.parent


def test_source_checkout(monkeypatch):
    monkeypatch.delenv("IMGTRANS_RESOURCES", raising=False)
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert paths.resources_dir() == REPO / "resources"
    assert (paths.resources_dir() / "models.toml").is_file()


def test_frozen_bundle_uses_meipass_not_cwd(monkeypatch, tmp_path):
    bundle = tmp_path / "dist" / "imgtrans" / "_internal"
    (bundle / "resources").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.delenv("IMGTRANS_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle.parent / "imgtrans"))
    monkeypatch.chdir(elsewhere)
    assert paths.resources_dir() == (bundle / "resources").resolve()


def test_frozen_without_meipass_uses_executable_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("IMGTRANS_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "app" / "imgtrans"))
    monkeypatch.chdir(tmp_path)
    assert paths.resources_dir() == (tmp_path / "app" / "resources").resolve()


def test_override_wins_even_when_frozen(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv("IMGTRANS_RESOURCES", str(tmp_path / "mine"))
    assert paths.resources_dir() == tmp_path / "mine"


def test_catalog_reads_bundled_models_through_resources_dir(monkeypatch, tmp_path):
    """The catalog finds the bundled models wherever resources_dir() points (as in the bundle)."""
    import shutil

    from imgtrans import catalog

    bundle = tmp_path / "_internal"
    shutil.copytree(REPO / "resources", bundle / "resources")
    monkeypatch.delenv("IMGTRANS_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    monkeypatch.chdir(tmp_path)
    ids = {entry.id: entry for entry in catalog.list_models()}
    assert "sr-x2-quick" in ids
    assert ids["sr-x2-quick"].path.resolve().is_relative_to(bundle.resolve())
    assert os.path.isfile(ids["sr-x2-quick"].path)


def test_installed_package_uses_its_own_resources_folder(monkeypatch, tmp_path):
    """In an installed wheel resources/ is package data inside imgtrans/ (tests/test_wheel.py runs a
    real installed copy); a checkout has it beside the package."""
    site = tmp_path / "site-packages"
    (site / "imgtrans" / "resources").mkdir(parents=True)
    monkeypatch.delenv("IMGTRANS_RESOURCES", raising=False)
    monkeypatch.delattr(sys, "frozen", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    monkeypatch.setattr(paths, "files", lambda package: site / package)
    monkeypatch.chdir(tmp_path)
    assert paths.resources_dir() == site / "imgtrans" / "resources"
    (site / "imgtrans" / "resources").rmdir()
    assert paths.resources_dir() == site / "resources"
