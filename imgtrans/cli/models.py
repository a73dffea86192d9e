"""The model commands: ``models`` (list), ``info`` (describe one), ``import`` and ``remove`` (your
own models), ``calibrate`` (time the backends for one)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgtrans.catalog import border_label
from imgtrans.cli.common import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, err
from imgtrans.cli_args import printable

EXECUTION_LABELS = {  # imgtrans.archs.base.EXECUTIONS, as `imgtrans info` says them
    "tiles": "local (exact tiles)",
    "stream": "whole-image statistics (exact band streaming)",
    "whole": "whole image in one piece",
    "whole_if_fits": "whole image when it fits in memory (tiling discouraged), else blended tiles",
}


def cmd_models(args: argparse.Namespace) -> int:
    from imgtrans.catalog import bundled_models_file, list_models, model_problems
    from imgtrans.paths import user_models_dir

    entries = list_models(args.task)
    for path, reason in model_problems():
        print(f"imgtrans: left out {printable(path)}: {printable(reason)}", file=sys.stderr)
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return EXIT_OK if entries else EXIT_FAILURES
    folder = printable(user_models_dir())
    if not entries:  # an installation without models is broken for every command but this one: say so, exit 1
        what = {"style": "style transfer ", "sr": "super-resolution ", "denoise": "denoising "}.get(args.task or "", "")
        print(f"No {what}models found.")
        if not any(e.source == "bundled" for e in list_models()):
            print(f"This installation has no bundled models (looked in {printable(bundled_models_file())}); "
                  "reinstall imgtrans from a wheel or checkout that includes resources/.")
        print(f"Train one with `imgtrans-train` (style pairs: --domain-a PHOTOS --domain-b PAINTINGS), "
              f"`imgtrans import FILE`, or put .safetensors model files in {folder}")
        return EXIT_FAILURES
    width = max(len(e.id) for e in entries)
    for task in ("style", "sr", "denoise"):
        group = [e for e in entries if e.task == task]
        if not group:
            continue
        print({"style": "Style transfer", "sr": "Super-resolution", "denoise": "Denoising"}[task])
        for e in group:
            scale = f"x{e.scale}" if e.scale > 1 else "  "
            print(f"  {e.id:<{width}}  {scale:>3}  {e.name}  [{e.source}]")
    others = [e for e in entries if e.task not in ("style", "sr", "denoise")]
    for e in others:
        print(f"  {e.id:<{width}}  ?    {e.name}  [{e.source}, task {e.task}]")
    print(f"Your models folder: {folder}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from imgtrans.model_import import import_model
    from imgtrans.weights import ModelLoadError

    if not args.file.expanduser().is_file():
        err(f"no such file: {args.file}")
        return EXIT_USAGE
    try:
        result = import_model(args.file.expanduser(), args.name, value_range=args.value_range, scale=args.scale)
    except ModelLoadError as exc:
        err(f"not imported: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        err(f"not imported: {exc.strerror or exc}")
        return EXIT_FAILURES
    print(result.summary())
    print(f"Stored as {printable(result.path)}; use it with: imgtrans convert ... -m {result.id}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from imgtrans.catalog import CatalogEntry, CatalogError, find_model
    from imgtrans.model_import import remove_model

    try:
        found = find_model(args.model)
    except CatalogError as exc:
        err(str(exc))
        return EXIT_USAGE
    if not isinstance(found, CatalogEntry):
        err(f"{args.model} is a file, not one of your models: `imgtrans remove` takes a model id from "
            "`imgtrans models`")
        return EXIT_USAGE
    try:
        remove_model(found)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        err(f"cannot remove {found.path}: {exc.strerror or exc}")
        return EXIT_FAILURES
    print(f"Removed {found.id} ({printable(found.path)})")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from imgtrans.catalog import (
        CatalogEntry,
        CatalogError,
        data_licences_text,
        find_model,
        metadata_values,
        provenance,
        read_model_metadata,
        readable_metadata,
    )
    from imgtrans.weights import ModelLoadError, count_parameters, load_model

    try:
        found = find_model(args.file)
    except CatalogError as exc:
        err(str(exc))
        return EXIT_USAGE
    args.file = found.path if isinstance(found, CatalogEntry) else found
    try:
        model = load_model(args.file)
    except ModelLoadError as exc:
        err(str(exc))
        return EXIT_USAGE
    meta = dict(model.metadata)
    if not meta:
        meta = read_model_metadata(args.file)
    origin = provenance(meta, found if isinstance(found, CatalogEntry) else None)
    report = {
        "file": str(args.file),
        "arch": model.arch,
        "task": model.task,
        "scale": model.scale,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "hparams": model.hparams,
        "parameters": count_parameters(model.module),
        "tile_safe": model.tile_safe,
        "execution": model.execution,
        "edge_context": model.edge_context,
        "half_ok": model.half_ok,
        **origin,
        "metadata": metadata_values(meta),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    print(f"{args.file}")
    rows = {
        "architecture": model.describe(),
        "parameters": f"{report['parameters']:,}",
        "channels": f"{model.in_channels} -> {model.out_channels}",
        "tiling": _tiling_label(model),
        "edge border": border_label(model.edge_context),
        "origin": origin["origin"],
        "weights licence": origin["weights_licence"],
        "data licences": data_licences_text(origin["training_data_licences"]),
    }
    meta = {k: v for k, v in readable_metadata(meta).items()
            if k not in ("hparams", "arch", "scale", "task", "edge_context")}
    width = max(len(k) for k in [*rows, *meta])
    for key, value in rows.items():
        print(f"  {key:<{width}}: {value}")
    for key in sorted(meta):
        print(f"  {key:<{width}}: {meta[key]}")
    return EXIT_OK


def _tiling_label(model) -> str:
    """How the engine splits images for ``model``, as ``imgtrans info`` says it."""
    label = EXECUTION_LABELS.get(model.execution, model.execution)
    if model.execution == "tiles" and model.receptive_radius is None:
        label = "local (blended tiles: receptive field unknown)"
    if model.input_size:
        label += f"; every tile padded to the network's fixed {model.input_size[1]}x{model.input_size[0]} input"
    return label


def cmd_calibrate(args: argparse.Namespace) -> int:
    from imgtrans.backends import calibrate, calibration_path
    from imgtrans.catalog import CatalogError
    from imgtrans.engine import ConvertOptions, prepare_model
    from imgtrans.weights import ModelLoadError, open_model

    try:
        model, label = open_model(args.model)
        prepare_model(model, ConvertOptions(output_dir=Path("."), device=args.device, half=False))
    except (CatalogError, ModelLoadError, RuntimeError) as exc:
        err(str(exc))
        return EXIT_USAGE
    result = calibrate(model, size=args.size)
    for name, ms in result["timings_ms"].items():
        print(f"  {name:<22} {ms:8.1f} ms")
    choice = result["backend"] + (" + channels_last" if result["channels_last"] else "")
    print(f"imgtrans: --backend auto will use {choice} for {label} (saved in {calibration_path()})")
    return EXIT_OK
