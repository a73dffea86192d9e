"""The model catalog: bundled models listed in ``resources/models.toml`` plus the user's own
(trained or imported) ``.safetensors`` files, and imported ONNX graphs (``.onnx`` with a ``.onnx.json``
record), in the user models folder.

Reading the catalog never imports torch: user files are described from their safetensors JSON
header, so ``imgtrans models`` is instant.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imgtrans.paths import resources_dir, user_models_dir

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".onnx")

# A style model's picture of the painting(s) it learnt from, in its own metadata (written by
# imgtrans.training.style_thumbnail): JSON {"mime": "image/jpeg" | "image/png", "width", "height",
# "data": base64 of the encoded image}, and one line naming the painting(s) and their licence.
THUMBNAIL_KEY = "style_thumbnail"
CREDIT_KEY = "style_credit"
THUMBNAIL_MAX_BYTES = 256 * 1024  # encoded; ours are 5-15 kB
THUMBNAIL_MAX_SIDE = 1024
_THUMBNAIL_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


class CatalogError(Exception):
    """A catalog problem the user can fix; ``str(e)`` is one clear line (or a short list)."""


@dataclass
class CatalogEntry:
    id: str
    name: str
    task: str
    scale: int
    arch: str
    path: Path
    description: str = ""
    licence: str = ""
    source: str = "bundled"  # "bundled" | "user"
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no torch).

    Raises ``ValueError`` with one line for files that are not safetensors."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise ValueError("not a safetensors file (too short)")
        n = int.from_bytes(head, "little")
        size = path.stat().st_size
        if n <= 1 or n > min(size - 8, 100 * 1024 * 1024):
            raise ValueError(f"not a safetensors file (header size {n} does not fit the file)")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("not a safetensors file (header is not JSON)") from None
        except RecursionError:
            raise ValueError("not a safetensors file (header nests too deeply)") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (header is not a JSON object)")
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def update_safetensors_metadata(path: str | os.PathLike, updates: Mapping[str, str | None]) -> Path:
    """Set (or, for ``None``, remove) keys of a safetensors file's ``__metadata__`` without touching its
    tensors: the JSON header is rewritten (padded with spaces to a multiple of 8 bytes, as the format
    allows) and the tensor bytes are copied as they are; the file is replaced atomically (no torch).

    Raises ``ValueError`` (one line) for a file that is not safetensors, ``OSError`` or
    :class:`imgtrans.imageio.ImageWriteError` when it cannot be written."""
    from imgtrans.imageio import write_bytes_atomic

    path = Path(path)
    read_safetensors_metadata(path)  # the checks: a readable header of the right size
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    for key, value in updates.items():
        if value is None:
            meta.pop(key, None)
        elif not isinstance(value, str):
            raise ValueError(f"metadata value of {key!r} must be a string, not {type(value).__name__}")
        else:
            meta[key] = value
    header = {"__metadata__": meta, **{k: v for k, v in header.items() if k != "__metadata__"}}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    write_bytes_atomic(path, len(text).to_bytes(8, "little") + text + data[8 + n :])
    return path


def onnx_sidecar(path: str | os.PathLike) -> Path:
    """Where an imported ONNX graph's record (its metadata: name, licence, range, scale...) lives:
    ``<file>.onnx.json`` beside it. ONNX files carry no metadata we can read without onnx itself."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_model_metadata(path: str | os.PathLike) -> dict[str, str]:
    """A model file's metadata as strings, without torch: a safetensors header, an ONNX graph's
    sidecar record (``{}`` when it has none), ``{}`` for other formats. Raises ``ValueError`` (one
    line) for a file or record that cannot be read as such."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors_metadata(path)
    if suffix == ".onnx":
        side = onnx_sidecar(path)
        if not side.is_file():
            return {}
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ValueError(f"{side.name} is not a JSON record") from None
        if not isinstance(data, dict):
            raise ValueError(f"{side.name} is not a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    return {}


def bundled_models_file() -> Path:
    """The bundled catalog, ``models.toml`` in :func:`imgtrans.paths.resources_dir`."""
    return resources_dir() / "models.toml"


def _bundled(resources: Path, problems: list[tuple[Path, str]] | None = None) -> list[CatalogEntry]:
    """The models of ``resources/models.toml`` whose weight file is there; a listed file that is
    missing (an installation that left the weights out) is appended to ``problems``, when given."""
    toml_path = resources / "models.toml"
    if not toml_path.is_file():
        return []
    with open(toml_path, "rb") as fh:
        data = tomllib.load(fh)
    entries = []
    for item in data.get("model", []):
        if not (resources / item["file"]).is_file():
            if problems is not None:
                problems.append((resources / item["file"], "bundled model file is missing from this installation"))
            continue
        entries.append(
            CatalogEntry(
                id=item["id"],
                name=item.get("name", item["id"]),
                task=item["task"],
                scale=int(item.get("scale", 1)),
                arch=item.get("arch", ""),
                path=resources / item["file"],
                description=item.get("description", ""),
                licence=item.get("licence", ""),
                source="bundled",
                extra={k: str(v) for k, v in item.items()
                       if k not in {"id", "name", "task", "scale", "arch", "file", "description", "licence"}},
            )
        )
    return entries


def _user(folder: Path, problems: list[tuple[Path, str]] | None = None) -> list[CatalogEntry]:
    """User models; a broken or hostile file (or an unreadable folder) is left out, never fatal.
    Files left out are appended to ``problems`` with the reason, when given."""
    try:
        paths = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:
        if problems is not None:
            problems.append((folder, exc.strerror or str(exc)))
        return []
    entries = []
    for path in paths:
        try:
            if path.suffix.lower() not in (".safetensors", ".onnx") or not path.is_file():
                continue
            if path.suffix.lower() == ".onnx" and not onnx_sidecar(path).is_file():
                raise ValueError("ONNX file without its record: add it with `imgtrans import FILE`")
            meta = read_model_metadata(path)
            entries.append(
                CatalogEntry(
                    id=meta.get("id") or path.stem,
                    name=meta.get("name") or path.stem,
                    task=meta.get("task", "unknown"),
                    scale=int(meta.get("scale", "1") or 1),
                    arch=meta.get("arch", ""),
                    path=path,
                    description=meta.get("description", ""),
                    licence=meta.get("licence", ""),
                    source="user",
                )
            )
        except (OSError, ValueError) as exc:  # one bad file must not hide the others
            if problems is not None:
                problems.append((path, exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)))
    return entries


def takes_noise_input(meta: dict[str, str]) -> bool | None:
    """Whether a model with this safetensors metadata has a noise-level (strength) input, from its
    ``hparams``; ``None`` when the metadata does not say."""
    try:
        hp = json.loads(meta["hparams"])
    except (KeyError, ValueError):
        return None
    return bool(hp.get("noise_map", False)) if isinstance(hp, dict) else None


@dataclass(frozen=True)
class StyleThumbnail:
    """The painting(s) a style model learnt from, as its file carries them: ``data`` is the encoded
    image (``mime`` ``image/jpeg`` or ``image/png``, ``width`` x ``height`` pixels), ``credit`` one
    line naming the painting(s) (may be empty)."""

    data: bytes
    mime: str
    width: int
    height: int
    credit: str = ""


def parse_style_thumbnail(meta: Mapping[str, str]) -> StyleThumbnail | None:
    """The thumbnail in a model's metadata, or ``None`` when it has none or a malformed one (a
    third-party file may hold anything: a bad record is ignored, never an error). The image data
    is checked to start as its format does and to be small; decoding it is the caller's."""
    raw = meta.get(THUMBNAIL_KEY)
    if not raw or len(raw) > THUMBNAIL_MAX_BYTES * 4 // 3 + 1024:
        return None
    try:
        rec = json.loads(raw)
        mime, width, height = rec["mime"], int(rec["width"]), int(rec["height"])
        data = base64.b64decode(rec["data"], validate=True)
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if (mime not in _THUMBNAIL_MAGIC or not data.startswith(_THUMBNAIL_MAGIC[mime]) or len(data) > THUMBNAIL_MAX_BYTES
            or not (0 < width <= THUMBNAIL_MAX_SIDE and 0 < height <= THUMBNAIL_MAX_SIDE)):
        return None
    return StyleThumbnail(data, mime, width, height, " ".join(str(meta.get(CREDIT_KEY, "")).split()))


