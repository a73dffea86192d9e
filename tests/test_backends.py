"""Backends: eager, torch.compile and onnxruntime give the same images; auto, caching and fallbacks."""

from __future__ import annotations

import logging

import pytest
import torch

from imgtrans import backends
from imgtrans.backends import BackendError, prepare_backend
from imgtrans.tiling import run_model
from imgtrans.weights import load_model

TOL = 1e-3


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2][:c])[None]
    return (base * 0.8 + 0.2 * torch.rand(1, c, h, w, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("key", ["style", "style_resize", "style_skip", "sr", "sr_vgg", "denoise", "denoise_map",
                                 "ffdnet"])
def test_onnx_matches_eager(tiny_models, key):
    pytest.importorskip("onnxruntime")
    model = load_model(tiny_models[key])
    x = _image(44, 52)
    eager = run_model(prepare_backend(model, "eager"), x, tile=0, noise_level=30)
    onnx = prepare_backend(load_model(tiny_models[key]), "onnx")
    assert onnx.name == "onnx"
    whole = run_model(onnx, x, tile=0, noise_level=30)
    assert whole.shape == eager.shape
    assert (whole - eager).abs().max().item() < TOL
    # dynamic H/W: another size, and tiles of assorted sizes, through the same session
    y = _image(36, 28, seed=1)
    ref = run_model(prepare_backend(load_model(tiny_models[key]), "eager"), y, tile=0, noise_level=30)
    tiled = run_model(onnx, y, tile=16 if not key.startswith("style") else 0, noise_level=30)
    assert (tiled - ref).abs().max().item() < TOL


def test_compile_matches_eager(tiny_models, monkeypatch):
    """torch.compile for real (needs a C compiler; without one the backend falls back to eager,
    which this test would also accept, so it checks the result, not the speed)."""
    monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", "1")
    model = load_model(tiny_models["denoise"])
    x = _image(40, 36)
    eager = prepare_backend(load_model(tiny_models["denoise"]), "eager").run(x)
    compiled = prepare_backend(model, "compile")
    assert compiled.name == "compile"
    out = compiled.run(x)
    assert (out - eager).abs().max().item() < TOL
    out2 = compiled.run(_image(28, 44))  # another shape: dynamic, no failure
    assert out2.shape == (1, 3, 28, 44)


def test_compile_failure_falls_back_to_eager_with_one_warning(tiny_models, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no C compiler found")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(backends, "_COMPILE_WARNED", False)
    model = load_model(tiny_models["sr"])
    x = _image(24, 20)
    ref = prepare_backend(load_model(tiny_models["sr"]), "eager").run(x)
    runner = prepare_backend(model, "compile")
    with caplog.at_level(logging.WARNING, logger="imgtrans.backends"):
        a = runner.run(x)
        b = runner.run(x)
    assert (a - ref).abs().max().item() < 1e-6 and (b - ref).abs().max().item() < 1e-6
    assert sum("torch.compile failed" in r.message for r in caplog.records) == 1


def test_auto_picks_from_the_table(tiny_models, monkeypatch):
    sr = prepare_backend(load_model(tiny_models["sr"]), "auto")
    assert sr.name == "eager" and sr.channels_last  # SRResNet: channels_last eager
    if backends.onnxruntime_available():
        assert prepare_backend(load_model(tiny_models["denoise"]), "auto").name == "onnx"
        assert prepare_backend(load_model(tiny_models["ffdnet"]), "auto").name == "onnx"
        assert prepare_backend(load_model(tiny_models["style"]), "auto").name == "onnx"
    # without onnxruntime auto falls back silently
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    runner = prepare_backend(load_model(tiny_models["denoise"]), "auto")
    assert runner.name == "eager" and "not installed" in runner.why


def test_onnx_without_onnxruntime_is_one_clear_line(tiny_models, tmp_path, monkeypatch, capsys):
    from conftest import write_rgb

    from imgtrans.cli import main

    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    with pytest.raises(BackendError, match="onnxruntime"):
        prepare_backend(load_model(tiny_models["sr"]), "onnx")
    src = write_rgb(tmp_path / "a.png")
    code = main(["convert", str(src), "-o", str(tmp_path / "out"), "-m", str(tiny_models["sr"]), "--backend", "onnx",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "onnxruntime" in err[0] and "imgtrans[fast]" in err[0]


def test_onnx_cache_is_reused_keyed_by_weights_and_rebuilt_when_corrupt(tiny_models, monkeypatch):
    pytest.importorskip("onnxruntime")
    model = load_model(tiny_models["denoise"])
    path = backends.onnx_cache_path(model)
    assert not path.exists()
    calls = []
    real_export = backends.export_onnx
    monkeypatch.setattr(backends, "export_onnx", lambda m, p: calls.append(p) or real_export(m, p))
    x = _image(20, 24)
    first = prepare_backend(model, "onnx").run(x)
    assert path.is_file() and len(calls) == 1
    prepare_backend(load_model(tiny_models["denoise"]), "onnx")
    assert len(calls) == 1  # same weights: the cached graph
    other = load_model(tiny_models["denoise"])
    with torch.no_grad():
        next(other.module.parameters()).add_(0.01)
    assert backends.onnx_cache_path(other) != path  # other weights: another key
    path.write_bytes(b"not an onnx file")
    again = prepare_backend(load_model(tiny_models["denoise"]), "onnx").run(x)
    assert len(calls) == 2 and (again - first).abs().max().item() == 0.0
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_engine_uses_the_requested_backend(tiny_models, tmp_path):
    pytest.importorskip("onnxruntime")
    from conftest import write_rgb

    from imgtrans.engine import ConvertOptions, convert

    src = write_rgb(tmp_path / "in" / "a.png", 40, 32)
    events = list(convert([src], load_model(tiny_models["denoise"]),
                          ConvertOptions(output_dir=tmp_path / "out", backend="onnx")))
    kinds = [e.kind for e in events]
    assert "backend" in kinds and kinds[-1] == "finished"
    assert next(e.message for e in events if e.kind == "backend").startswith("backend: onnx")
    assert events[-1].summary.ok and (tmp_path / "out" / "a.png").is_file()


def test_calibration_is_cached_and_used_by_auto(tiny_models):
    model = load_model(tiny_models["sr"])
    result = backends.calibrate(model, size=32, repeats=1)
    assert result["backend"] in ("eager", "onnx")
    choice = backends.auto_choice(load_model(tiny_models["sr"]), torch.device("cpu"))
    assert choice.why.startswith("calibrated on this machine")


def test_help_and_models_answer_without_torch():
    import subprocess
    import sys
    import time

    code = ("import sys\nfrom imgtrans.cli import main\n"
            "for argv in (['--help'], ['models']):\n    main(argv)\n"
            "print('TORCH', 'torch' in sys.modules)")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "TORCH False" in res.stdout
    assert time.perf_counter() - t0 < 5  # < 1 s on the development machine; generous for loaded CI


@pytest.mark.skipif(not backends.onnxruntime_available(), reason="onnxruntime not installed")
def test_onnx_tiles_are_sized_for_its_arena(tiny_models):
    """onnxruntime keeps ~2.2x eager's activation memory (its arena): auto tiles shrink to match,
    so x4 SR of a huge image stays inside the memory budget (benchmarks/README.md, Memory)."""
    from imgtrans.tiling import auto_tile

    eager = prepare_backend(load_model(tiny_models["sr"]), "eager")
    onnx = prepare_backend(load_model(tiny_models["sr"]), "onnx")
    assert onnx.bytes_per_pixel == int(eager.bytes_per_pixel * backends.ONNX_MEMORY_FACTOR)
    budget = 400 * 10**6
    assert auto_tile(onnx, budget) < auto_tile(eager, budget)
