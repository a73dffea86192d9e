"""A user's image-to-image ONNX graph, run by onnxruntime (optional: ``pip install 'imgtrans[fast]'``).

An ONNX file is data: onnxruntime executes its graph, no Python code from the file runs. Like a
spandrel model (:mod:`imgtrans.archs.foreign`), each graph gets an :class:`~imgtrans.archs.base.ArchSpec`
of its own, so the engine runs it as it runs ours:

* the graph takes one ``(N,C,H,W)`` float tensor (C 1 or 3) and returns the image first;
* **size**: a graph whose H and W are numbers (fixed size) runs in blended tiles, each padded to
  exactly that size (:attr:`ArchSpec.input_size`); a graph with symbolic H/W (dynamic size) runs on the
  whole image when it fits the memory budget, else in blended tiles: such graphs may have image-wide
  statistics (fast-neural-style's instance norm), and their receptive field is unknown;
* **scale** (output/input size) and, for dynamic graphs, the **size multiple** (the smallest of
  1, 2, 4, ... 32 that gives an output of exactly ``scale`` times the input) are measured by running
  small probe inputs, unless the metadata gives them;
* **value range** (what the graph reads and writes: ``0-1``, ``-1..1`` or ``0-255``) comes from, in
  order: the values given at import (``imgtrans import --range``, stored in the sidecar), the
  graph's own ``metadata_props`` (key ``value_range``, also ``range``/``input_range``), else the
  heuristic :func:`guess_range`.

:func:`guess_range` runs a real photo (a bundled sample, 64x64) through the graph in each convention,
maps the output back to [0,1] the same way, and keeps the convention whose output is closest (mean
squared error, out-of-range values included) to the photo resized to the output size: conventions are
tried in the order 0-1, -1..1, 0-255, and one is kept when its output is within RMSE 0.05 of the photo
or no later one is at least twice as close. That
recognises the common cases: 0-255 style networks (whose output is far outside [0,1] read any other
way) and tanh (-1..1) generators. Its limits: a network that is almost linear (many SR networks)
gives nearly the same picture in every convention, and is then taken as 0-1, which may leave
brightness slightly off if it was trained on another range; a network whose output does not
resemble its input at all makes the guess arbitrary. Give ``--range`` for those.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgtrans.archs.base import ArchSpec

log = logging.getLogger(__name__)

ARCH = "onnx"
RANGES: dict[str, tuple[float, float]] = {"0-1": (0.0, 1.0), "-1..1": (-1.0, 1.0), "0-255": (0.0, 255.0)}
RANGE_KEYS = ("value_range", "range", "input_range")
PROBE = 64  # probe input edge for dynamic graphs
MULTIPLES = (1, 2, 4, 8, 16, 32)
# mean squared error (RMSE 0.05) under which a convention's output already resembles the photo: a
# later convention is not tried against it (nearly linear networks look alike in every convention)
CLOSE_ENOUGH = 0.0025


class OnnxGraphError(ValueError):
    """The file is not an ONNX graph imgtrans can run; ``str(e)`` is one line."""


def parse_range(text: str) -> tuple[float, float]:
    """``"0-1"``, ``"-1..1"`` (also ``"-1-1"``, ``"-1,1"``) or ``"0-255"`` -> ``(lo, hi)``."""
    t = str(text).strip().replace(" ", "").replace(",", "..").replace("[", "").replace("]", "")
    t = {"-1-1": "-1..1", "0..1": "0-1", "0..255": "0-255"}.get(t, t)
    if t not in RANGES:
        raise OnnxGraphError(f"unknown value range {text!r} (use one of {', '.join(RANGES)})")
    return RANGES[t]


def range_name(value_range: tuple[float, float]) -> str:
    return next(k for k, v in RANGES.items() if v == tuple(value_range))


class OnnxGraph(nn.Module):
    """``forward(x)``: ``x`` ``(B,C,H,W)`` in the graph's range, on any device -> the graph's first
    output on ``x``'s device and dtype, computed by onnxruntime on the CPU. Holds one dummy
    parameter so the engine can read a device and dtype from it."""

    def __init__(self, session, input_name: str, output_name: str, batch_one: bool):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.session = session
        self.input_name = input_name
        self.output_name = output_name
        self.batch_one = batch_one
        import onnxruntime as ort

        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 4

    def _run(self, arr: np.ndarray) -> np.ndarray:
        # errors come back as exceptions; onnxruntime's own log would print them a second time
        # (and the probes for a size multiple expect some)
        return self.session.run([self.output_name], {self.input_name: arr}, self.run_options)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        if self.batch_one and arr.shape[0] != 1:
            out = np.concatenate([self._run(arr[i : i + 1]) for i in range(arr.shape[0])])
        else:
            out = self._run(arr)
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(device=x.device, dtype=x.dtype)


def _session(path: Path):
    from imgtrans.extras import install_hint, installed

    if not installed("onnxruntime"):
        raise OnnxGraphError(f"ONNX models run in onnxruntime, which is not installed ({install_hint('onnxruntime')})")
    from imgtrans.backends import _session as make_session, default_threads

    try:
        return make_session(path, default_threads())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(str(path), path.name).replace("[ONNXRuntimeError] : ", "")[:200]
        raise OnnxGraphError(f"not an ONNX graph onnxruntime can run ({first})") from None


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def _graph(session) -> tuple[str, str, int, tuple[int, int] | None, bool]:
    """``(input name, output name, channels, fixed (H, W) or None, batch fixed at 1)``."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise OnnxGraphError(f"the graph takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                             "an image-to-image model takes one (N,C,H,W) image")
    inp, out = inputs[0], outputs[0]
    if inp.type != "tensor(float)" or len(inp.shape) != 4:
        raise OnnxGraphError(f"the graph's input is {inp.type} of shape {inp.shape}, not an (N,C,H,W) float image")
    if out.type != "tensor(float)" or (out.shape and len(out.shape) != 4):
        raise OnnxGraphError(f"the graph's output is {out.type} of shape {out.shape}, not an (N,C,H,W) float image")
    channels = _dim(inp.shape[1]) or 3
    if channels not in (1, 3):
        raise OnnxGraphError(f"the graph's input has {channels} channels; images have 1 or 3 (NCHW layout)")
    h, w = _dim(inp.shape[2]), _dim(inp.shape[3])
    if (h is None) != (w is None):
        raise OnnxGraphError(f"the graph's input fixes one side only ({inp.shape}); fixed or dynamic size is supported")
    return inp.name, out.name, channels, (h, w) if h else None, _dim(inp.shape[0]) == 1


