"""The model a convert names: found in the catalog or on disk and described from its metadata
without torch (:func:`find_model`), loaded onto its device only when there is work
(:func:`load_model`). A problem raises :class:`~imgtrans.cli.common.UsageError`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from imgtrans.cli.common import UsageError


@dataclass
class FoundModel:
    """``found``: what :func:`imgtrans.catalog.find_model` returned (a catalog entry or a path);
    ``label``: how the command names it; ``meta``: the weight file's metadata (empty when
    unreadable: loading says why); ``facts``: :func:`model_facts`."""

    found: object
    label: str
    meta: dict
    facts: dict


def find_model(ref: str) -> FoundModel:
    from imgtrans import catalog

    try:
        found = catalog.find_model(ref)
    except catalog.CatalogError as exc:
        raise UsageError(str(exc)) from None
    entry = found if isinstance(found, catalog.CatalogEntry) else None
    label = entry.id if entry else str(found)
    try:
        meta = catalog.read_model_metadata(entry.path if entry else found)
    except (OSError, ValueError):
        meta = {}  # loading the model says what is wrong with it
    return FoundModel(found, label, meta, model_facts(meta, entry.task if entry else ""))


def model_facts(meta: dict[str, str], task: str = "") -> dict:
    """What the convert checks need to know about a model, from its metadata (no torch): ``task``,
    ``takes_noise`` (None: unknown) and ``sigma_max``, the largest noise sigma it was trained on
    (None: not recorded)."""
    import re

    from imgtrans.catalog import takes_noise_input

    facts: dict = {"task": meta.get("task") or task or None, "takes_noise": takes_noise_input(meta), "sigma_max": None}
    for key in ("noise", "train_options"):  # recorded as {"sigma": [lo, hi]}
        try:
            sigma = json.loads(meta.get(key) or "{}").get("sigma")
            facts["sigma_max"] = float(sigma[1])
            break
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            continue
    if facts["sigma_max"] is None:
        found = re.search(r"sigma\s+(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)", meta.get("description", ""))
        if found:
            facts["sigma_max"] = float(found.group(2))
    return facts


def load_model(model: FoundModel, options, local_rank: int | None):
    """Load ``model`` for ``options.device`` (checked first; under a launcher, ``auto``/``cuda``
    become this process's GPU, ``cuda:LOCAL_RANK``); returns ``(loaded model, label)`` and fills
    the facts its metadata did not say."""
    from imgtrans.engine import device_problem

    if local_rank is not None and options.device in ("auto", "cuda"):
        import torch  # a launcher's process: its own GPU, cuda:LOCAL_RANK (modulo the GPUs it can see)

        if torch.cuda.is_available():
            options.device = f"cuda:{local_rank % torch.cuda.device_count()}"
    problem = device_problem(options.device)  # imports torch only for a CUDA choice
    if problem:
        raise UsageError(problem)
    from imgtrans.weights import ModelLoadError, load_found

    try:
        loaded, label = load_found(model.found)
    except ModelLoadError as exc:
        raise UsageError(str(exc)) from None
    facts = model.facts
    facts["task"] = facts["task"] or loaded.task  # the loaded model fills what the metadata did not say
    if options.style_strength != 1.0 and loaded.task == "style" and not loaded.supports_strength:
        raise UsageError(f"--strength: {label} has no strength setting (only style generators with an input skip, "
                         "as every style model imgtrans-train makes, have one)")
    if facts["takes_noise"] is None:
        facts["takes_noise"] = loaded.takes_noise_level
    return loaded, label
