"""Inference backends: how a loaded network is executed (eager PyTorch, ``torch.compile``, onnxruntime).

A backend turns a :class:`~imgtrans.weights.LoadedModel` into a :class:`BackendModel`: the same
object as far as :mod:`imgtrans.tiling` is concerned (every attribute is the model's), but whose
``run`` (``(B,C,H,W)`` float in [0,1] -> output float in [0,1]) goes through the chosen executor.
Tiling, the OOM split-retry and the exact band-streamed instance-norm path of the CycleGAN
generator therefore work unchanged on top of any backend. The band-streamed path needs per-layer
access to the network, so it always runs the PyTorch modules (eager); a backend serves it only when
the whole image fits one band, in which case ``tiling.run_model`` runs the network in one call.

``auto`` picks per architecture and device what the architecture's descriptor prefers
(``ArchSpec.backends``: what ran fastest on a 2-core CPU, see ``benchmarks/README.md``, "What auto
picks"); a per-machine calibration (:func:`calibrate`) cached in the user cache folder overrides the
table when present. ``auto`` never picks ``compile`` (its first call compiles for tens of seconds and
needs a C compiler) and silently falls back to eager when onnxruntime is missing. ``--backend onnx`` without onnxruntime
is a one-line :class:`BackendError`. A ``compile`` backend that fails (no compiler, unsupported op) falls back to eager
with one warning and never stops a batch.

ONNX graphs are exported once per weights and cached in ``<user cache>/onnx/``, keyed by a hash of
the weights, the architecture and hyper-parameters, the opset and the torch version; files are
written atomically and a cached file that does not load is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgtrans.archs.base import BackendChoice as Choice
from imgtrans.atomic import replacing, write_bytes

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "onnx")
ONNX_OPSET = 17
_EXPORT_VERSION = "1"  # bump when the exported graph changes for the same weights


class BackendError(Exception):
    """A backend that was asked for explicitly cannot be used; ``str(e)`` is one line."""


DEFAULT_CHOICE = Choice("eager", False, "no measurements for this architecture: eager")
# onnxruntime's CPU arena grows to its peak and keeps it (it stays on because disabling it costs speed), so
# tiles are sized for about this many times what eager PyTorch needs (benchmarks/README.md, "Memory")
ONNX_MEMORY_FACTOR = 2.25


def _choice(model, device_type: str) -> Choice:
    """The architecture's measured preference for ``device_type`` (``ArchSpec.backends``)."""
    return model.spec.backends.get(device_type, DEFAULT_CHOICE)


