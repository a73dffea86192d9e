"""Speed and memory of imgtrans's inference, per model and size (issue 7).

For each model it measures, each in a fresh subprocess (so peak RSS belongs to that configuration):

* **backends**: ms/image of ``eager`` (NCHW), ``eager`` + channels_last, ``compile`` (after its
  warm-up, which is reported apart) and ``onnx`` (onnxruntime, export cached) on one image of the
  given size, through ``imgtrans.tiling.run_model`` (what the engine runs), and what ``auto`` picks;
* **naive loop**: what a user would write: PIL open, to tensor, the network in eager fp32 with
  torch's default threads, clamp, to uint8, PIL save, one image after another, over a folder of
  ``--images`` photos (crops of ``resources/samples``);
* **pipeline**: ``imgtrans.engine.convert`` over the same folder with the same weights and
  ``--backend auto`` (decode/encode overlapped with inference, model loaded once, threads set,
  backend chosen, integer output assembly, atomic fsynced writes with metadata);
* the ratio naive / pipeline, and peak RSS of every subprocess.

Models: the bundled/catalog model of each kind when one exists, else a randomly initialised network
of the standard size (the output says which). ``--device cuda`` measures fp32 vs fp16 (only where the
architecture is half-safe) with channels_last instead of the CPU backends.

``--large`` runs x4 SR of a 4096x4096 image through the real CLI in a subprocess and reports its
peak RSS (issue 7: under 3 GB on the CPU). ``--startup`` times ``imgtrans --help``/``models`` and the
GUI window showing (offscreen).

Timings on a shared machine are only meaningful when nothing else runs: on the development machine
each run was wrapped in ``benchmarks/quiet.sh`` (pauses a background trainer).

    .venv/bin/python benchmarks/speed.py --models sr-x2,denoise,style --images 50
    .venv/bin/python benchmarks/speed.py --large
    .venv/bin/python benchmarks/speed.py --startup
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"

# kind -> (task, scale, input edge for the backend table, random-init fallback (arch, hparams))
KINDS = {
    "sr-x2": ("sr", 2, 256, ("srresnet", {"nf": 64, "n_blocks": 16, "scale": 2})),
    "sr-x4": ("sr", 4, 128, ("srresnet", {"nf": 64, "n_blocks": 16, "scale": 4})),
    "denoise": ("denoise", 1, 256, ("dncnn", {"channels": 3, "nf": 64, "depth": 17, "bn": True, "noise_map": False})),
    "style": ("style", 1, 256, ("cyclegan_resnet", {"ngf": 64, "n_blocks": 9})),
}


# ------------------------------------------------------------------------------------------ helpers


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _busy_ticks() -> int:
    """CPU time (clock ticks) all processes used so far, from /proc/stat (0 where unavailable)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def child(args: list[str], timeout: float = 1800) -> dict:
    """Run this script with ``args`` in a subprocess; its last stdout line is JSON. Adds
    ``others``: the average number of cores that *other* processes kept busy meanwhile (a figure
    above ~0.1 means the timing was disturbed and should be re-run)."""
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    hz = os.sysconf("SC_CLK_TCK")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, t0 = _busy_ticks(), time.perf_counter()
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, env=env)
    wall, busy1 = time.perf_counter() - t0, _busy_ticks()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    others = max(0.0, ((busy1 - busy0) / hz - mine) / max(wall, 1e-9))
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1][:300], "others": others}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["others"] = round(others, 2)
    return out


def best_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    return min(ok, key=lambda r: r["s"]) if ok else runs[0]


