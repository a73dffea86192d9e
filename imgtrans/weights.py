"""Weight files: safetensors with metadata, safe loading, architecture detection.

Weights are data, never code. ``.safetensors`` is the format we write. ``.pth``/``.pt``/``.ckpt``
files are read with ``torch.load(weights_only=True)`` only: a file that needs full unpickling is
refused, never executed. Third-party super-resolution/restoration weights that none of our families
recognise go to ``spandrel`` when it is installed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgtrans import __version__
from imgtrans.archs import ARCHS, ArchSpec, get_arch
from imgtrans.atomic import replacing
from imgtrans.catalog import declared_edge_context, read_safetensors_metadata

FORMAT_TAG = "imgtrans/1"
DEFAULT_NOISE_LEVEL = 25.0  # sigma on 0-255 for denoisers with a strength input, when none is given
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "netG", "generator", "net", "G")
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class ModelLoadError(Exception):
    """A weight file could not be used; ``str(e)`` is one line naming the file and the reason."""


@dataclass
class LoadedModel:
    """A network ready to run, with what the engine needs to know about it.

    ``spec`` is the network's :class:`~imgtrans.archs.base.ArchSpec` (its family's descriptor, or one
    made for a spandrel model); the other fields are its values for this network's hyper-parameters
    and metadata. ``run`` takes ``(B,in_channels,H,W)`` float in [0,1] and returns
    ``(B,out_channels,H*scale,W*scale)`` float in [0,1] (clamped); ``H`` and ``W`` must be multiples
    of ``size_multiple``.
    """

    module: nn.Module
    spec: ArchSpec
    arch: str
    task: str
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int = 1
    min_size: int = 1
    execution: str = "tiles"
    half_ok: bool = False
    receptive_radius: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    takes_noise_level: bool = False
    hparams: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    source: Path | None = None
    bytes_per_pixel: int = 2048
    edge_context: int = 0  # mirrored border added by imgtrans.tiling.run_model (from our weights' metadata)
    input_size: tuple[int, int] | None = None  # the exact (H, W) a fixed-size network runs on; tiles are padded to it
    supports_strength: bool = False  # with_strength applies (ArchSpec.set_strength)

    @property
    def tile_safe(self) -> bool:
        """Independent tiles give the same result (a local network)."""
        return self.execution == "tiles"

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> LoadedModel:
        self.module.to(device=device, dtype=dtype)
        return self

    def to_model_range(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] -> the network's input range."""
        lo, hi = self.value_range
        return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo

    def from_model_range(self, y: torch.Tensor) -> torch.Tensor:
        """The network's output range -> [0,1], clamped."""
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 1.0):
            y = (y - lo) / (hi - lo)
        return y.clamp(0.0, 1.0)

    def sigma(self, noise_level: float | None) -> float | None:
        """The noise level (sigma on 0-255, default 25) on the [0,1] scale the forward takes, or
        ``None`` for a network that takes none."""
        if not self.takes_noise_level:
            return None
        return (noise_level if noise_level is not None else DEFAULT_NOISE_LEVEL) / 255.0

    def forward(self, module: nn.Module, inp: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        """The architecture's forward (:attr:`ArchSpec.forward`) of ``module`` (this network, or a
        copy of it in another memory format) on ``inp`` in the network's value range."""
        return self.spec.forward(module, inp, self.sigma(noise_level))

    @torch.inference_mode()
    def run(self, x: torch.Tensor, noise_level: float | None = None) -> torch.Tensor:
        """``(B,C,H,W)`` float in [0,1] -> output float in [0,1]. ``noise_level`` is sigma on the 0-255
        scale, used by denoisers that take a noise map."""
        x = x.to(device=self.device, dtype=self.dtype)
        out = self.forward(self.module, self.to_model_range(x), noise_level)
        return self.from_model_range(out.float())

    def with_strength(self, s: float) -> LoadedModel:
        """A copy whose network makes its change to the input ``s`` times as strong (0 = the input
        back, 1 = this model; :attr:`ArchSpec.set_strength`); ``self`` is left as it is. Raises
        ``ValueError`` for a network without the setting or ``s`` outside [0, 1]."""
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"strength must be between 0 and 1, not {s}")
        if s == 1.0:
            return self
        if not self.supports_strength or self.spec.set_strength is None:
            raise ValueError(f"{self.metadata.get('id') or self.arch} has no strength setting")
        module = copy.deepcopy(self.module)
        self.spec.set_strength(module, s)
        return dataclasses.replace(self, module=module)

    def describe(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        return f"{self.arch} ({self.task}, x{self.scale}{', ' + hp if hp else ''})"


# ----------------------------------------------------------------------------------------- saving


def save_model(
    path: str | os.PathLike,
    module: nn.Module,
    arch: str,
    hparams: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``module``'s weights to ``path`` as safetensors, atomically, with metadata.

    Metadata always holds ``format``, ``arch``, ``hparams`` (JSON), ``task``, ``scale``, ``date``,
    ``imgtrans_version`` and ``edge_context`` (the mirrored border the app runs the network with: the
    family's :attr:`~imgtrans.archs.base.ArchSpec.edge_context` unless ``metadata`` gives one, as an
    import of third-party weights does with 0); ``metadata`` adds e.g. ``name``, ``description``, ``training_data``,
    ``licence``, ``steps``, ``metric``. Non-string values are stored as JSON. The file is written
    atomically (:func:`imgtrans.atomic.replacing`, parent folders created); a failure to write is an
    :class:`~imgtrans.atomic.AtomicWriteError` (an OSError).
    """
    from safetensors.torch import save_file

    spec = get_arch(arch)
    hp = spec.hparams(hparams)
    meta: dict[str, str] = {
        "format": FORMAT_TAG,
        "arch": arch,
        "hparams": json.dumps(hp, sort_keys=True),
        "task": spec.task,
        "scale": str(spec.scale(hp)),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "imgtrans_version": __version__,
        "edge_context": str(int(spec.edge_context(hp))),
    }
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    path = Path(path)
    with replacing(path, make_parents=True) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


# ----------------------------------------------------------------------------------------- reading


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = read_safetensors_metadata(path)
    except ValueError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{path.name}: corrupt safetensors file ({first})") from None
    return tensors, meta


def _read_pickle_checkpoint(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch bolds parts of it with terminal codes
        # torch's advice (weights_only=False) is not for us; what the file wants to import is worth saying
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        detail = f"it imports {found.group(1)}" if found else ""
        raise ModelLoadError(
            f"{path.name}: refused: this checkpoint needs full unpickling, which can run arbitrary code; "
            "only plain tensor checkpoints are loaded (convert it to .safetensors in a trusted environment)"
            + (f" [{detail[:160]}]" if detail else "")
        ) from None
    # a corrupt pickle stream can fail with almost any error (IndexError, TypeError, struct.error...)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{path.name}: not a readable PyTorch checkpoint ({first[:200]})") from None
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path.name}: checkpoint holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def unwrap_state_dict(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Find the tensor dict inside common checkpoint containers (``{"params_ema": ...}`` etc.)."""
    current: Mapping[str, Any] = obj
    for _ in range(4):
        if current and all(isinstance(v, torch.Tensor) for v in current.values()):
            return dict(current)
        for key in CONTAINER_KEYS:
            inner = current.get(key)
            if isinstance(inner, Mapping) and inner:
                current = inner
                break
        else:
            break
    tensors = {k: v for k, v in current.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError("no tensors found in the checkpoint")
    return tensors


def _check_finite(name: str, sd: Mapping[str, torch.Tensor]) -> None:
    for key, value in sd.items():
        if value.is_floating_point() and not torch.isfinite(value.float()).all():
            raise ModelLoadError(f"{name}: weights contain NaN or infinite values (tensor {key!r})")


def _check_declared_hparams(spec: ArchSpec, hp: Mapping[str, Any], sd: Mapping[str, torch.Tensor], name: str) -> None:
    """Metadata may lie: every hyper-parameter the tensors reveal must agree with it (checked before
    anything is built, so a claim of a gigantic network costs nothing)."""
    found = spec.detect(sd)
    if found is None:
        return  # the strict shape check after building reports the mismatch
    wrong = [f"{k}: metadata {hp[k]!r}, weights {v!r}" for k, v in found.items() if k in hp and hp[k] != v]
    if wrong:
        raise ModelLoadError(f"{name}: weights do not fit {spec.name} as its metadata describes it "
                             f"({'; '.join(wrong)})")


def _build_ours(spec: ArchSpec, hp: Mapping[str, Any], sd: Mapping[str, torch.Tensor], name: str) -> nn.Module:
    _check_declared_hparams(spec, hp, sd, name)
    try:
        with torch.device("meta"):  # shapes only: no memory, no time
            probe = spec.build(dict(hp))
    except (TypeError, ValueError, RuntimeError, MemoryError) as exc:
        raise ModelLoadError(f"{name}: invalid hyper-parameters for {spec.name} {dict(hp)}: "
                             f"{str(exc).splitlines()[0][:160]}") from None
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in sd.items()}
    if expected != given:
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        shapes = [k for k in expected.keys() & given.keys() if expected[k] != given[k]]
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                  else f"{shapes[0]}: file {given[shapes[0]]}, model {expected[shapes[0]]}")
        raise ModelLoadError(f"{name}: weights do not fit {spec.name} with {dict(hp)} ({detail})")
    module = spec.build(dict(hp))
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise ModelLoadError(f"{name}: weights do not fit {spec.name} with {dict(hp)} ({detail[:240]})") from None
    return module.eval()


def _edge_context(spec: ArchSpec, hp: Mapping[str, Any], meta: Mapping[str, str], name: str) -> int:
    """The mirrored border a model runs with (:func:`~imgtrans.catalog.declared_edge_context`): what
    our weights' metadata says; for files our trainer wrote before that key existed, the family's
    border; none for everything else (third-party weights run as their authors ran them). Rounded up
    to the size multiple."""
    try:
        value = declared_edge_context(dict(meta))
    except ValueError as exc:
        raise ModelLoadError(f"{name}: {exc}") from None
    if value is None:
        value = int(spec.edge_context(hp))
    m = max(1, int(spec.size_multiple(hp)))
    return -(-value // m) * m


def _loaded(spec: ArchSpec, hp: Mapping[str, Any], module: nn.Module, meta: dict[str, str], path: Path | None,
            in_ch: int, out_ch: int, edge_context: int) -> LoadedModel:
    return LoadedModel(
        module=module,
        spec=spec,
        arch=spec.name,
        task=spec.task,
        scale=int(spec.scale(hp)),
        in_channels=in_ch,
        out_channels=out_ch,
        size_multiple=max(1, int(spec.size_multiple(hp))),
        min_size=spec.smallest_input(hp),
        execution=spec.execution,
        half_ok=spec.half_ok,
        receptive_radius=spec.receptive_radius(hp),
        value_range=spec.value_range,
        takes_noise_level=bool(spec.takes_noise_level(hp)),
        hparams=dict(hp),
        metadata=meta,
        source=path,
        bytes_per_pixel=int(spec.bytes_per_pixel(hp)),
        edge_context=edge_context,
        input_size=spec.input_size(hp),
        supports_strength=spec.set_strength is not None and bool(spec.strength_ok(hp)),
    )


def _from_spec(spec: ArchSpec, hp: Mapping[str, Any], module: nn.Module, meta: dict[str, str],
               path: Path) -> LoadedModel:
    hp = spec.hparams(hp)
    in_ch = int(hp.get("in_ch", hp.get("channels", 3)))
    out_ch = int(hp.get("out_ch", hp.get("channels", 3)))
    return _loaded(spec, hp, module, meta, path, in_ch, out_ch, _edge_context(spec, hp, meta, path.name))


def _from_spandrel(sd: dict[str, torch.Tensor], meta: dict[str, str], path: Path) -> LoadedModel | None:
    from imgtrans.archs.foreign import load_foreign

    try:
        found = load_foreign(sd)
    except ValueError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    if found is None:
        return None
    spec, module, facts = found
    return _loaded(spec, {}, module, meta, path, facts["in_ch"], facts["out_ch"], 0)


def _from_onnx(path: Path) -> LoadedModel:
    """An ONNX graph (:mod:`imgtrans.archs.onnx_graph`), with what its import recorded (the sidecar)."""
    from imgtrans.archs.onnx_graph import OnnxGraphError, load_onnx
    from imgtrans.catalog import read_model_metadata

    try:
        meta = read_model_metadata(path)
        spec, module, facts = load_onnx(path, meta)
    except (OnnxGraphError, ValueError) as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    meta = {**{k: v for k, v in facts["graph_metadata"].items()
               if k in ("licence", "license", "author", "name", "description")},
            **meta}
    if "license" in meta and "licence" not in meta:
        meta["licence"] = meta["license"]
    meta.setdefault("value_range", facts["value_range"])
    hp = {k: facts[k] for k in ("value_range", "size_multiple", "input_size")}
    return _loaded(spec, hp, module, meta, path, facts["channels"], facts["out_channels"], 0)


def load_model(path: str | os.PathLike, *, arch: str | None = None) -> LoadedModel:
    """Load a weight file into a ready-to-run :class:`LoadedModel` (on the CPU, eval mode).

    The family comes from ``arch``, else the file's metadata, else detection from the state dict
    (our families in registry order, then spandrel). Metadata that lies about the architecture is
    caught by the strict shape check. Raises :class:`ModelLoadError` with one clear line.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ModelLoadError(f"{name}: no such model file" if not path.exists() else f"{name}: not a file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _from_onnx(path)
    if suffix == ".safetensors":
        sd, meta = _read_safetensors(path)
    elif suffix in PICKLE_SUFFIXES:
        sd, meta = unwrap_state_dict(_read_pickle_checkpoint(path)), {}
    else:
        raise ModelLoadError(f"{name}: unknown weight format {suffix or '(no extension)'!r} (use .safetensors, .pth "
                             "or .onnx)")
    if not sd:
        raise ModelLoadError(f"{name}: the file holds no tensors")
    _check_finite(name, sd)

    declared = arch or meta.get("arch")
    if declared:
        try:
            spec = get_arch(declared)
        except KeyError as exc:
            raise ModelLoadError(f"{name}: {exc.args[0]}") from None
        normalized = spec.normalize_keys(sd)
        hp: dict[str, Any] = {}
        if meta.get("hparams"):
            try:
                hp = json.loads(meta["hparams"])
            except (json.JSONDecodeError, RecursionError):
                raise ModelLoadError(f"{name}: metadata 'hparams' is not valid JSON") from None
            if not isinstance(hp, dict):
                raise ModelLoadError(f"{name}: metadata 'hparams' is not a JSON object")
        else:
            hp = spec.detect(normalized) or {}
        module = _build_ours(spec, hp, normalized, name)
        return _from_spec(spec, hp, module, meta, path)

    for spec in ARCHS:
        normalized = spec.normalize_keys(sd)
        hp = spec.detect(normalized)
        if hp is not None:
            module = _build_ours(spec, hp, normalized, name)
            return _from_spec(spec, hp, module, meta, path)
    loaded = _from_spandrel(sd, meta, path)
    if loaded is not None:
        return loaded
    from imgtrans.extras import install_hint, installed

    hint = ("" if installed("spandrel")
            else f"; other projects' architectures load through spandrel: {install_hint('spandrel')}")
    raise ModelLoadError(
        f"{name}: unrecognised architecture ({len(sd)} tensors; first keys: {', '.join(list(sd)[:3])}){hint}"
    )


def open_model(ref: str) -> tuple[LoadedModel, str]:
    """Load a model by catalog id or file path; returns it and a label for messages/provenance.

    Raises :class:`~imgtrans.catalog.CatalogError` (unknown id, listing the available ones) or
    :class:`ModelLoadError`."""
    from imgtrans.catalog import find_model

    return load_found(find_model(ref))


def load_found(found) -> tuple[LoadedModel, str]:
    """:func:`open_model` for what :func:`~imgtrans.catalog.find_model` already returned (a catalog
    entry or a file path), so a caller that looked the model up does not scan the catalog again."""
    from imgtrans.catalog import CatalogEntry

    if isinstance(found, CatalogEntry):
        model = load_model(found.path)
        if found.source == "bundled":  # the catalog names bundled models (outputs record these)
            model.metadata.update(id=found.id, name=found.name)
        else:
            model.metadata.setdefault("id", found.id)
            model.metadata.setdefault("name", found.name)
        return model, found.id
    return load_model(found), str(found)


def count_parameters(module: nn.Module) -> int:
    """The network's weights; a module whose weights live outside torch (an ONNX graph) says how many
    it holds in ``stored_parameters``."""
    stored = getattr(module, "stored_parameters", None)
    if stored is not None:
        return int(stored)
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "LoadedModel",
    "ModelLoadError",
    "count_parameters",
    "load_found",
    "load_model",
    "open_model",
    "read_safetensors_metadata",
    "save_model",
    "unwrap_state_dict",
]