def _probe_image(channels: int, h: int, w: int) -> np.ndarray:
    """``(1,C,h,w)`` float32 in [0,1]: a bundled photo resized, or a smooth pattern without one."""
    try:
        from imgtrans.imageio import read_image, resize_pixels
        from imgtrans.paths import resources_dir

        pix = read_image(resources_dir() / "samples" / "mars_nasa.jpg").pixels
        side = min(pix.shape[:2])
        pix = resize_pixels(pix[:side, :side, :3], h, w)
    except Exception:  # noqa: BLE001 - an installation without samples still detects, less well
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        pix = np.stack([(yy / h), (xx / w), 0.5 + 0.4 * np.sin(yy / 3) * np.cos(xx / 5)], axis=2)
    if channels == 1:
        pix = pix.mean(axis=2, keepdims=True)
    return np.ascontiguousarray(pix.transpose(2, 0, 1)[None].astype(np.float32))


def _run(module: OnnxGraph, arr: np.ndarray) -> np.ndarray:
    return module(torch.from_numpy(arr)).numpy()


def measure_scale(module: OnnxGraph, channels: int, size: tuple[int, int]) -> int:
    """Output/input size ratio from one probe of ``size``; raises for a non-integer or uneven one."""
    h, w = size
    try:
        y = _run(module, _probe_image(channels, h, w))
    except Exception as exc:  # noqa: BLE001
        raise OnnxGraphError(f"the graph does not run on a {w}x{h} image ({str(exc).splitlines()[0][:160]})") from None
    oh, ow = y.shape[-2], y.shape[-1]
    if y.ndim != 4 or oh % h or ow % w or oh // h != ow // w:
        raise OnnxGraphError(f"the graph turns a {w}x{h} image into shape {tuple(y.shape)}, "
                             "not an image scaled by a whole number")
    return oh // h


def measure_multiple(module: OnnxGraph, channels: int, scale: int) -> int:
    """The smallest of :data:`MULTIPLES` ``m`` for which a ``(64+m)``-pixel input gives exactly
    ``scale`` times as many output pixels (down/up-sampling networks need sides divisible by it)."""
    for m in MULTIPLES:
        n = PROBE + m
        try:
            y = _run(module, _probe_image(channels, n, n))
        except Exception:  # noqa: BLE001 - shapes it cannot take: try the next multiple
            continue
        if tuple(y.shape[-2:]) == (n * scale, n * scale):
            return m
    return MULTIPLES[-1]


def guess_range(module: OnnxGraph, channels: int, size: tuple[int, int], scale: int) -> tuple[float, float]:
    """The value range the graph most likely works in (see the module docstring for how and its limits)."""
    import torch.nn.functional as F

    h, w = size
    img = _probe_image(channels, h, w)
    ref = img
    if scale > 1:
        ref = F.interpolate(torch.from_numpy(img), scale_factor=scale, mode="bicubic", align_corners=False).numpy()
    errors = []
    for lo, hi in RANGES.values():
        try:
            y = _run(module, img * (hi - lo) + lo)
            z = (y.astype(np.float64) - lo) / (hi - lo)
            err = float(np.mean((z[:, : ref.shape[1]] - ref) ** 2)) if np.isfinite(z).all() else float("inf")
        except Exception:  # noqa: BLE001
            err = float("inf")
        errors.append(err)
    best = 0
    for i in range(1, len(errors)):
        if errors[best] > CLOSE_ENOUGH and errors[i] * 2 < errors[best]:
            best = i
    log.debug("ONNX range errors %s -> %s", errors, list(RANGES)[best])
    return list(RANGES.values())[best]


