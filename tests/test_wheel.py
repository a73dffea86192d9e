"""The wheel is a complete program: build it from this checkout, install it into a new venv, and run
the installed copy from a folder outside the checkout.

The new venv holds imgtrans only from the wheel (pip installs it, console scripts included). Its
third-party dependencies (torch and the rest, GBs) are borrowed from the venv running the tests
through a ``.pth`` line; ``.pth`` files inside that borrowed folder are not run, so the editable
install of the checkout stays out. The full check with a venv of only the wheel and its declared
dependencies is done by hand for releases (packaging/README.md, "Wheel")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _tracked(folder: str) -> list[str]:
    """Files of ``folder`` that a clean clone has, and new ones not yet committed (git's list; a walk
    where git is not there)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", folder],
                             cwd=REPO, capture_output=True, check=True).stdout
        return sorted(p for p in out.decode().split("\0") if p and (REPO / p).is_file())
    except (OSError, subprocess.CalledProcessError):
        root = REPO / folder
        return sorted(str(p.relative_to(REPO)) for p in root.rglob("*")
                      if p.is_file() and not {"__pycache__", ".git", ".venv"} & set(p.parts))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv, outside)``: a venv with imgtrans installed from a freshly built wheel, and an empty
    working folder outside the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy, as a clean clone has it: the build writes build/ and *.egg-info there
    for rel in _tracked("."):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, source / rel)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(source)], cwd=tmp, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("imgtrans-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    modules = [p for p in _tracked("imgtrans") if p.endswith(".py")]
    assert modules and [p for p in modules if p not in names] == []  # the explicit package list misses none
    resources = _tracked("resources")
    assert [p for p in resources if f"imgtrans/{p}" not in names] == []

    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    # only now: pip would take the borrowed folder's record of the editable install for imgtrans itself
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp / "elsewhere"
    outside.mkdir()
    return venv, outside


def _run(venv: Path, cwd: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IMGTRANS_RESOURCES", "VIRTUAL_ENV")}
    env.update(IMGTRANS_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_wheel_lists_and_runs_the_bundled_models(installed, isolated_home):
    venv, outside = installed
    py = str(venv / "bin" / "python")
    where = _run(venv, outside, py, "-c", "import imgtrans, imgtrans.paths as p; "
                 "print(imgtrans.__file__); print(p.resources_dir())", home=isolated_home)
    module, resources = (Path(line) for line in where.stdout.split())
    assert module.is_relative_to(venv) and resources == module.parent / "resources", where.stdout + where.stderr

    listed = _run(venv, outside, str(venv / "bin" / "imgtrans"), "models", "--json", home=isolated_home)
    assert listed.returncode == 0, listed.stderr
    import tomllib

    catalog = tomllib.loads((REPO / "resources" / "models.toml").read_text())["model"]
    entries = json.loads(listed.stdout)
    assert [e["id"] for e in entries] == [m["id"] for m in catalog]
    assert all(Path(e["path"]).is_relative_to(resources) for e in entries)

    # one conversion with the installed program, on a sample shipped inside the wheel
    sample = resources / "samples" / "mars_nasa.jpg"
    out = outside / "out"
    conv = _run(venv, outside, str(venv / "bin" / "imgtrans"), "convert", str(sample), "-o", str(out),
                "-m", "denoise-gray", "--no-progress", "--threads", "2", home=isolated_home)
    assert conv.returncode == 0, conv.stderr
    assert (out / "mars_nasa.jpg").stat().st_size > 1000

    # the desktop app's icon comes from the installed resources
    icon = _run(venv, outside, py, "-c", "from PySide6.QtGui import QGuiApplication; app = QGuiApplication([]); "
                "from imgtrans.gui.window import app_icon; print(len(app_icon().availableSizes()))", home=isolated_home)
    assert icon.returncode == 0 and int(icon.stdout.split()[-1]) >= 7, icon.stderr


def test_installation_without_models_says_so_and_fails(installed, isolated_home, tmp_path):
    venv, outside = installed
    empty = _run(venv, outside, str(venv / "bin" / "imgtrans"), "models", home=isolated_home)
    assert empty.returncode == 0  # (control: the same command with the models there)
    site_resources = Path(_run(venv, outside, str(venv / "bin" / "python"), "-c",
                               "import imgtrans.paths as p; print(p.resources_dir())",
                               home=isolated_home).stdout.strip())
    models = site_resources / "models"
    hidden = tmp_path / "models-away"
    models.rename(hidden)
    try:
        gone = _run(venv, outside, str(venv / "bin" / "imgtrans"), "models", home=isolated_home)
    finally:
        hidden.rename(models)
    assert gone.returncode == 1
    assert "No models found." in gone.stdout and "no bundled models" in gone.stdout
    assert "missing from this installation" in gone.stderr
