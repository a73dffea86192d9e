"""The batch engine shared by the CLI, the GUI and the lite bundle.

:func:`convert` takes inputs, a model and options and returns a generator of :class:`Event` objects. The
work runs in a background thread (decode of the next image and encode of finished ones overlap
with inference in small thread pools); the generator only hands over events, and setting the
``cancel`` event (or closing the generator) stops the run within one tile. Nothing is lost: inputs
are never written, outputs appear atomically (temp file + rename) and only when complete, an
existing output is skipped unless asked otherwise, so a killed batch resumes by running it again.

The modules, in the order a batch meets them (none imports torch when it is imported; only the
functions of :mod:`~imgtrans.engine.runner` that run the network do):

* :mod:`~imgtrans.engine.options`: :class:`ConvertOptions`, what the user chose;
* :mod:`~imgtrans.engine.planning`: inputs found, output names, the files left out and why;
* :mod:`~imgtrans.engine.settings`: the settings an output records, and whether an existing
  output was made with this batch's (resume);
* :mod:`~imgtrans.engine.runner`: :class:`Runner`, and the PyTorch one (device, precision, backend);
* :mod:`~imgtrans.engine.batch`: :func:`convert`, the worker's loop;
* :mod:`~imgtrans.engine.events`: :class:`Event` and :class:`Summary`, what a run reports.
"""

from imgtrans.engine.batch import convert, format_losses
from imgtrans.engine.events import Cancelled, DiskFull, Event, Summary
from imgtrans.engine.options import ConvertOptions
from imgtrans.engine.planning import (
    EXISTS,
    IMAGE_SUFFIXES,
    OUTPUT_OF,
    OVERWRITES_INPUT,
    SAME_FILE,
    SUFFIX_FORMAT,
    Job,
    Plan,
    collect_inputs,
    make_plan,
    output_dir_problem,
    plan_jobs,
)
from imgtrans.engine.runner import (
    TORCH_RUNNER,
    Runner,
    cuda_devices,
    device_problem,
    pick_device,
    prepare_model,
    prepare_runner,
    process_image,
)
from imgtrans.engine.settings import auto_noise_options, existing_output_problem, noise_settings

__all__ = [
    "EXISTS", "IMAGE_SUFFIXES", "OUTPUT_OF", "OVERWRITES_INPUT", "SAME_FILE", "SUFFIX_FORMAT", "TORCH_RUNNER",
    "Cancelled", "ConvertOptions", "DiskFull", "Event", "Job", "Plan", "Runner", "Summary",
    "auto_noise_options", "collect_inputs", "convert", "cuda_devices", "device_problem", "existing_output_problem",
    "format_losses", "make_plan", "noise_settings", "output_dir_problem", "pick_device", "plan_jobs",
    "prepare_model", "prepare_runner", "process_image",
]