def style_thumbnail(entry: CatalogEntry | str | os.PathLike) -> StyleThumbnail | None:
    """The thumbnail of the painting a style model learnt from, read from its file's header when
    asked (a catalog entry or a model file); ``None`` when it has none or cannot be read."""
    path = entry.path if isinstance(entry, CatalogEntry) else Path(entry)
    try:
        return parse_style_thumbnail(read_model_metadata(path))
    except (OSError, ValueError):
        return None


def style_credit(entry: CatalogEntry | str | os.PathLike) -> str:
    """The line naming the painting(s) a style model learnt from, ``""`` when its file has none."""
    path = entry.path if isinstance(entry, CatalogEntry) else Path(entry)
    try:
        return " ".join(read_model_metadata(path).get(CREDIT_KEY, "").split())
    except (OSError, ValueError):
        return ""


def style_strength_supported(entry: CatalogEntry | None) -> bool:
    """Whether the style-strength setting (``ConvertOptions.style_strength``) applies to a model: a
    style model whose generator has the input skip (it makes a change to the photo that can be scaled;
    every bundled style model has it). Read from the header (no torch). A ``supports_strength`` the
    entry itself states, when the core gives one, decides instead."""
    if entry is None:
        return False
    stated = getattr(entry, "supports_strength", None)
    if stated is not None:
        return bool(stated)
    if entry.task != "style":
        return False
    try:
        hp = json.loads(read_model_metadata(entry.path).get("hparams") or "{}")
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(hp, dict) and hp.get("input_skip") is True