def find_weights(kind: str, work: Path) -> tuple[Path, str]:
    """The catalog model for ``kind`` if there is one, else random weights saved under ``work``."""
    from imgtrans.catalog import list_models

    task, scale, _edge, (arch, hp) = KINDS[kind]
    for entry in list_models(task):
        if entry.task == task and (task != "sr" or entry.scale == scale):
            return Path(entry.path), f"{entry.id} (bundled/catalog)"
    path = work / f"random-{kind}.safetensors"
    if not path.exists():
        import torch

        from imgtrans.archs import get_arch
        from imgtrans.weights import save_model

        torch.manual_seed(0)
        spec = get_arch(arch)
        module = spec.build(spec.hparams(hp)).eval()
        save_model(path, module, arch, hp, {"name": f"random {kind}"})
    desc = ", ".join(f"{k}={v}" for k, v in hp.items())
    return path, f"random-init {arch} ({desc})"


def make_folder(folder: Path, n: int, edge: int) -> None:
    """``n`` PNG photos of ``edge``x``edge``: crops of the sample photos at assorted places."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    sources = [Image.open(p).convert("RGB") for p in photos]
    for i in range(n):
        im = sources[i % len(sources)]
        w, h = im.size
        s = min(w, h, max(edge, min(w, h) // 2))
        x0 = (i * 97) % max(1, w - s)
        y0 = (i * 61) % max(1, h - s)
        tile = im.crop((x0, y0, x0 + s, y0 + s)).resize((edge, edge), Image.Resampling.LANCZOS)
        tile.save(folder / f"img{i:03d}.png")


def sample_tensor(edge: int):
    import numpy as np
    import torch
    from PIL import Image

    photo = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() == ".jpg")[0]
    im = Image.open(photo).convert("RGB").resize((edge, edge), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


# ------------------------------------------------------------------------------- subprocess bodies


def run_backend(args) -> dict:
    """One backend on one image size: warm-up, then the median of ``repeats`` runs."""
    import torch

    from imgtrans.backends import prepare_backend
    from imgtrans.engine import ConvertOptions, prepare_model
    from imgtrans.tiling import run_model
    from imgtrans.weights import load_model

    model = load_model(args.weights)
    prepare_model(model, ConvertOptions(output_dir=Path("."), device=args.device, half=args.half))
    backend = args.backend
    channels_last = None
    if backend in ("eager-nchw", "eager-cl"):
        from imgtrans import backends as B

        channels_last = backend == "eager-cl"
        B.configure_threads()
        runner = B.BackendModel(model, "eager", B._eager_runner(model, channels_last), "benchmark", channels_last)
    else:
        runner = prepare_backend(model, backend)
    x = sample_tensor(args.edge)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    run_model(runner, x, noise_level=25)
    sync()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run_model(runner, x, noise_level=25)
        sync()
        times.append(time.perf_counter() - t0)
    return {"ms": statistics.median(times) * 1000, "warmup_s": warm, "rss": peak_rss_bytes(),
            "ran": runner.describe(), "threads": torch.get_num_threads(),
            "gpu_peak": torch.cuda.max_memory_allocated() if args.device == "cuda" else None}


def run_naive(args) -> dict:
    """The loop a user would write: no imgtrans machinery beyond loading the same weights."""
    import numpy as np
    import torch
    from PIL import Image

    from imgtrans.weights import load_model

    t_start = time.perf_counter()
    model = load_model(args.weights)  # the same network and weights
    net = model.module.eval().to(args.device)
    lo, hi = model.value_range
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(args.folder).glob("*.png"))
    t0 = time.perf_counter()
    for path in files:
        im = Image.open(path).convert("RGB")
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].to(args.device)
        with torch.no_grad():
            inp = x * (hi - lo) + lo
            y = model.forward(net, inp, 25.0)  # the architecture's own call
            y = ((y - lo) / (hi - lo)).clamp(0, 1)
        arr = (y[0].permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
        Image.fromarray(arr).save(out / path.name)
    loop = time.perf_counter() - t0
    return {"s": loop, "n": len(files), "with_load_s": time.perf_counter() - t_start, "rss": peak_rss_bytes(),
            "threads": torch.get_num_threads()}


def run_pipeline(args) -> dict:
    import torch

    from imgtrans.engine import ConvertOptions, convert
    from imgtrans.weights import load_model

    t_start = time.perf_counter()
    model = load_model(args.weights)
    opts = ConvertOptions(output_dir=Path(args.out), fmt="png", overwrite=True, device=args.device,
                          backend=args.backend,
                          noise_level=25)
    t0 = time.perf_counter()
    summary, ran = None, ""
    for ev in convert([args.folder], model, opts):
        if ev.kind == "backend":
            ran = ev.message
        elif ev.kind == "finished":
            summary = ev.summary
    loop = time.perf_counter() - t0
    assert summary is not None and summary.ok, summary
    return {"s": loop, "n": len(summary.converted), "with_load_s": time.perf_counter() - t_start,
            "rss": peak_rss_bytes(), "ran": ran, "threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------------------- drivers


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs available, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, onnxruntime {ort}, {platform.system()} {platform.release()}")


def mb(n: int | None) -> str:
    return "-" if not n else f"{n / 2**20:,.0f}"


def bench_models(opts) -> list[str]:
    work = Path(opts.work)
    work.mkdir(parents=True, exist_ok=True)
    lines = [f"Machine: {machine()}", ""]
    if opts.device == "cuda":
        lines += ["| model | input | backend | ms/image | warm-up s | peak RSS MB | peak GPU MB |",
                  "|---|---|---|---:|---:|---:|---:|"]
    else:
        lines += ["| model | input | eager | eager+channels_last | compile (warm-up) | onnx | auto picks | naive loop "
                  "| pipeline | naive/pipeline | peak RSS MB (eager / onnx / naive / pipeline) | other load |",
                  "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|"]
    for kind in opts.models.split(","):
        weights, label = find_weights(kind, work)
        edge = opts.size or KINDS[kind][2]
        print(f"== {kind}: {label}, {edge}x{edge}", file=sys.stderr, flush=True)
        base = ["--weights", str(weights), "--edge", str(edge), "--device", opts.device, "--repeats", str(opts.repeats)]
        if opts.device == "cuda":
            from imgtrans.weights import load_model

            half_ok = load_model(weights).half_ok
            for name, extra in [("eager fp32", ["--backend", "eager-nchw", "--half", "no"]),
                                ("eager fp32 + channels_last", ["--backend", "eager-cl", "--half", "no"]),
                                *([("eager fp16 + channels_last", ["--backend", "eager-cl", "--half", "yes"])]
                                  if half_ok else []),
                                ("auto", ["--backend", "auto"])]:
                r = child(["_backend", *base, *extra])
                print(f"   {name}: {r}", file=sys.stderr, flush=True)
                if "error" in r:
                    lines.append(f"| {label} | {edge}x{edge} | {name} | error: {r['error']} | | | |")
                else:
                    lines.append(f"| {label} | {edge}x{edge} | {name} ({r['ran']}) | {r['ms']:.1f} | "
                                 f"{r['warmup_s']:.1f} | {mb(r['rss'])} | {mb(r['gpu_peak'])} |")
            continue
        res = {}
        for name in opts.backends.split(","):
            r = child(["_backend", *base, "--backend", name, "--half", "no"])
            res[name] = r
            print(f"   {name}: {r}", file=sys.stderr, flush=True)
        folder = work / f"photos-{edge}-{opts.images}"
        if not folder.is_dir() or len(list(folder.glob("*.png"))) != opts.images:
            shutil.rmtree(folder, ignore_errors=True)
            make_folder(folder, opts.images, edge)
        naives, pipes = [], []
        for _round in range(opts.rounds):  # alternate, so a disturbance hits both alike; best of each
            naives.append(child(["_naive", "--weights", str(weights), "--folder", str(folder), "--out",
                                 str(work / "out-naive"),
                                 "--device", opts.device]))
            print(f"   naive: {naives[-1]}", file=sys.stderr, flush=True)
            pipes.append(child(["_pipeline", "--weights", str(weights), "--folder", str(folder), "--out",
                                str(work / "out-pipeline"),
                                "--device", opts.device, "--backend", "auto"]))
            print(f"   pipeline: {pipes[-1]}", file=sys.stderr, flush=True)
        naive, pipe = best_of(naives), best_of(pipes)
        disturbed = max([r.get("others", 0.0) for r in [*res.values(), naive, pipe]])

        def ms(name: str) -> str:
            r = res.get(name)  # noqa: B023 - ms() is called only in this iteration
            if not r:
                return "-"
            if "error" in r:
                return "error"
            text = f"{r['ms']:.0f}"
            if name == "compile":
                text += f" ({r['warmup_s']:.0f} s)"
            return text

        def per_image(r: dict) -> str:
            return "error" if "error" in r else f"{r['s'] / max(r['n'], 1) * 1000:.0f}"

        ratio = "-" if ("error" in naive or "error" in pipe) else f"**{naive['s'] / pipe['s']:.2f}x**"
        picks = res.get("auto", {}).get("ran") or (pipe.get("ran", "").replace("backend: ", "").split(" (")[0])
        rss = " / ".join(mb(r.get("rss")) for r in (res.get("eager-nchw", {}), res.get("onnx", {}), naive, pipe))
        lines.append(f"| {label} | {edge}x{edge} | {ms('eager-nchw')} | {ms('eager-cl')} | {ms('compile')} | "
                     f"{ms('onnx')} | {picks} | {per_image(naive)} | {per_image(pipe)} | {ratio} | {rss} | "
                     f"{disturbed:.2f} |")
    lines += ["", f"Backend columns: ms/image, median of {opts.repeats} runs after one warm-up, one image, batch 1 "
              "(compile: warm-up seconds in brackets). naive loop and pipeline: ms/image over a folder of "
              f"{opts.images} PNG photos, model load excluded, best of {opts.rounds} alternating rounds. other load: "
              "the most cores other processes used during any of these measurements (near 0 = undisturbed)."]
    return lines


def bench_large(opts) -> list[str]:
    """x4 SR of a 4096x4096 PNG through the CLI in a subprocess; peak RSS of that process."""
    import numpy as np
    import torch
    from PIL import Image

    from imgtrans.archs import SRResNet
    from imgtrans.weights import save_model

    work = Path(opts.work) / "large"
    (work / "in").mkdir(parents=True, exist_ok=True)
    n = opts.large_edge
    src = work / "in" / f"photo{n}.png"
    if not src.exists():
        photo = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() == ".jpg")
        im = Image.open(photo[0]).convert("RGB").resize((n, n), Image.Resampling.LANCZOS)
        rng = np.random.default_rng(0)
        arr = np.clip(np.asarray(im, dtype=np.float32) + rng.normal(0, 3, (n, n, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(src, compress_level=1)
    if opts.large_model:
        weights, label = Path(opts.large_model), opts.large_model
    else:
        nf, nb = opts.large_nf, opts.large_blocks
        weights = work / f"random-srresnet-x4-nf{nf}-b{nb}.safetensors"
        label = f"random-init SRResNet x4 (nf={nf}, n_blocks={nb})"
        if not weights.exists():
            torch.manual_seed(0)
            hp = {"nf": nf, "n_blocks": nb, "scale": 4}
            save_model(weights, SRResNet(**hp).eval(), "srresnet", hp, {"name": label})
    out = work / "out"
    cmd = [sys.executable, "-m", "imgtrans", "convert", str(src), "-o", str(out), "-m", str(weights), "--overwrite",
           "--no-progress", "--backend", opts.large_backend]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    produced = out / src.name
    size = ""
    if produced.exists():
        import struct

        with open(produced, "rb") as fh:  # IHDR: no decode (and no decompression-bomb guard) needed
            w, h = struct.unpack(">II", fh.read(24)[16:24])
        size = f"{w}x{h}"
    ok = res.returncode == 0 and produced.exists()
    print(res.stderr, file=sys.stderr)
    return [f"Machine: {machine()}", "",
            "| input | model | backend | output | wall s | peak RSS MB | result |", "|---|---|---|---|---:|---:|---|",
            f"| {n}x{n} PNG | {label} | {opts.large_backend} | {size or '-'} PNG "
            f"({produced.stat().st_size / 2**20:.0f} MB) | {wall:.0f} | {mb(peak)} | "
            f"{'ok' if ok else 'FAILED: ' + res.stderr.strip().splitlines()[-1][:200]} |"
            if produced.exists() else f"| {n}x{n} | {label} | {opts.large_backend} | - | {wall:.0f} | {mb(peak)} | "
                                      "FAILED |"]


GUI_SCRIPT = """
import os, sys, time
t0 = time.perf_counter()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from imgtrans.gui.app import create_app
from imgtrans.gui.window import MainWindow
app, log_file = create_app()
window = MainWindow(log_file=str(log_file))
window.show()
app.processEvents()
shown = time.perf_counter() - t0
print(f"{shown:.3f} {'torch' in sys.modules}")
"""


def bench_startup(opts) -> list[str]:
    def wall(cmd: list[str], repeats: int = 5) -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            best = min(best, time.perf_counter() - t0)
        return best

    exe = [sys.executable, "-m", "imgtrans"]
    lines = [f"Machine: {machine()}", "", "| what | wall s (best of 5, fresh process) |", "|---|---:|"]
    lines.append(f"| `imgtrans --help` | {wall(exe + ['--help']):.2f} |")
    lines.append(f"| `imgtrans models` | {wall(exe + ['models']):.2f} |")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory() as home:
        env["IMGTRANS_HOME"] = home
        best, torch_loaded = float("inf"), None
        for _ in range(5):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", GUI_SCRIPT], capture_output=True, text=True, env=env,
                                 check=True)
            total = time.perf_counter() - t0
            _shown, torch_flag = res.stdout.split()
            best = min(best, total)
            torch_loaded = torch_flag
    lines.append(f"| GUI window shown (offscreen, process start to `show()` + first event loop pass) | {best:.2f} |")
    lines.append("")
    lines.append(f"torch imported before the window showed: {torch_loaded}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_backend", "_naive", "_pipeline"):
        sub = argparse.ArgumentParser()
        sub.add_argument("--weights")
        sub.add_argument("--edge", type=int, default=256)
        sub.add_argument("--device", default="cpu")
        sub.add_argument("--repeats", type=int, default=3)
        sub.add_argument("--backend", default="auto")
        sub.add_argument("--half", default="no")
        sub.add_argument("--folder")
        sub.add_argument("--out")
        a = sub.parse_args(argv[1:])
        a.half = a.half == "yes"
        fn = {"_backend": run_backend, "_naive": run_naive, "_pipeline": run_pipeline}[argv[0]]
        print(json.dumps(fn(a)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="sr-x2,denoise,style", help=f"comma list of {', '.join(KINDS)}")
    p.add_argument("--backends", default="eager-nchw,eager-cl,onnx,compile,auto")
    p.add_argument("--size", type=int, default=0, help="input edge (default per model)")
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="naive/pipeline rounds (alternating; best of each)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "imgtrans-speed"))
    p.add_argument("--large", action="store_true", help="x4 SR of a 4096x4096 image via the CLI: peak RSS")
    p.add_argument("--large-edge", type=int, default=4096)
    p.add_argument("--large-model", default="", help="x4 weights for --large (default: random SRResNet)")
    p.add_argument("--large-nf", type=int, default=32)
    p.add_argument("--large-blocks", type=int, default=4)
    p.add_argument("--large-backend", default="auto")
    p.add_argument("--startup", action="store_true", help="start-up times of the CLI and the GUI")
    p.add_argument("--markdown", type=Path, help="also write the table(s) to this file")
    opts = p.parse_args(argv)
    lines: list[str] = []
    if opts.startup:
        lines += bench_startup(opts)
    if opts.large:
        lines += bench_large(opts)
    if not opts.startup and not opts.large:
        lines += bench_models(opts)
    text = "\n".join(lines)
    print(text)
    if opts.markdown:
        opts.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
