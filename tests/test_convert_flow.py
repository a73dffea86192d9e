"""`imgtrans convert` as a new user meets it, on real small files: re-runs into the input folder,
setup errors caught before the model loads, hints and warnings, flat-name collisions, parsing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_rgb
from PIL import Image as PILImage

from imgtrans.cli import main
from imgtrans.cli_report import ProgressBar
from imgtrans.imageio import read_provenance

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the model is loaded."""
    import imgtrans.weights as weights

    def refuse(ref):
        raise AssertionError(f"the model was loaded ({ref})")

    monkeypatch.setattr(weights, "open_model", refuse)


# ------------------------------------------------------------------ 1. re-runs into the input folder


def test_rerun_with_suffix_into_the_input_folder_skips_and_never_reprocesses(tmp_path, tiny_models, capsys):
    same = tmp_path / "same"
    write_rgb(same / "mars_nasa.jpg", seed=1)
    write_rgb(same / "b.png", seed=2)
    args = ["convert", str(same), "-o", str(same), "-m", str(tiny_models["sr"]), "--suffix", "_x2", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert sorted(p.name for p in same.iterdir()) == ["b.png", "b_x2.png", "mars_nasa.jpg", "mars_nasa_x2.jpg"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in same.iterdir()}

    assert main(args) == 0
    err = capsys.readouterr().err
    assert "0 converted, 4 skipped, 0 failed" in err, err
    assert "output exists" in err and "output of another input" in err
    assert "would overwrite" not in err
    assert {p.name: p.stat().st_mtime_ns for p in same.iterdir()} == mtimes  # nothing new, nothing rewritten

    # --overwrite re-makes the outputs from the originals, still never from the outputs
    assert main([*args, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "2 converted" in err and "output of another input" in err, err
    assert sorted(p.name for p in same.iterdir()) == ["b.png", "b_x2.png", "mars_nasa.jpg", "mars_nasa_x2.jpg"]


def test_a_real_input_in_the_way_of_an_output_is_still_refused(tmp_path, tiny_models, capsys):
    """A user's own a_x2.jpg (not written by imgtrans) is an input: a.jpg's output would replace it."""
    same = tmp_path / "same"
    write_rgb(same / "a.jpg", seed=1)
    write_rgb(same / "a_x2.jpg", seed=2)
    precious = (same / "a_x2.jpg").read_bytes()
    for extra in ([], ["--overwrite"]):
        code = main(["convert", str(same), "-o", str(same), "-m", str(tiny_models["sr"]), "--suffix", "_x2",
                     "--no-progress", *extra])
        err = capsys.readouterr().err
        assert code == 1 and "would overwrite an input" in err, err
        assert (same / "a_x2.jpg").read_bytes() == precious
        assert (same / "a_x2_x2.jpg").exists()  # the user's file is converted like any input


def test_earlier_outputs_with_another_suffix_are_not_inputs(tmp_path, tiny_models, capsys):
    """Outputs next to their originals from any earlier run (here --suffix _x2, then a _dn run), and
    those of an older output folder inside a recursed input folder, are never converted again."""
    same = tmp_path / "same"
    write_rgb(same / "a.jpg", seed=1)
    write_rgb(same / "b.png", seed=2)
    run = ["convert", str(same), "-o", str(same), "--no-progress"]
    assert main([*run, "-m", str(tiny_models["sr"]), "--suffix", "_x2"]) == 0
    assert main([*run, "-m", str(tiny_models["denoise"]), "--suffix", "_dn"]) == 0
    err = capsys.readouterr().err
    names = sorted(p.name for p in same.iterdir())
    assert names == ["a.jpg", "a_dn.jpg", "a_x2.jpg", "b.png", "b_dn.png", "b_x2.png"], err
    assert "skipped: " + str(same / "a_x2.jpg") + ": output of another input (" + str(same / "a.jpg") + ")" in err

    nest = tmp_path / "nest"
    write_rgb(nest / "c.png", seed=3)
    assert main(["convert", str(nest), "-r", "-o", str(nest / "out"), "-m", str(tiny_models["sr"]),
                 "--no-progress"]) == 0
    assert main(["convert", str(nest), "-r", "-o", str(nest / "out2"), "-m", str(tiny_models["denoise"]),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert sorted(p.relative_to(nest / "out2").as_posix() for p in (nest / "out2").rglob("*.png")) == ["c.png"], err
    assert "output of another input" in err

    # named on the command line, an earlier output is an input like any file (chaining models)
    chain = tmp_path / "chain"
    assert main(["convert", str(same / "a_x2.jpg"), "-o", str(chain), "-m", str(tiny_models["denoise"]),
                 "--no-progress"]) == 0
    assert (chain / "a_x2.jpg").is_file()


def test_an_existing_output_of_another_model_or_setting_is_reported_not_kept_silently(tmp_path, tiny_models, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    write_rgb(src / "a.png", seed=1)
    run = ["convert", str(src), "-o", str(out), "--no-progress"]
    assert main([*run, "-m", str(tiny_models["denoise_map"]), "--noise-level", "25"]) == 0
    made = (out / "a.png").read_bytes()
    capsys.readouterr()

    assert main([*run, "-m", str(tiny_models["sr"])]) == 1
    err = capsys.readouterr().err
    assert "a.png already exists, made by tiny-denoise_map, not tiny-sr" in err and "--overwrite" in err, err
    assert main([*run, "-m", str(tiny_models["denoise_map"]), "--noise-level", "50"]) == 1
    assert "made with noise level 25.0, not 50.0" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == made  # never replaced without --overwrite

    # the same model and setting: a resumed batch, skipped quietly (the model file named another way too)
    same_file = os.path.relpath(tiny_models["denoise_map"])
    assert main([*run, "-m", same_file, "--noise-level", "25"]) == 0
    assert "output exists (use --overwrite" in capsys.readouterr().err

    # a file imgtrans did not write is not taken for a finished output
    write_rgb(out / "a.png", seed=9)
    assert main([*run, "-m", str(tiny_models["denoise_map"]), "--noise-level", "25"]) == 1
    assert "a.png already exists and imgtrans did not write it" in capsys.readouterr().err


def test_a_rerun_names_a_few_existing_outputs_and_counts_the_rest(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    for i in range(8):
        write_rgb(src / f"im{i}.png", width=16, height=16, seed=i)
    run = ["convert", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["denoise"]), "--no-progress"]
    assert main(run) == 0
    capsys.readouterr()
    assert main(run) == 0
    err = capsys.readouterr().err
    assert err.count("\nskipped: ") == 5 and "3 more input(s) skipped: output exists" in err, err
    assert main([*run, "-v"]) == 0
    assert capsys.readouterr().err.count("\nskipped: ") == 8


def test_what_the_output_format_cannot_keep_is_said(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([np.full((16, 16, 3), 100, np.uint8), np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))])
    PILImage.fromarray(rgba, "RGBA").save(src / "glass.png")
    PILImage.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200).save(src / "deep.png")
    frames = [PILImage.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    write_rgb(src / "scan.tif", width=16, height=16)
    assert main(["convert", str(src), "-o", str(tmp_path / "jpg"), "-m", str(tiny_models["denoise"]),
                 "--format", "jpg", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note: transparency flattened onto white (JPEG keeps no alpha; --format png keeps it): glass.png" in err, err
    assert "note: 16-bit depth stored as 8 bits (--format png or tiff keeps 16 bits): deep.png" in err
    assert "note: only the first of 3 frames converted: anim.gif" in err
    assert main(["convert", str(src / "scan.tif"), "-o", str(tmp_path / "same"), "-m", str(tiny_models["denoise"]),
                 "--no-progress"]) == 0
    assert (tmp_path / "same" / "scan.tif").is_file()  # "same" keeps the file's own extension


# --------------------------------------------------------------------------------- 2. sub-folders


def test_subfolders_not_searched_are_named(tmp_path, tiny_models, capsys):
    coll = tmp_path / "coll"
    for name in ("a", "b", "c"):
        write_rgb(coll / name / "x.png")
    (coll / ".hidden").mkdir()
    out = tmp_path / "out"
    assert main(["convert", str(coll), "-o", str(out), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"imgtrans: 3 sub-folders of {coll} not searched (use --recursive)" in err, err
    assert not out.exists()  # nothing to do: no folder made

    mixed = tmp_path / "mixed"
    write_rgb(mixed / "top.png")
    write_rgb(mixed / "sub" / "deep.png")
    assert main(["convert", str(mixed), "-o", str(out), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"imgtrans: 1 sub-folder of {mixed} not searched (use --recursive)" in err and "1 converted" in err, err
    # the output folder inside the input folder is not a forgotten sub-folder
    assert main(["convert", str(mixed), "-o", str(mixed / "out"), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["convert", str(mixed), "-o", str(mixed / "out"), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    assert "1 sub-folder of" in capsys.readouterr().err
    assert main(["convert", str(mixed), "-r", "-o", str(out), "-m", str(tiny_models["sr"]), "--no-progress"]) == 0
    assert "not searched" not in capsys.readouterr().err


# ------------------------------------------------------------------------------- 3. setup errors


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Error:" not in err and "Exception" not in err
    return lines[0]


def test_missing_input_is_a_usage_error_before_anything(tmp_path, tiny_models, capsys, no_model_load):
    write_rgb(tmp_path / "a.png")
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "a.png"), str(tmp_path / "nope.png"), "-o", str(out), "-m",
                 str(tiny_models["sr"]), "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "no such file or folder" in line and "nope.png" in line
    assert not out.exists()


def test_output_that_is_a_file_is_a_usage_error(tmp_path, tiny_models, capsys, no_model_load):
    write_rgb(tmp_path / "a.png")
    (tmp_path / "out.txt").write_text("a file")
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "out.txt"), "-m", str(tiny_models["sr"])])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "existing file" in line


def test_cuda_without_a_gpu_is_a_usage_error(tmp_path, tiny_models, capsys, monkeypatch, no_model_load):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_rgb(tmp_path / "a.png")
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(out), "-m", str(tiny_models["sr"]), "--device", "cuda"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--device cuda" in line and "RuntimeError" not in line
    assert not out.exists()


def test_output_folder_equal_to_input_folder_without_suffix(tmp_path, tiny_models, capsys, no_model_load):
    src = tmp_path / "in"
    write_rgb(src / "a.png")
    write_rgb(src / "b.jpg")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    code = main(["convert", str(src), "-o", str(src), "-m", str(tiny_models["sr"]), "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "choose another output folder or a --suffix" in line
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_an_output_folder_that_cannot_be_made_is_a_usage_error(tmp_path, no_model_load, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    write_rgb(tmp_path / "in" / "a.png")
    code = main(["convert", str(tmp_path / "in"), "-o", str(blocker / "sub"), "-m", "sr-x2", "--no-progress"])
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err


# -------------------------------------------------------------------------- 4. finished batches


def test_rerun_of_a_finished_batch_does_not_load_the_model(tmp_path, tiny_models, capsys, monkeypatch):
    src = tmp_path / "in"
    write_rgb(src / "a.png")
    write_rgb(src / "b.png")
    args = ["convert", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["sr"]), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    import imgtrans.weights as weights

    monkeypatch.setattr(weights, "open_model", lambda ref: pytest.fail("model loaded for a finished batch"))
    assert main(args) == 0
    assert "0 converted, 2 skipped" in capsys.readouterr().err
    # in a fresh process: torch is not even imported
    script = ("import sys\nfrom imgtrans.cli import main\nrc = main(sys.argv[1:])\n"
              "print('torch' in sys.modules)\nsys.exit(rc)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", proc.stderr


# --------------------------------------------------------------------------------- 5. noise level


@pytest.mark.parametrize("value", ["-5", "101", "nan"])
def test_noise_level_out_of_range_is_a_usage_error(tmp_path, tiny_models, capsys, value, no_model_load):
    write_rgb(tmp_path / "a.png")
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["denoise_map"]),
                 "--noise-level", value])
    assert code == 2 and "between 0 and 100" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_noise_level_above_the_trained_range_warns(tmp_path, capsys):
    write_rgb(tmp_path / "a.png", 24, 20)
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "denoise-color",
                 "--noise-level", "75", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "--noise-level 75 is above" in err and "sigma 0-50" in err, err
    assert main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "-m", "denoise-color",
                 "--noise-level", "30", "--no-progress"]) == 0
    assert "is above the noise" not in capsys.readouterr().err


def test_noise_level_zero_returns_the_input_unchanged(tmp_path, tiny_models):
    src = write_rgb(tmp_path / "a.png", 30, 26, seed=4)
    out = tmp_path / "o"
    assert main(["convert", str(src), "-o", str(out), "-m", str(tiny_models["denoise_map"]), "--noise-level", "0",
                 "--no-progress"]) == 0
    with PILImage.open(src) as a, PILImage.open(out / "a.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert main(["convert", str(src), "-o", str(tmp_path / "o5"), "-m", str(tiny_models["denoise_map"]),
                 "--noise-level", "5", "--no-progress"]) == 0
    with PILImage.open(src) as a, PILImage.open(tmp_path / "o5" / "a.png") as b:
        assert not np.array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------ 6. options with no effect


def test_options_that_do_not_apply_warn(tmp_path, tiny_models, capsys):
    write_rgb(tmp_path / "a.png")
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_models["sr"]),
                 "--noise-level", "10", "--style-size", "256", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert f"imgtrans: --noise-level has no effect on {tiny_models['sr']} (it takes no noise level)" in err, err
    assert f"imgtrans: --style-size has no effect on {tiny_models['sr']} (not a style model)" in err, err
    code = main(["convert", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "-m", str(tiny_models["denoise_map"]),
                 "--noise-level", "10", "--no-progress"])
    assert code == 0 and "no effect" not in capsys.readouterr().err


# ------------------------------------------------------------------------------ 7. flat collisions


def test_flat_collisions_are_reported_and_provenance_keeps_the_relative_path(tmp_path, tiny_models, capsys):
    src = tmp_path / "in"
    write_rgb(src / "a" / "x.jpg", seed=1)
    write_rgb(src / "b" / "x.jpg", seed=2)
    out = tmp_path / "out"
    code = main(["convert", str(src), "-r", "--flat", "--format", "png", "-o", str(out), "-m", str(tiny_models["sr"]),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["x_jpg.png", "x_jpg_2.png"]
    renamed = [ln for ln in err.splitlines() if "another input has the same output name" in ln]
    assert len(renamed) == 2 and any(str(src / "a" / "x.jpg") in ln for ln in renamed), err
    sources = sorted(read_provenance(p)["source"] for p in out.iterdir())
    assert sources == ["a/x.jpg", "b/x.jpg"]


# ---------------------------------------------------------------------------------- 8. parsing


def test_option_typo_gets_the_convert_usage(tmp_path, capsys):
    code = main(["convert", "a.jpg", "-o", "o", "-m", "x", "--ovewrite"])
    err = capsys.readouterr().err
    assert code == 2
    assert "usage: imgtrans convert" in err and "imgtrans convert: error: unrecognized arguments: --ovewrite" in err


def test_option_prefixes_are_not_abbreviations(tmp_path, capsys):
    code = main(["convert", "a.jpg", "-o", "o", "-m", "x", "--over"])
    assert code == 2 and "--over" in capsys.readouterr().err
    assert main(["models", "--jso"]) == 2


def test_progress_bar_shows_whole_counts_and_one_rate_unit():
    buf = io.StringIO()
    bar = ProgressBar(4, file=buf, mininterval=0)
    for step in (0.5, 1.0, 0.25):
        bar.update(step)
        text = str(bar)
        assert "s/img" in text and "img/s" not in text, text
    assert "1/4" in text and "1.7" not in text and ".0/4" not in text, text
    bar.update(2.25)
    assert "4/4" in str(bar)
    bar.close()
