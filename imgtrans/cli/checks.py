"""The checks ``imgtrans convert`` makes before anything is loaded or created: option values, the
input and output paths, the backend's package, and (from the model's metadata, without torch) the
options that do nothing with the chosen model. A problem that stops the command raises
:class:`~imgtrans.cli.common.UsageError`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgtrans.cli.common import UsageError
from imgtrans.cli_args import noise_level_problem, printable


def check_values(args: argparse.Namespace) -> None:
    """Option values argparse cannot judge alone."""
    if not 1 <= args.jpeg_quality <= 100:
        raise UsageError("--jpeg-quality must be between 1 and 100")
    if noise_level_problem(args.noise_level):
        raise UsageError(noise_level_problem(args.noise_level))


def check_paths(args: argparse.Namespace) -> None:
    """Every input exists; the output is a folder that can be written (creates nothing); the
    onnxruntime package is there for ``--backend onnx``."""
    from imgtrans.engine import output_dir_problem

    missing = [raw for raw in args.inputs if not Path(raw).expanduser().exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    output = args.output.expanduser()
    if output.exists() and not output.is_dir():
        raise UsageError(f"output {args.output} is an existing file, not a folder; choose a folder for -o")
    problem = output_dir_problem(output)
    if problem:
        raise UsageError(f"-o {args.output}: {problem}; choose another output folder")
    if args.backend == "onnx":
        from imgtrans.backends import onnxruntime_available

        if not onnxruntime_available():
            raise UsageError("--backend onnx needs onnxruntime, which is not installed: pip install "
                             "'imgtrans[fast]' (or use --backend auto)")


def warn_unused_options(args: argparse.Namespace, label: str, facts: dict, tag: str = "imgtrans") -> None:
    """One line per option that does nothing with this model, and a noise level above what the
    model was trained on (``facts``: :func:`imgtrans.cli.loading.model_facts`)."""
    def warn(text: str) -> None:
        print(f"{tag}: {printable(text)}", file=sys.stderr)

    if args.noise_level is not None:
        if facts["takes_noise"] is False:
            warn(f"--noise-level has no effect on {label} (it takes no noise level)")
        elif facts["takes_noise"] and facts["sigma_max"] is not None and args.noise_level > facts["sigma_max"]:
            warn(f"warning: --noise-level {args.noise_level:g} is above the noise {label} was trained on "
                 f"(sigma 0-{facts['sigma_max']:g}); expect over-smoothed or odd results")
    if args.style_size is not None and facts["task"] is not None and facts["task"] != "style":
        warn(f"--style-size has no effect on {label} (not a style model)")
    if args.strength is not None and facts["task"] is not None and facts["task"] != "style":
        warn(f"--strength has no effect on {label} (not a style model)")