def readable_metadata(meta: Mapping[str, str]) -> dict[str, str]:
    """Metadata to show a person (``imgtrans info``): a style thumbnail's image data is replaced by
    what it is (``"JPEG 160x126, 9.1 kB"``); everything else as it is."""
    out = dict(meta)
    if THUMBNAIL_KEY in out:
        thumb = parse_style_thumbnail(out)
        out[THUMBNAIL_KEY] = (f"{thumb.mime.split('/')[1].upper()} {thumb.width}x{thumb.height}, "
                              f"{len(thumb.data) / 1000:.1f} kB" if thumb else "present but not readable")
    return out


def declared_edge_context(meta: dict[str, str]) -> int | None:
    """The mirrored border (pixels per side) a weight file's metadata declares, ``0`` for a file that
    is not ours (third-party weights run without one), ``None`` for one of ours written before the
    key existed (its family's border applies; :func:`imgtrans.weights.load_model` decides).
    Raises ``ValueError`` for a value that is not a whole number from 0 to 1024."""
    if "edge_context" in meta:
        try:
            value = int(str(meta["edge_context"]).strip())
        except ValueError:
            raise ValueError("metadata 'edge_context' is not a whole number") from None
        if not 0 <= value <= 1024:
            raise ValueError(f"metadata 'edge_context' must be between 0 and 1024, not {value}")
        return value
    if meta.get("format", "").startswith("imgtrans/") and "imported_from" not in meta:
        return None
    return 0


def border_label(pixels: int | None) -> str:
    """How a model's edge border reads in the app and ``imgtrans info``."""
    if pixels is None:
        return "its architecture's default (an imgtrans file from before borders were recorded)"
    if pixels == 0:
        return "none: the network's own padding, as its authors ran it"
    return f"{pixels} px mirrored on each side, cut from the output"


def model_problems() -> list[tuple[Path, str]]:
    """``(file, reason)`` for each bundled model whose file is missing and each file in the user
    models folder that cannot be read as a model: what :func:`list_models` leaves out."""
    problems: list[tuple[Path, str]] = []
    _bundled(resources_dir(), problems)
    _user(user_models_dir(), problems)
    return problems


def list_models(task: str | None = None) -> list[CatalogEntry]:
    """Bundled models first (catalog order), then user models (by file name). A user model whose
    id clashes with an earlier one is listed under ``user/<id>``."""
    seen: set[str] = set()
    out: list[CatalogEntry] = []
    for entry in _bundled(resources_dir()) + _user(user_models_dir()):
        if entry.id.lower() in seen:
            entry.id = f"user/{entry.id}"
        seen.add(entry.id.lower())
        if task is None or entry.task == task:
            out.append(entry)
    return out


def recorded_id(found: CatalogEntry | Path, meta: dict[str, str]) -> str:
    """The model id an output made with ``found`` (what :func:`find_model` returned; ``meta``: its
    safetensors metadata) records, as :func:`imgtrans.weights.load_found` names the loaded model:
    a bundled model by its catalog id, a user model by its ``id`` metadata or catalog id, a weight
    file by its ``id`` metadata or its path as given."""
    if isinstance(found, CatalogEntry):
        return found.id if found.source == "bundled" else (meta.get("id") or found.id)
    return meta.get("id") or str(found)


