"""The batch CLI and engine on real files: nested trees, bad files, resume, cancel, metadata."""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import write_rgb
from PIL import Image as PILImage, ImageCms

from imgtrans.cli import main
from imgtrans.engine import ConvertOptions, convert, plan_jobs
from imgtrans.paths import user_models_dir
from imgtrans.weights import load_model

REPO = Path(__file__).resolve().parent.parent


def _tree(root: Path) -> Path:
    write_rgb(root / "a.png", seed=1)
    write_rgb(root / "b.jpg", seed=2)
    write_rgb(root / "nested" / "deeper" / "c.png", seed=3)
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(write_rgb(root / "tmp.png").read_bytes()[:60])
    (root / "tmp.png").unlink()
    (root / "empty.jpg").write_bytes(b"")
    return root


def _hashes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_convert_folder_with_bad_files_and_resume(tmp_path, tiny_models, capsys):
    src = _tree(tmp_path / "in")
    before = _hashes(src)
    out = tmp_path / "out"
    code = main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["sr"]), "-r", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1  # failures make the exit code non-zero
    assert "Traceback" not in err
    assert "broken.png" in err and "empty.jpg" in err and "notes.txt" in err
    assert "3 converted" in err and "2 failed" in err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.png", "b.jpg", "nested/deeper/c.png"]
    with PILImage.open(out / "a.png") as im:
        assert im.size == (80, 64)  # x2
        prov = json.loads(im.text["imgtrans"])
        assert prov["task"] == "sr" and prov["arch"] == "srresnet"
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*"))
    assert _hashes(src) == before  # inputs untouched

    mtime = (out / "a.png").stat().st_mtime_ns
    code = main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["sr"]), "-r", "--no-progress"])
    err = capsys.readouterr().err
    assert "0 converted, 4 skipped" in err and "output exists" in err
    assert (out / "a.png").stat().st_mtime_ns == mtime

    main(["convert", str(src / "a.png"), "-o", str(out), "-m", str(tiny_models["sr"]), "--overwrite", "--no-progress"])
    assert "1 converted" in capsys.readouterr().err


def test_flat_output_and_collisions(tmp_path, tiny_models):
    src = tmp_path / "in"
    write_rgb(src / "a.png", seed=1)
    write_rgb(src / "a.jpg", seed=2)
    write_rgb(src / "sub" / "a.png", seed=3)
    jobs, skipped = plan_jobs([src],
                              ConvertOptions(output_dir=tmp_path / "o", fmt="png", recursive=True, keep_tree=False))
    names = sorted(j.dst.name for j in jobs)
    assert len({j.dst for j in jobs}) == 3 and not skipped, names


