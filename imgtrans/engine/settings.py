"""The settings that change an output's pixels: what each output records about them, what a
denoiser left on auto measures per image, and whether an existing output was made with this
batch's model and settings (then skipping it resumes the batch). Torch-free."""

from __future__ import annotations

import json
from pathlib import Path

from imgtrans.engine.options import ConvertOptions
from imgtrans.engine.planning import imgtrans_record
from imgtrans.noise import format_levels


def _same_model(a: str, b: str) -> bool:
    """Catalog ids are compared as they are; weight files by file name (``./m.safetensors`` = ``m.safetensors``)."""
    return a == b or Path(a.replace("\\", "/")).name == Path(b.replace("\\", "/")).name


def _same_value(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def existing_output_problem(dst: Path, model_id: str, options: ConvertOptions) -> str | None:
    """Why an existing output ``dst`` is not this batch's result, or None when it is (the same model
    with the same pixel-changing settings made it: skipping it resumes the batch). A file imgtrans
    did not write, or wrote with another model, noise level or style scale, is never replaced
    without ``overwrite``, and keeping it silently would hand the user the wrong picture."""
    if dst.suffix.lower() == ".bmp":
        return None  # BMP keeps no record: whose it is cannot be told
    hint = "use --overwrite to replace it, or choose another output folder or --suffix"
    record = imgtrans_record(dst)
    if record is None:
        return f"{dst.name} already exists and imgtrans did not write it ({hint})"
    made_by = str(record.get("model", ""))
    if not _same_model(made_by, model_id):
        return f"{dst.name} already exists, made by {made_by or 'another model'}, not {model_id} ({hint})"
    try:
        settings = json.loads(record.get("settings") or "{}")
    except ValueError:
        settings = {}
    if "noise_level" in settings:
        # auto measures the same level (or levels: one per channel for a one-channel model on a colour
        # image, recorded as a list) on the same input again, so an output made on auto is this batch's
        # when it runs on auto; a level set by hand must match the level recorded (never a list)
        made_auto = bool(settings.get("noise_auto"))
        made_level = format_levels(settings["noise_level"])
        if options.noise_level is None and not made_auto:
            return f"{dst.name} already exists, made with noise level {made_level}, not auto ({hint})"
        if options.noise_level is not None and not _same_value(settings["noise_level"], options.noise_level):
            made = f"auto ({made_level})" if made_auto else made_level
            return f"{dst.name} already exists, made with noise level {made}, not {options.noise_level} ({hint})"
    wanted = options.style_size or "full"
    if "style_size" in settings and not _same_value(settings["style_size"], wanted):
        return f"{dst.name} already exists, made with style scale {settings['style_size']}, not {wanted} ({hint})"
    if "style_size" in settings and not _same_value(settings.get("style_strength", 1.0), options.style_strength):
        made = settings.get("style_strength", 1.0)
        return f"{dst.name} already exists, made with style strength {made}, not {options.style_strength} ({hint})"
    return None


def noise_settings(model, options: ConvertOptions) -> dict:
    """What a denoiser's output records about its strength: ``noise_level`` (the level used: a number,
    or a list with each channel's level where auto gave a one-channel model one level per channel)
    and, when that level was measured on the image, ``noise_auto: true``; nothing for other models."""
    if not model.takes_noise_level:
        return {}
    if options.noise_level is None:  # not resolved per image (a direct call): what auto means
        return {"noise_level": "auto", "noise_auto": True}
    level = list(options.noise_level) if isinstance(options.noise_level, tuple) else options.noise_level
    return {"noise_level": level, **({"noise_auto": True} if options.noise_auto else {})}


def auto_noise_options(model, img, options: ConvertOptions) -> tuple[ConvertOptions, str | None]:
    """``options`` for one image: for a denoiser with a strength input left on auto, a copy with the
    level measured on ``img`` (:func:`imgtrans.channels.auto_noise_level`: a tuple, one level per
    channel, for a one-channel model on a colour image) and a line saying it; else ``options`` itself
    and None."""
    import dataclasses

    from imgtrans import noise
    from imgtrans.channels import auto_noise_level

    if not model.takes_noise_level or options.noise_level is not None:
        return options, None
    level, per_channel = auto_noise_level(img, model.in_channels)
    return dataclasses.replace(options, noise_level=level, noise_auto=True), noise.describe(level, per_channel)