def graph_metadata(session) -> dict[str, str]:
    """The graph's ``metadata_props`` (plus producer and description) as strings."""
    meta = session.get_modelmeta()
    out = {str(k): str(v) for k, v in (meta.custom_metadata_map or {}).items()}
    if meta.producer_name:
        out.setdefault("producer", meta.producer_name)
    if meta.description:
        out.setdefault("graph_description", meta.description)
    return out


def load_onnx(path: str | Path, given: Mapping[str, str] | None = None) -> tuple[ArchSpec, nn.Module, dict[str, Any]]:
    """``(spec, module, facts)`` for an ONNX file. ``given`` (the import sidecar, or what the user
    passed) overrides the graph's metadata, which overrides detection. ``facts`` holds what was
    decided (``value_range`` name, ``scale``, ``size_multiple``, ``input_size``, ``channels``,
    ``out_channels``) and the graph's metadata. Raises :class:`OnnxGraphError` (one line)."""
    path = Path(path)
    session = _session(path)
    in_name, out_name, channels, fixed, batch_one = _graph(session)
    module = OnnxGraph(session, in_name, out_name, batch_one).eval()
    module.stored_parameters = count_graph_parameters(path)
    gmeta = graph_metadata(session)
    meta = {**gmeta, **{k: str(v) for k, v in (given or {}).items() if v not in (None, "")}}

    if meta.get("scale"):
        try:
            scale = int(meta["scale"])
        except ValueError:
            raise OnnxGraphError(f"scale {meta['scale']!r} is not a whole number") from None
        if not 1 <= scale <= 16:
            raise OnnxGraphError(f"scale must be between 1 and 16, not {scale}")
    else:
        scale = measure_scale(module, channels, fixed or (PROBE, PROBE))
    if fixed:
        multiple = 1
    elif meta.get("size_multiple"):
        multiple = max(1, int(meta["size_multiple"]))
    else:
        multiple = measure_multiple(module, channels, scale)
    probe_size = fixed or (PROBE, PROBE)
    named = next((meta[k] for k in RANGE_KEYS if meta.get(k)), None)
    value_range = parse_range(named) if named else guess_range(module, channels, probe_size, scale)
    try:
        probe = _run(module, _probe_image(channels, *probe_size))
    except Exception as exc:  # noqa: BLE001
        raise OnnxGraphError(f"the graph does not run on a {probe_size[1]}x{probe_size[0]} image "
                             f"({str(exc).splitlines()[0][:160]})") from None
    if probe.ndim != 4 or tuple(probe.shape[-2:]) != (probe_size[0] * scale, probe_size[1] * scale):
        raise OnnxGraphError(f"the graph turns a {probe_size[1]}x{probe_size[0]} image into shape "
                             f"{tuple(probe.shape)}, not one scaled x{scale}")
    out_channels = int(probe.shape[1])
    if out_channels not in (1, 3):
        raise OnnxGraphError(f"the graph's output has {out_channels} channels, not an image's 1 or 3")

    spec = ArchSpec(
        name=ARCH,
        task="sr" if scale > 1 else str(meta.get("task") or "style"),
        build=_not_buildable,
        detect=lambda sd: None,
        default_hparams={},
        scale=lambda hp: scale,
        size_multiple=lambda hp: multiple,
        min_size=lambda hp: max(multiple, 32) if not fixed else 1,
        input_size=lambda hp: fixed,
        receptive_radius=lambda hp: None,
        execution="tiles" if fixed else "whole_if_fits",
        half_ok=False,
        value_range=value_range,
        native_backend="onnx",
        foreign=True,
    )
    facts = {
        "value_range": range_name(value_range), "scale": scale, "size_multiple": multiple,
        "input_size": list(fixed) if fixed else None, "channels": channels, "out_channels": out_channels,
        "graph_metadata": gmeta,
    }
    return spec, module, facts


def count_graph_parameters(path: str | Path) -> int | None:
    """Weights stored in the graph (sum of its initializers' sizes), ``None`` without the ``onnx`` package."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001
        return None
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def describe_facts(facts: Mapping[str, Any]) -> str:
    size = facts.get("input_size")
    return (f"ONNX graph (x{facts['scale']}, range {facts['value_range']}, "
            f"{'fixed ' + 'x'.join(str(v) for v in reversed(size)) + ' input, tiled' if size else 'any size'}"
            f"{', sides multiple of ' + str(facts['size_multiple']) if facts.get('size_multiple', 1) > 1 else ''})")


def _not_buildable(hp: dict[str, Any]) -> nn.Module:
    raise TypeError("an ONNX graph is loaded from its file, not built from hyper-parameters")
