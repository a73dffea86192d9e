"""imgtrans-train --config: options from a TOML or JSON file, command line > config file > preset;
and every option says what it does in --help."""

from __future__ import annotations

import argparse
import json

import pytest
from test_training import cli, domains, make_folder, one_thread  # noqa: F401 (fixtures)

from imgtrans.paths import runs_dir
from imgtrans.training.config import read_config_file, resolve


def test_every_option_has_help_text():
    from imgtrans.training.cli import build_parser

    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"imgtrans-train {command} {action.option_strings[0]} has no help text"


def test_precedence_command_line_over_config_file_over_preset(tmp_path):
    (tmp_path / "run.toml").write_text('preset = "cpu-tiny"\nngf = 12\nbatch-size = 3\nsteps = 40\n')
    file = read_config_file(tmp_path / "run.toml")
    cfg = resolve("cyclegan", {"ngf": 20}, config=file)
    assert (cfg.preset, cfg.ngf, cfg.batch_size, cfg.ndf, cfg.size) == ("cpu-tiny", 20, 3, 16, 64)
    assert cfg.steps == 40 and cfg.epochs is None  # the file's steps replace the preset's epochs
    cfg = resolve("cyclegan", {"preset": "cpu-small", "epochs": 5}, config=file)
    assert (cfg.preset, cfg.ngf, cfg.ndf, cfg.epochs, cfg.steps) == ("cpu-small", 12, 32, 5, None)
    (tmp_path / "bad.toml").write_text("batch_sise = 3\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown option\(s\): batch_sise"):
        read_config_file(tmp_path / "bad.toml")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken.json: not valid JSON"):
        read_config_file(tmp_path / "broken.json")
    (tmp_path / "dn.toml").write_text('task = "denoise"\nsigma = "10-30"\n')
    assert resolve("denoise", {}, config=read_config_file(tmp_path / "dn.toml")).sigma == (10.0, 30.0)


def test_a_runs_config_json_starts_a_new_run(cli, domains, tmp_path):
    a, b = domains
    (tmp_path / "run.toml").write_text(
        f'domain_a = "{a}"\ndomain_b = "{b}"\nname = "first"\nngf = 8\nn_blocks = 2\nndf = 8\nsize = 32\nbatch_size = '
        '2\npool_size = 3\nsteps = 1\ntensorboard = false\nsample_every = 0\neval_every = 0\nexport = false\n')
    res = cli("--config", tmp_path / "run.toml", "--quiet")
    assert res.returncode == 0, res.stderr
    first = json.loads((runs_dir() / "first" / "config.json").read_text())
    assert first["ngf"] == 8 and first["steps"] == 1 and first["domain_a"] == str(a)

    # the written config.json, a new name and one option changed on the command line
    res = cli("--config", runs_dir() / "first" / "config.json", "--name", "second", "--steps", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    second = json.loads((runs_dir() / "second" / "config.json").read_text())
    assert {k: v for k, v in second.items() if first[k] != v} == {"name": "second", "steps": 2}

    res = cli("sr", "--config", runs_dir() / "first" / "config.json", "--name", "x")
    assert res.returncode == 2 and "is for cyclegan, not sr" in res.stderr
    (tmp_path / "half.toml").write_text(f'domain_a = "{a}"\n')
    res = cli("--config", tmp_path / "half.toml", "--name", "third")
    assert res.returncode == 2 and "--domain-b required (on the command line or in --config)" in res.stderr