def test_never_overwrites_inputs(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    write_rgb(src / "a.png")
    before = (src / "a.png").read_bytes()
    code = main(["convert", str(src), "-o", str(src), "-m", str(tiny_models["denoise"]), "--overwrite",
                 "--no-progress"])
    # every output would replace its input: a usage error, caught before anything runs
    assert code == 2 and "choose another output folder or a --suffix" in capsys.readouterr().err
    assert (src / "a.png").read_bytes() == before
    code = main(["convert", str(src / "a.png"), "-o", str(src), "-m", str(tiny_models["denoise"]), "--suffix", "_clean",
                 "--no-progress"])
    assert code == 0 and (src / "a_clean.png").exists() and (src / "a.png").read_bytes() == before


def test_unknown_model_lists_available(tmp_path, capsys):
    write_rgb(tmp_path / "a.png")
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "no-such-model"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'no-such-model'; available:" in err


def test_models_lists_bundled_and_user_models(tiny_models, capsys):
    user = user_models_dir()
    user.mkdir(parents=True)
    shutil.copy(tiny_models["style"], user / "my_style.safetensors")
    (user / "garbage.safetensors").write_text("broken")
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    mine = [e for e in entries if e["source"] == "user"]
    assert [(e["id"], e["task"], e["arch"]) for e in mine] == [("tiny-style", "style", "cyclegan_resnet")]
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "Style transfer" in out and f"Your models folder: {user}" in out
    assert "left out" in err and "garbage.safetensors" in err  # a broken file is named, not hidden


def test_models_for_an_empty_task_says_how_to_get_one(capsys, monkeypatch, tmp_path):
    import imgtrans.catalog as catalog

    monkeypatch.setattr(catalog, "resources_dir", lambda: tmp_path)  # no bundled models
    assert main(["models", "--task", "style"]) == 1  # an empty listing is a failure scripts can see
    out = capsys.readouterr().out
    assert "No style transfer models found." in out and "imgtrans-train" in out and str(user_models_dir()) in out
    assert "This installation has no bundled models" in out and str(tmp_path / "models.toml") in out
    assert main(["models", "--json"]) == 1 and json.loads(capsys.readouterr().out) == []


def test_models_leaves_out_a_bundled_model_whose_file_is_missing(capsys, monkeypatch, tmp_path):
    import imgtrans.catalog as catalog

    (tmp_path / "models").mkdir()
    shutil.copy(REPO / "resources" / "models" / "sr-x2.safetensors", tmp_path / "models")
    shutil.copy(REPO / "resources" / "models.toml", tmp_path)
    monkeypatch.setattr(catalog, "resources_dir", lambda: tmp_path)  # a broken installation: one weight file left
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "sr-x2 " in out and "sr-x4" not in out
    assert f"left out {tmp_path / 'models' / 'sr-x4.safetensors'}: bundled model file is missing" in err


def test_user_model_by_catalog_id(tmp_path, tiny_models):
    user = user_models_dir()
    user.mkdir(parents=True)
    shutil.copy(tiny_models["style"], user / "whatever.safetensors")
    write_rgb(tmp_path / "a.png", 48, 40)
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "tiny-style",
                 "--no-progress"]) == 0
    with PILImage.open(tmp_path / "o" / "a.png") as im:
        assert im.size == (48, 40)
    # the name of the file in the models folder works too
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "-m", "Whatever",
                 "--no-progress"]) == 0


def test_unknown_model_suggests_the_closest_id(tmp_path, capsys):
    write_rgb(tmp_path / "a.png")
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "sr-x2quick"]) == 2
    assert "(did you mean 'sr-x2-quick'?)" in capsys.readouterr().err