def _channels_last(model, device_type: str) -> bool:
    return bool(model.spec.channels_last.get(device_type, False))


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    """Compute threads: ``IMGTRANS_THREADS`` if set, else the CPUs this process may use (affinity /
    cgroup aware), which is what both torch and onnxruntime should get on a machine doing nothing else."""
    env = os.environ.get("IMGTRANS_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n)


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (once per process is enough; cheap to repeat)."""
    n = n or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


# ------------------------------------------------------------------------------------- the wrapper


class BackendModel:
    """A :class:`~imgtrans.weights.LoadedModel` whose ``run`` goes through a backend.

    Attribute reads fall through to the wrapped model, so tiling code sees the same descriptor
    (``arch``, ``scale``, ``module``...). ``name`` is the backend that actually runs, ``why`` says why
    it was picked."""

    def __init__(self, model, name: str, runner: Callable[[torch.Tensor, Any], torch.Tensor], why: str,
                 channels_last: bool = False):
        self.model = model
        self.name = name
        self.why = why
        self.channels_last = channels_last
        self._runner = runner

    def __getattr__(self, item: str):  # only called for attributes not found on self
        return getattr(self.__dict__["model"], item)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def bytes_per_pixel(self) -> int:
        """Activation bytes per input pixel that tiling sizes tiles by: onnxruntime's arena keeps
        about ONNX_MEMORY_FACTOR times what eager PyTorch needs for the largest tile it ran."""
        return int(self.model.bytes_per_pixel * (ONNX_MEMORY_FACTOR if self.name == "onnx" else 1))

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def run(self, x: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        return self._runner(x, noise_level)

    def describe(self) -> str:
        return f"{self.name}{' + channels_last' if self.channels_last else ''}"


def _eager_runner(model, channels_last: bool) -> Callable:
    module = model.module
    if channels_last:
        module.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(x: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        x = x.to(device=model.device, dtype=model.dtype)
        inp = model.to_model_range(x)
        if channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        out = model.forward(module, inp, noise_level)
        return model.from_model_range(out.float()).contiguous()

    return run


# ------------------------------------------------------------------------------------------ compile

_COMPILE_WARNED = False


def _compile_runner(model, channels_last: bool) -> Callable:
    """``torch.compile`` with dynamic shapes (tiles differ in size); on any compile failure, eager
    from then on, with one warning per process."""
    eager = _eager_runner(model, channels_last)
    state: dict[str, Any] = {"fn": None, "failed": False}
    lock = threading.Lock()

    def compiled_forward():
        if state["fn"] is None:
            state["fn"] = torch.compile(model.module, dynamic=True)
        return state["fn"]

    @torch.inference_mode()
    def run(x: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        global _COMPILE_WARNED
        if state["failed"]:
            return eager(x, noise_level)
        try:
            with lock:
                fn = compiled_forward()
            x = x.to(device=model.device, dtype=model.dtype)
            inp = model.to_model_range(x)
            if channels_last:
                inp = inp.contiguous(memory_format=torch.channels_last)
            out = model.forward(fn, inp, noise_level)
            return model.from_model_range(out.float()).contiguous()
        except Exception as exc:  # any compiler failure means: run eager
            from imgtrans.tiling import is_oom

            if is_oom(exc):
                raise  # tiling splits the tile and retries
            state["failed"] = True
            if not _COMPILE_WARNED:
                _COMPILE_WARNED = True
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                log.warning("torch.compile failed (%s: %s); running eager instead", type(exc).__name__, first)
            return eager(x, noise_level)

    return run


# --------------------------------------------------------------------------------------------- onnx


def weights_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes, in float32 on the CPU)."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu")
        if t.is_floating_point():
            t = t.float()
        t = t.contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def onnx_cache_dir() -> Path:
    from imgtrans.paths import user_cache_dir

    return user_cache_dir() / "onnx"


def onnx_cache_path(model) -> Path:
    key = json.dumps({
        "weights": weights_hash(model.module),
        "arch": model.arch,
        "hparams": model.hparams,
        "opset": ONNX_OPSET,
        "torch": torch.__version__,
        "export": _EXPORT_VERSION,
    }, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    safe_arch = "".join(c if c.isalnum() or c in "-_" else "_" for c in model.arch)
    return onnx_cache_dir() / f"{safe_arch}-{digest}.onnx"


class _OnnxWrapper(nn.Module):
    """The architecture's forward (``ArchSpec.forward``), model range in and out; the noise level is
    a (1,) input for networks that take one."""

    def __init__(self, module: nn.Module, spec, takes_noise: bool):
        super().__init__()
        self.module = module
        self.spec = spec
        self.takes_noise = takes_noise

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        return self.spec.forward(self.module, x, sigma if self.takes_noise else None)


def _example_input(model) -> torch.Tensor:
    m = max(int(model.size_multiple), 1)
    edge = -(-max(32, model.min_size) // m) * m
    return torch.rand(1, model.in_channels, edge, edge)


def export_onnx(model, path: Path) -> Path:
    """Export ``model``'s network (CPU, float32, eval) to ``path`` with dynamic H and W, atomically."""
    import copy

    module = copy.deepcopy(model.module).to("cpu", torch.float32).eval()
    module.to(memory_format=torch.contiguous_format)
    wrapper = _OnnxWrapper(module, model.spec, model.takes_noise_level).eval()
    x = _example_input(model)
    args: tuple = (x, torch.tensor([25.0 / 255.0])) if model.takes_noise_level else (x,)
    names = ["x", "sigma"] if model.takes_noise_level else ["x"]
    # no fsync: a cache file cut short by a power cut fails to load and is rebuilt
    with replacing(path, durable=False, make_parents=True) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # the TorchScript exporter first: it exports these plain conv nets much faster than the
            # dynamo one, to the same graph (benchmarks/README.md, "What auto picks")
            torch.onnx.export(wrapper, args, str(tmp), dynamo=False, input_names=names, output_names=["y"],
                              dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "oh", 3: "ow"}},
                              opset_version=ONNX_OPSET)
        except Exception as first:  # noqa: BLE001 - try the other exporter before giving up
            log.debug("TorchScript ONNX export failed (%s); trying the dynamo exporter", first)
            dim = torch.export.Dim.DYNAMIC
            shapes: dict[str, Any] = {"x": {2: dim, 3: dim}}
            if model.takes_noise_level:
                shapes["sigma"] = None
            torch.onnx.export(wrapper, args, str(tmp), dynamo=True, input_names=names, output_names=["y"],
                              dynamic_shapes=shapes, opset_version=max(ONNX_OPSET, 18), external_data=False,
                              verbose=False)
    return path


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def onnx_session(model, threads: int | None = None):
    """An onnxruntime session for ``model``: from the cache, or exported now. A cached file that does
    not load (truncated, corrupt) is rebuilt."""
    threads = threads or default_threads()
    path = onnx_cache_path(model)
    if path.is_file():
        try:
            return _session(path, threads), path
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            log.warning("cached ONNX graph %s does not load (%s); rebuilding it", path.name,
                        str(exc).splitlines()[0][:120])
            path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    export_onnx(model, path)
    log.info("exported %s to ONNX in %.1f s: %s", model.arch, time.perf_counter() - t0, path)
    return _session(path, threads), path


