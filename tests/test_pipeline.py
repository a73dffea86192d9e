"""The batch pipeline: complete, in order, byte-identical to a plain serial loop; memory-bounded tiling."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import write_rgb

from imgtrans.engine import ConvertOptions, convert, plan_jobs, prepare_runner, process_image
from imgtrans.engine.runner import _provenance
from imgtrans.imageio import read_image, write_image
from imgtrans.tiling import run_model, run_model_quantized
from imgtrans.weights import load_model


def _folder(tmp_path, n: int = 12):
    src = tmp_path / "in"
    for i in range(n):
        write_rgb(src / f"img{i:02d}.png", 24 + 4 * (i % 5), 20 + 6 * (i % 3), seed=i)
    # a 16-bit and a grey image take the other output paths
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((30, 26)) * 65535).astype(np.uint16)).save(src / "deep16.png")
    write_rgb(src / "grey.png", 28, 24, seed=99, mode="L")
    return src


@pytest.mark.parametrize("key", ["sr", "style"])
def test_pipeline_matches_serial_loop_byte_for_byte(tiny_models, tmp_path, key):
    src = _folder(tmp_path)
    opts = ConvertOptions(output_dir=tmp_path / "out", fmt="png", io_threads=2, tile=16 if key == "sr" else None,
                          backend="eager")
    events = list(convert([src], load_model(tiny_models[key]), opts))
    jobs, _ = plan_jobs([src], opts)
    starts = [e.src for e in events if e.kind == "start"]
    done = sorted(str(e.src) for e in events if e.kind == "done")
    assert starts == [j.src for j in jobs]  # inference in input order
    assert done == sorted(str(j.src) for j in jobs)  # every image exactly once
    assert events[-1].kind == "finished" and events[-1].summary.ok

    # the serial path a script would take: read, run in float, write; one image at a time
    ref_opts = ConvertOptions(output_dir=tmp_path / "ref", fmt="png", tile=opts.tile, backend="eager")
    model = prepare_runner(load_model(tiny_models[key]), ref_opts)
    for job in jobs:
        img = read_image(job.src)
        out = process_image(model, img, ref_opts)  # float output, quantised by the encoder
        assert out.pixels.dtype == np.float32
        ref = tmp_path / "ref" / job.dst.name
        ref.parent.mkdir(exist_ok=True)
        write_image(out, ref, provenance=_provenance(model, "", ref_opts, job.src))
        assert job.dst.read_bytes() == ref.read_bytes(), job.src.name


def test_quantized_assembly_equals_float_path_16_bit(tiny_models):
    model = load_model(tiny_models["sr"])
    x = torch.rand(1, 3, 37, 29, generator=torch.Generator().manual_seed(3))
    ref = run_model(model, x, tile=16)[0].numpy().transpose(1, 2, 0)
    from imgtrans.imageio.encode import quantize

    for bits in (8, 16):
        got = run_model_quantized(model, x, bits, tile=16)
        assert got.dtype == (np.uint8 if bits == 8 else np.uint16)
        assert np.array_equal(got, quantize(ref, bits))


def test_tiles_stay_within_a_small_budget(tiny_models):
    """A large synthetic image with a small budget: every tile the network sees is small, and the
    result is exactly the untiled one."""
    model = prepare_runner(load_model(tiny_models["sr"]), ConvertOptions(output_dir=".", backend="eager"))
    seen = []
    real_run = model.run

    def spy(x, noise_level=None):
        seen.append(tuple(x.shape[2:]))
        return real_run(x, noise_level)

    model.run = spy  # instance attribute: what tiling calls
    x = torch.rand(1, 3, 600, 500, generator=torch.Generator().manual_seed(0))
    budget = 40 * 1024 * model.bytes_per_pixel  # ~200x200 input pixels per tile
    got = run_model_quantized(model, x, 8, budget=budget)
    assert len(seen) > 4
    radius = model.receptive_radius
    assert max(h * w for h, w in seen) <= (205 + 2 * radius) ** 2
    whole = run_model_quantized(model, x, 8, tile=0)
    assert np.array_equal(got, whole)


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, numpy as np, torch
    from imgtrans.tiling import run_model_quantized
    from imgtrans.weights import load_model
    model = load_model(sys.argv[1])
    torch.set_num_threads(2)
    x0 = torch.rand(1, 3, 64, 64)
    run_model_quantized(model, x0, 8, tile=32)  # warm up the allocator and kernels
    n = int(sys.argv[2])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, n, n, generator=g)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = run_model_quantized(model, x, 8, budget=int(sys.argv[3]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "after": after, "out": out.nbytes, "input": x.numel() * 4}))
""")


def test_peak_memory_is_output_plus_one_tile(tiny_models, tmp_path):
    """x2 SR of a 1536x1536 image with a 16 MB tile budget, in a fresh process: the peak grows by the
    uint8 output (27 MB) plus about one tile's activations, not by a float output (108 MB)."""
    script = tmp_path / "mem.py"
    script.write_text(MEMORY_SCRIPT)
    budget = 16 << 20
    res = subprocess.run([sys.executable, str(script), str(tiny_models["sr"]), "1536", str(budget)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    grown = r["after"] - r["before"]
    float_output = r["out"] * 4
    assert grown < r["out"] + 2 * budget + (24 << 20), r  # the output, the tile budget twice, allocator slack
    assert grown < float_output, r
