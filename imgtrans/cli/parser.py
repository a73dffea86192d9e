"""The ``imgtrans`` argument parser: the top level and one sub-parser per command. Building it
imports no torch, so ``--help`` answers at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgtrans import __version__
from imgtrans.cli.common import EXIT_CODES_TEXT
from imgtrans.cli_args import noise_level_arg, pixels_or_zero, positive_int, strength_arg

CONVERT_EPILOG = EXIT_CODES_TEXT + """
many processes (each writes OUTPUT/imgtrans-shard-I-of-N.json; `imgtrans summary OUTPUT` combines them):
  torchrun --nproc-per-node 8 -m imgtrans convert scans/ -o out/ -m sr-x2 -r
  sbatch --array=0-15 --wrap 'imgtrans convert scans/ -o out/ -m sr-x2 -r'
  srun -n 16 imgtrans convert scans/ -o out/ -m sr-x2 -r
  imgtrans convert scans/ -o out/ -m sr-x2 -r --shard 3/16
"""


def _tile_arg(text: str) -> int | None:
    return None if text == "auto" else pixels_or_zero(text)


def _device_arg(text: str) -> str:
    import re

    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def _shard_arg(text: str):
    from imgtrans.shard import ShardError, parse_shard

    try:
        return parse_shard(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgtrans",
        description="Style transfer, super-resolution and denoising with GANs.",
        epilog="With no command, imgtrans opens the desktop app.\n\nExamples:\n  imgtrans models\n  imgtrans convert "
               "photos/ -o out/ --model sr-x2\n  imgtrans import RealESRGAN_x4.pth --name "
               "esrgan-x4\n\n" + EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--over` must not silently mean --overwrite
    )
    parser.add_argument("--version", action="version", version=f"imgtrans {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (tracebacks go to the log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # main() reports stray arguments from the command's own parser

    _add_convert(sub)
    _add_summary(sub)
    _add_model_commands(sub)
    return parser


def _add_convert(sub) -> None:
    conv = sub.add_parser("convert", help="convert images or folders with a model",
                          description="Convert images and folders. Existing outputs are skipped, so re-running a "
                                      "killed batch resumes it.",
                          epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                          allow_abbrev=False)
    conv.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    conv.add_argument("-m", "--model", required=True, help="model id from `imgtrans models`, or a weight file path")
    conv.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    conv.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                      help="name every file (done and skipped) and log details")
    conv.add_argument("-r", "--recursive", action="store_true",
                      help="descend into sub-folders (the tree is kept under OUTPUT)")
    conv.add_argument("--flat", action="store_true", help="do not recreate the input folder tree under OUTPUT")
    conv.add_argument("--tile", type=_tile_arg, default=None, metavar="N|auto",
                      help="tile size in pixels (default auto from free memory; 0 = whole image)")
    conv.add_argument("--device", default="auto", type=_device_arg, metavar="auto|cpu|cuda|cuda:N",
                      help="where to run (default auto: a CUDA GPU when there is one; under torchrun/srun each "
                           "process takes cuda:LOCAL_RANK)")
    conv.add_argument("--fp32", action="store_true", help="never use half precision on CUDA")
    conv.add_argument("--backend", default="auto", choices=["auto", "eager", "compile", "onnx"],
                      help="how the network runs: auto (fastest known for the model and device), eager PyTorch, "
                           "torch.compile (slow first image, needs a C compiler) or onnxruntime "
                           "(pip install 'imgtrans[fast]'); default auto")
    conv.add_argument("--threads", type=positive_int, default=None, metavar="N",
                      help="compute threads (default: all CPUs this process may use)")
    conv.add_argument("--format", dest="fmt", default="same", choices=["same", "png", "jpg", "webp", "tiff"],
                      help="output format (default: same as the input where possible)")
    conv.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)")
    group = conv.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    group.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists (default)")
    conv.add_argument("--suffix", default="", help="added to output file names, e.g. _x4")
    conv.add_argument("--style-size", type=pixels_or_zero, default=None, metavar="PX",
                      help="style models: long side in pixels they run at; the result is resized back to the "
                           "input's size (default 512; 0 = full resolution: finer, smaller brush strokes, slower)")
    conv.add_argument("--strength", type=strength_arg, default=None, metavar="S",
                      help="style models: how strong the style is, 0-1 (default 1, the full style); lower "
                           "values make the model's change to each pixel proportionally weaker and keep more of "
                           "the photo's own detail; 0 gives the input back")
    conv.add_argument("--noise-level", type=noise_level_arg, default="auto", metavar="SIGMA",
                      help="denoise strength for models that take one: auto (default: the noise measured on "
                           "each image, shown per file and recorded in the output) or the noise sigma on the "
                           "0-255 scale, 0-100; 0 removes nothing (the input is written unchanged, the network "
                           "does not run); above the range a model was trained on, results degrade")
    conv.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                      help="refuse images with more pixels than this (decompression-bomb guard; default 200 million)")
    conv.add_argument("--no-progress", action="store_true",
                      help="no progress on stderr (a bar on a terminal, else a plain line every few seconds)")
    conv.add_argument("--json", action="store_true",
                      help="one JSON object per line on stdout for each event: start, done, skipped, failed "
                           "(with its reason), note, summary (and combined_summary from torchrun's rank 0)")
    conv.add_argument("--shard", type=_shard_arg, default=None, metavar="I/N",
                      help="convert only shard I of N (0-based): a fixed part of the inputs chosen by a hash of "
                           "each input's path relative to its input folder; default: from torchrun "
                           "(RANK/WORLD_SIZE), a Slurm array (SLURM_ARRAY_TASK_ID) or srun (SLURM_PROCID)")


def _add_summary(sub) -> None:
    summ = sub.add_parser("summary", help="combine the shard summaries of a sharded convert in OUTPUT",
                          description="Combine the imgtrans-shard-I-of-N.json files that the shards of a sharded "
                                      "`imgtrans convert` wrote into their output folder: counts, failures, "
                                      "shards that were killed or never ran.",
                          epilog=EXIT_CODES_TEXT, formatter_class=argparse.RawDescriptionHelpFormatter,
                          allow_abbrev=False)
    summ.add_argument("output", type=Path, metavar="OUTPUT", help="the output folder of the sharded run")
    summ.add_argument("--json", action="store_true", help="machine-readable (one JSON object)")


def _add_model_commands(sub) -> None:
    """``models``, ``gui``, ``calibrate``, ``info``, ``import`` and ``remove``."""
    models = sub.add_parser("models", help="list available models", allow_abbrev=False)
    models.add_argument("--json", action="store_true", help="machine-readable list")
    models.add_argument("--task", choices=["style", "sr", "denoise"], help="only this task")

    gui = sub.add_parser("gui", help="open the desktop app (also: imgtrans with no arguments)", allow_abbrev=False)
    gui.add_argument("paths", nargs="*", help="images or folders to queue")

    cal = sub.add_parser("calibrate",
                         help="time the backends for a model on this machine; --backend auto then uses the fastest",
                         description="Times eager, eager + channels_last and onnxruntime on one image for MODEL and "
                                     "stores the fastest in the user cache folder, where --backend auto finds it "
                                     "(instead of the built-in table) for this architecture and size.",
                         allow_abbrev=False)
    cal.add_argument("-m", "--model", required=True, help="model id or weight file")
    cal.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    cal.add_argument("--size", type=positive_int, default=256, help="test image edge in pixels (default 256)")

    info = sub.add_parser("info", help="describe a model (architecture, licences, where it comes from, metadata)",
                          allow_abbrev=False)
    info.add_argument("file", metavar="MODEL", help="model id from `imgtrans models`, or a weight file path")
    info.add_argument("--json", action="store_true", help="machine-readable output (metadata values as JSON values)")

    imp = sub.add_parser("import", help="check a weight file with the safe loader and add it to your models",
                         description="Checks FILE with the safe loader (safetensors, or tensor-only .pth; a file that "
                                     "would need code execution is refused) and stores it as .safetensors in your "
                                     "models folder (an ONNX graph is run once to measure it and copied as it is, "
                                     "with a .onnx.json record of its range, scale and origin), where `imgtrans "
                                     "models`, `convert` and the desktop app find it. The same code as the app's "
                                     "Models tab.",
                         allow_abbrev=False)
    imp.add_argument("file", metavar="FILE", type=Path, help="a .safetensors or .pth/.pt/.ckpt weight file, or an "
                     "image-to-image .onnx graph (NCHW float; fixed-size graphs run in tiles)")
    imp.add_argument("--name", help="display name (also gives the model id); default: the file's own name")
    imp.add_argument("--range", dest="value_range", choices=("0-1", "-1..1", "0-255"),
                     help="ONNX only: the value range the graph reads and writes, e.g. --range=-1..1 (with '=': "
                          "the value starts with a dash); default: its metadata "
                          "'value_range', else detected by running a photo through it in each range")
    imp.add_argument("--scale", type=positive_int,
                     help="ONNX only: output size / input size (default: its metadata 'scale', else measured)")

    rem = sub.add_parser("remove", help="delete one of your models (imported or trained); bundled ones stay",
                         allow_abbrev=False)
    rem.add_argument("model", metavar="NAME", help="model id from `imgtrans models` (one of yours)")