def _onnx_runner(model, threads: int | None) -> Callable:
    import numpy as np

    session, _path = onnx_session(model, threads)
    takes_noise = model.takes_noise_level

    def run(x: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        inp = model.to_model_range(x.detach().to("cpu", torch.float32))
        feeds = {"x": np.ascontiguousarray(inp.numpy())}
        if takes_noise:
            feeds["sigma"] = np.array([model.sigma(noise_level)], dtype=np.float32)
        (out,) = session.run(None, feeds)
        return model.from_model_range(torch.from_numpy(out))

    return run


# ---------------------------------------------------------------------------------------- choosing


def calibration_path() -> Path:
    from imgtrans.paths import user_cache_dir

    return user_cache_dir() / "backend-calibration.json"


def _calibration_key(model, device: torch.device) -> str:
    hp = json.dumps(model.hparams, sort_keys=True, default=str)
    return f"{model.arch}|{hp}|{device.type}|torch {torch.__version__}"


def read_calibration() -> dict[str, Any]:
    try:
        data = json.loads(calibration_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def auto_choice(model, device: torch.device) -> Choice:
    """The backend ``auto`` picks for ``model`` on ``device``: a cached calibration for exactly this
    architecture and size if there is one, else the built-in table; onnx only where onnxruntime
    is installed and on the CPU."""
    cal = read_calibration().get(_calibration_key(model, device))
    if isinstance(cal, dict) and cal.get("backend") in ("eager", "onnx"):
        choice = Choice(cal["backend"], bool(cal.get("channels_last")),
                        f"calibrated on this machine: {cal.get('why', '')}")
    else:
        choice = _choice(model, device.type)
    if choice.backend == "onnx" and (device.type != "cpu" or not model.spec.onnx_export or not onnxruntime_available()):
        cl = _channels_last(model, device.type)
        why = ("onnxruntime is not installed (pip install 'imgtrans[fast]')" if not onnxruntime_available()
               else "onnx runs on the CPU only")
        return Choice("eager", cl, f"{why}: eager")
    return choice


def prepare_backend(model, backend: str = "auto", *, threads: int | None = None) -> BackendModel:
    """Wrap ``model`` (already on its device and dtype) in the requested backend.

    Raises :class:`BackendError` (one line) for an unknown name or ``onnx`` without onnxruntime or
    on a device it cannot serve. An ONNX export that fails for an explicit ``onnx`` also raises;
    under ``auto`` it falls back to eager with a warning."""
    if isinstance(model, BackendModel):
        model = model.model
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    native = model.spec.native_backend
    if native:  # the forward already is a backend (an ONNX graph runs onnxruntime): nothing to export or compile
        return BackendModel(model, native, _eager_runner(model, False),
                            f"the model's own forward already runs {native}"
                            + ("" if backend in ("auto", native) else f" ({backend} does not apply)"))
    device = model.device
    threads = threads or default_threads()
    if device.type == "cpu":
        configure_threads(threads)
    default_cl = _channels_last(model, device.type)
    if backend == "auto":
        choice = auto_choice(model, device)
        if choice.backend == "onnx":
            try:
                return BackendModel(model, "onnx", _onnx_runner(model, threads), f"auto: {choice.why}")
            except Exception as exc:  # noqa: BLE001 - auto never fails because of onnx
                log.warning("ONNX export failed for %s (%s); using eager", model.arch,
                            str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__)
                choice = Choice("eager", default_cl, "ONNX export failed: eager")
        return BackendModel(model, "eager", _eager_runner(model, choice.channels_last), f"auto: {choice.why}",
                            channels_last=choice.channels_last)
    if backend == "eager":
        return BackendModel(model, "eager", _eager_runner(model, default_cl), "requested", channels_last=default_cl)
    if backend == "compile":
        return BackendModel(model, "compile", _compile_runner(model, default_cl), "requested", channels_last=default_cl)
    # onnx
    if not onnxruntime_available():
        raise BackendError("--backend onnx needs onnxruntime: pip install 'imgtrans[fast]' (or use --backend auto)")
    if device.type != "cpu":
        raise BackendError("--backend onnx runs on the CPU only here; use --device cpu or --backend eager")
    try:
        runner = _onnx_runner(model, threads)
    except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"cannot export {model.arch} to ONNX: {first}") from None
    return BackendModel(model, "onnx", runner, "requested")


# -------------------------------------------------------------------------------------- calibration


def calibrate(model, *, size: int = 256, repeats: int = 2, write: bool = True) -> dict[str, Any]:
    """Time eager (NCHW and channels_last) and onnx on a ``size``x``size`` input for ``model`` on its
    device; store the fastest in the calibration cache that ``auto`` reads. Returns the timings."""
    import copy

    device = model.device
    m = max(int(model.size_multiple), 1)
    edge = max(m, size // m * m)
    x = torch.rand(1, model.in_channels, edge, edge)
    timings: dict[str, float] = {}

    def bench(fn) -> float:
        fn(x, None)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x, None)
            best = min(best, time.perf_counter() - t0)
        return best

    base = copy.deepcopy(model.module)
    trial = copy.copy(model)
    trial.module = base
    timings["eager"] = bench(_eager_runner(trial, False))
    trial.module = copy.deepcopy(base)
    timings["eager+channels_last"] = bench(_eager_runner(trial, True))
    if device.type == "cpu" and onnxruntime_available() and model.spec.onnx_export:
        try:
            timings["onnx"] = bench(_onnx_runner(model, None))
        except Exception as exc:  # noqa: BLE001
            log.warning("onnx calibration failed: %s", exc)
    best = min(timings, key=timings.get)
    result = {
        "backend": "onnx" if best == "onnx" else "eager",
        "channels_last": best == "eager+channels_last",
        "why": f"{best} fastest at {edge}x{edge} ("
               + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()) + ")",
        "timings_ms": {k: round(v * 1000, 1) for k, v in timings.items()},
    }
    if write:
        data = read_calibration()
        data[_calibration_key(model, device)] = result
        write_bytes(calibration_path(), json.dumps(data, indent=1, sort_keys=True).encode("utf-8"), make_parents=True)
    return result


__all__ = [
    "BACKENDS",
    "BackendError",
    "BackendModel",
    "Choice",
    "auto_choice",
    "calibrate",
    "configure_threads",
    "default_threads",
    "export_onnx",
    "onnx_cache_path",
    "onnx_session",
    "onnxruntime_available",
    "prepare_backend",
    "weights_hash",
]
