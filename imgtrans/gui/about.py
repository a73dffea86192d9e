"""Versions and the compute device, for the About box and the status bar."""

from __future__ import annotations

import html
import platform
import sys
from dataclasses import dataclass

import PySide6
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from imgtrans import __version__
from imgtrans.paths import user_data_dir


@dataclass
class DeviceInfo:
    torch: str = "not loaded yet"
    cuda: bool = False
    device: str = "checking\u2026"  # what "Automatic" uses
    detail: str = ""


def probe_device() -> DeviceInfo:
    """Imports torch: run in a worker thread."""
    import torch

    from imgtrans.gui.tasks import settle_gc

    settle_gc()  # torch's objects are here to stay: keep them out of full collections
    info = DeviceInfo(torch=torch.__version__)
    info.cuda = bool(torch.cuda.is_available())
    if info.cuda:
        props = torch.cuda.get_device_properties(0)
        info.device = f"GPU: {props.name}"
        info.detail = f"{props.name}, {props.total_memory / 2**30:.0f} GB, CUDA {torch.version.cuda}"
    else:
        info.device = f"CPU ({torch.get_num_threads()} threads)"
        info.detail = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return info


def about_html(device: DeviceInfo, log_file: str) -> str:
    rows = [
        ("imgtrans", __version__),
        ("Python", sys.version.split()[0]),
        ("Qt / PySide6", f"{qVersion()} / {PySide6.__version__}"),
        ("PyTorch", device.torch),
        ("Device", device.device + (f" \u2014 {device.detail}" if device.detail else "")),
        ("Data folder", str(user_data_dir())),
        ("Log file", log_file),
    ]
    table = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (
        "<h3>imgtrans</h3>"
        "<p>Turn images into other images with GANs: super-resolution, denoising and style transfer.</p>"
        f"<table>{table}</table>"
        "<p>Licensed under the MIT licence. Bundled models and sample images carry their own licences "
        "(see the Models tab and <code>resources/LICENSES</code>).</p>"
    )


def show_about(parent: QWidget, device: DeviceInfo, log_file: str) -> None:
    QMessageBox.about(parent, "About imgtrans", about_html(device, log_file))