def test_info_takes_a_model_id(capsys):
    assert main(["info", "denoise-color", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "dncnn"
    assert main(["info", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_info(tiny_models, capsys):
    assert main(["info", str(tiny_models["denoise_map"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "dncnn" and report["hparams"]["noise_map"] is True
    assert report["metadata"]["hparams"]["noise_map"] is True  # a JSON value, not a string holding JSON


def test_info_states_the_licences_of_weights_and_training_data(capsys):
    assert main(["info", "photo2vangogh", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["origin"] == "bundled with imgtrans, trained by imgtrans-train cyclegan"
    assert report["weights_licence"] == "weights by imgtrans (MIT)"
    assert report["training_data_licences"] == {
        "space-photos/landscape": {"CC-BY-SA-3.0": 30, "CC-BY-SA-4.0": 55, "public-domain": 131},
        "vangogh": {"GPL-3": 8, "GPL-3+": 1}}
    meta = report["metadata"]
    assert meta["steps"] == 12000 and meta["metric"]["name"] == "kid"
    assert meta["training_data"]["domain_b"]["folder"] == "vangogh"
    assert isinstance(meta["licence"], str) and isinstance(meta["id"], str)
    assert main(["info", "sr-x4"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "weights licence : weights by imgtrans (MIT)" in out
    assert "data licences : space-photos: CC-BY-SA-3.0 30, CC-BY-SA-4.0 62, public-domain 181 files" in out


def test_import_info_and_remove_from_the_command_line(tmp_path, capsys):
    """A third-party state dict (reference CycleGAN layout, no metadata): imported through the Models
    tab's code, described as third-party with an unknown licence, converted with, removed."""
    from imgtrans.archs import ResnetGenerator

    torch = pytest.importorskip("torch")
    net = ResnetGenerator(ngf=8, n_blocks=2)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    assert main(["import", str(tmp_path / "latest_net_G.pth"), "--name", "Friend's style"]) == 0
    out = capsys.readouterr().out
    assert "Imported \u201cFriend's style\u201d: detected cyclegan_resnet" in out and "-m friend-s-style" in out
    stored = user_models_dir() / "friend-s-style.safetensors"
    assert stored.is_file()

    assert main(["info", "friend-s-style", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["origin"].startswith("third-party file, imported from latest_net_G.pth (sha256 ")
    assert report["weights_licence"] == "unknown (imported file: check where it came from)"
    assert report["training_data_licences"] == "unknown"
    assert main(["info", str(tmp_path / "latest_net_G.pth")]) == 0  # the file itself, not imported
    out = " ".join(capsys.readouterr().out.split())
    assert "origin : third-party file, origin not recorded" in out
    assert "weights licence: unknown (third-party file: check where it came from)" in out

    write_rgb(tmp_path / "a.png", 24, 20)
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "friend-s-style",
                 "--no-progress"]) == 0
    assert main(["remove", "friend-s-style"]) == 0
    assert not stored.exists() and "Removed friend-s-style" in capsys.readouterr().out
    assert main(["remove", "sr-x2"]) == 2
    assert "bundled with imgtrans and cannot be removed" in capsys.readouterr().err
    assert (REPO / "resources" / "models" / "sr-x2.safetensors").is_file()


def test_import_refuses_what_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notes.pth").write_bytes(b"not a pickle")
    assert main(["import", str(tmp_path / "notes.pth")]) == 2
    assert "not imported: notes.pth" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.safetensors")]) == 2
    assert not user_models_dir().exists() or not list(user_models_dir().iterdir())


def test_metadata_alpha_gray_16bit_survive(tmp_path, tiny_models):
    src = tmp_path / "in"
    src.mkdir()
    # RGBA with EXIF orientation 6 and an sRGB profile
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.linspace(0, 255, 30, dtype=np.uint8)[None, :]
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    PILImage.fromarray(rgba, "RGBA").save(src / "rot.png", exif=exif.tobytes(), icc_profile=icc)
    write_rgb(src / "gray.png", mode="L")
    PILImage.fromarray((np.arange(24 * 24).reshape(24, 24) * 100).astype(np.uint16)).save(src / "deep.png")
    out = tmp_path / "out"
    assert main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    with PILImage.open(out / "rot.png") as im:
        assert im.mode == "RGBA" and im.size == (40, 60)  # rotated upright, then x2
        assert im.info.get("icc_profile") == icc
        assert im.getexif().get(0x0112, 1) == 1 and im.getexif().get(0x010F) == "TestCam"
        alpha = np.asarray(im)[..., 3]
        assert alpha[0, 0] != alpha[-1, 0]  # the alpha ramp (now vertical) survived the resize
    with PILImage.open(out / "gray.png") as im:
        assert im.mode == "L"
    with PILImage.open(out / "deep.png") as im:
        assert im.mode in ("I;16", "I") and np.asarray(im).max() > 255


def test_cancel_leaves_no_partial_outputs(tmp_path, tiny_models):
    src = tmp_path / "in"
    for i in range(6):
        write_rgb(src / f"img{i}.png", 96, 96, seed=i)
    out = tmp_path / "out"
    model = load_model(tiny_models["style"])
    cancel = threading.Event()
    kinds = []
    for event in convert([src], model, ConvertOptions(output_dir=out, tile=16), cancel=cancel):
        kinds.append(event.kind)
        if event.kind == "progress" and kinds.count("done") >= 1:
            cancel.set()
    assert "cancelled" in kinds and kinds[-1] == "finished"
    written = sorted(out.glob("*"))
    assert 1 <= len(written) < 6
    assert all(not p.name.startswith(".") for p in written)
    for p in written:
        with PILImage.open(p) as im:
            im.load()  # every output present is complete


def test_cli_subprocess_exit_codes_and_no_traceback(tmp_path, tiny_models):
    src = _tree(tmp_path / "in")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-m", "imgtrans", "convert", str(src), "-o", str(tmp_path / "o"),
                           "-m", str(tiny_models["denoise"]), "--no-progress"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "failures:" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "imgtrans", "convert", str(tmp_path / "missing"), "-o",
                           str(tmp_path / "o2"), "-m", str(tiny_models["denoise"])], capture_output=True, text=True,
                           env=env)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o2").exists()