def find_model(ref: str) -> CatalogEntry | Path:
    """A catalog entry by id (case-insensitive; a CycleGAN pair's bare name picks its ``-a2b``
    direction), a user model by its file name without ``.safetensors``, or an existing weight file path.

    Raises :class:`CatalogError` naming the available models when ``ref`` is neither."""
    entries = list_models()
    for wanted in (ref.lower(), f"{ref.lower()}-a2b"):  # a style pair's name means its A->B direction
        for entry in entries:
            if entry.id.lower() == wanted:
                return entry
    for entry in entries:  # a user model under the name its file has in the models folder
        if entry.source == "user" and entry.path.stem.lower() == ref.lower():
            return entry
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.suffix.lower() in WEIGHT_SUFFIXES or os.sep in ref:
        raise CatalogError(f"model file not found: {ref}")
    names = ", ".join(e.id for e in entries) or "(none installed)"
    close = difflib.get_close_matches(ref.lower(), [e.id.lower() for e in entries], n=1, cutoff=0.75)
    hint = f" (did you mean {next(e.id for e in entries if e.id.lower() == close[0])!r}?)" if close else ""
    raise CatalogError(f"unknown model {ref!r}{hint}; available: {names}")


_DATA_KEYS = ("data", "domain_a", "domain_b")  # training_data keys that describe one data set each


def metadata_values(meta: dict[str, str]) -> dict:
    """Safetensors metadata (strings only, by the format) with the values that hold JSON objects,
    arrays, numbers or booleans given as those values: for ``imgtrans info --json``. Free text
    (names, descriptions, licences) stays a string even when it reads as a number; a style thumbnail is
    summarised (:func:`readable_metadata`)."""
    out: dict = {}
    for key, value in readable_metadata(meta).items():
        out[key] = value
        if key in ("id", "name", "description", "licence", THUMBNAIL_KEY, CREDIT_KEY) or not value:
            continue
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, (dict, list, bool)) or (isinstance(parsed, (int, float)) and json.dumps(parsed) == value):
            out[key] = parsed
    return out


def provenance(meta: dict[str, str], entry: CatalogEntry | None = None) -> dict:
    """Where a model's weights come from and under which licences, from its metadata (and its
    catalog entry): ``{"origin", "weights_licence", "training_data_licences"}``, all strings except
    the last, which maps each training set to ``{licence: files}`` when the weights record it (else a
    string). A file that imgtrans did not train says so, and its licence is unknown unless its
    metadata names one."""
    licence = meta.get("licence") or (entry.licence if entry else "")
    ours = meta.get("format", "").startswith("imgtrans/") and ("trainer" in meta or "recipe" in meta)
    if meta.get("imported_from"):
        origin = f"third-party file, imported from {meta['imported_from']}"
        if meta.get("imported_sha256"):
            origin += f" (sha256 {meta['imported_sha256']})"
    elif entry is not None and entry.source == "bundled":
        origin = f"bundled with imgtrans, trained by {meta.get('trainer') or meta.get('recipe') or 'imgtrans'}"
    elif ours:
        origin = f"trained with {meta.get('trainer') or meta.get('recipe')}"
    else:
        origin = "third-party file, origin not recorded"
    weights, _, data_text = licence.partition(";")
    if not licence:
        weights = "not recorded" if ours else "unknown (third-party file: check where it came from)"
    data: dict | str
    try:
        recorded = json.loads(meta.get("training_data") or "null")
    except (ValueError, RecursionError):
        recorded = meta.get("training_data")
    if isinstance(recorded, dict):
        data = {}
        for key in _DATA_KEYS:
            d = recorded.get(key)
            if isinstance(d, dict):
                label = (d.get("folder", key) if d.get("set", d.get("folder")) == d.get("folder")
                         else f"{d['set']}/{d.get('folder')}")
                data[label] = d.get("licences") or "not recorded"
        data = data or "not recorded"
    elif data_text.strip():
        data = data_text.strip()
    elif isinstance(recorded, str) and recorded:
        data = f"{recorded} (licences not recorded)"
    else:
        data = "not recorded" if ours else "unknown"
    return {"origin": origin, "weights_licence": weights.strip(), "training_data_licences": data}


def data_licences_text(data: dict | str) -> str:
    """:func:`provenance`'s ``training_data_licences`` as one line: ``"space-photos: public-domain 181,
    CC-BY-SA-4.0 62 files; vangogh: GPL-3 8 files"``."""
    if isinstance(data, str):
        return data
    return "; ".join(f"{name}: " + (", ".join(f"{lic} {n}" for lic, n in counts.items()) + " files"
                                    if isinstance(counts, dict) else str(counts))
                     for name, counts in data.items())
