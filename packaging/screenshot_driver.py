"""Drive the real imgtrans window to meaningful states and save screenshots (see screenshots.sh).

1. ``main-window.png``: the bundled samples queued, converted with the bundled ``sr-x2-quick`` model,
   one result open in the before/after view at 100% with the divider in the middle.
2. ``train-tab.png``: a short CycleGAN run (the samples against posterised copies of them) with
   the data report, live losses and the latest sample grid.
3. ``models-tab.png``: the model list, with the bundled model and the ones training just exported.

Everything the window writes goes to a throw-away IMGTRANS_HOME, never to the user's folders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_until(app, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shot(window, path: Path) -> None:
    if not window.grab().save(str(path)):
        raise SystemExit(f"screenshots: cannot write {path}")
    print(path)


def dark_palette():
    """What a dark desktop theme hands to Qt (roughly KDE Breeze Dark): the window must follow it."""
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2a2e32", QPalette.ColorRole.WindowText: "#fcfcfc",
        QPalette.ColorRole.Base: "#1b1e20", QPalette.ColorRole.AlternateBase: "#232629",
        QPalette.ColorRole.ToolTipBase: "#31363b", QPalette.ColorRole.ToolTipText: "#fcfcfc",
        QPalette.ColorRole.PlaceholderText: "#a1a9b1", QPalette.ColorRole.Text: "#fcfcfc",
        QPalette.ColorRole.Button: "#31363b", QPalette.ColorRole.ButtonText: "#fcfcfc",
        QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Highlight: "#3daee9",
        QPalette.ColorRole.HighlightedText: "#fcfcfc", QPalette.ColorRole.Link: "#1d99f3",
        QPalette.ColorRole.LinkVisited: "#9b59b6", QPalette.ColorRole.Light: "#40464c",
        QPalette.ColorRole.Midlight: "#363b40", QPalette.ColorRole.Mid: "#1f2226",
        QPalette.ColorRole.Dark: "#141618", QPalette.ColorRole.Shadow: "#0a0b0c",
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6e7175"))
    return pal


def make_style_domains(work: Path) -> tuple[Path, Path]:
    """Domain A: the sample photos; domain B: posterised, edge-enhanced copies ("poster" style)."""
    from PIL import Image, ImageFilter, ImageOps

    a, b = work / "photos", work / "posters"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    for src in sorted((ROOT / "resources" / "samples").glob("*.jpg")):
        shutil.copy(src, a / src.name)
        with Image.open(src) as im:
            poster = ImageOps.posterize(ImageOps.exif_transpose(im).convert("RGB"), 2)
            poster = poster.filter(ImageFilter.EDGE_ENHANCE_MORE)
            poster.save(b / f"{src.stem}_poster.png")
    return a, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="1400x900", help="window size, WxH")
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--dark", action="store_true",
                        help="a dark desktop theme: saves *-dark.png (main window and models tab; no training run)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="imgtrans-shots-"))
    os.environ["IMGTRANS_HOME"] = str(work / "home")
    sys.path.insert(0, str(ROOT))
    from imgtrans.gui.app import create_app
    from imgtrans.gui.queue_model import Status
    from imgtrans.gui.window import MainWindow

    app, log_file = create_app()
    suffix = ""
    if args.dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
        suffix = "-dark"
    window = MainWindow(log_file=str(log_file))
    window.setGeometry(0, 0, width, height)
    window.show()
    window.raise_()
    window.activateWindow()
    settle(app, 0.5)

    # 1. convert the samples with the bundled model and open one before/after
    window.options.refresh_models(select="sr-x2-quick")
    if window.options.model_ref() != "sr-x2-quick":
        raise SystemExit("screenshots: the bundled model sr-x2-quick is not in the catalog")
    window.options.set_output_dir(work / "converted")
    window.add_paths([ROOT / "resources" / "samples"])
    wait_until(app, lambda: len(window.queue.items) >= 4 and all(i.probed for i in window.queue.items), 30, "the queue")
    finished = []
    window.batch_finished.connect(finished.append)
    window.start_batch()
    wait_until(app, lambda: finished, 300, "the conversion")
    if finished[0] is None or finished[0].failed:
        raise SystemExit(f"screenshots: the conversion failed: {window.message.text() or finished[0].failed}")
    cat = next(i for i, item in enumerate(window.queue.items) if item.path.name.startswith("chelsea"))
    window.select_row(cat)
    wait_until(app, lambda: window.compare.has_after(), 30, "the before/after view")
    settle(app, 0.5)
    view = window.compare
    view.actual_size()
    item = window.queue.items[cat]
    view.center_on(item.width * 2 * 0.47, item.height * 2 * 0.52)  # the cat's eyes and nose, on the output grid
    view.set_split(0.5)
    settle(app, 0.5)
    assert all(i.status in (Status.DONE, Status.SKIPPED) for i in window.queue.items)
    shot(window, out / f"main-window{suffix}.png")

    # 2. a short training run in the Train tab
    tab = window.train_tab
    if args.dark:
        pass
    elif tab is not None:
        domain_a, domain_b = make_style_domains(work)
        window.tabs.setCurrentWidget(tab)
        tab.task_combo.setCurrentIndex(tab.task_combo.findData("cyclegan"))
        tab.domain_a_edit.setText(str(domain_a))
        tab.domain_b_edit.setText(str(domain_b))
        tab.name_edit.setText("photo2poster")
        tab.preset_combo.setCurrentIndex(tab.preset_combo.findData("cpu-tiny"))
        tab.steps_spin.setValue(args.train_steps)
        stopped = []
        tab.stopped.connect(lambda: stopped.append(True))
        tab.start()
        wait_until(app, lambda: stopped, 900, "the training run")
        wait_until(app, tab.samples.has_images, 30, "the sample grid")
        settle(app, 0.5)
        shot(window, out / "train-tab.png")
    else:
        print("screenshots: no Train tab (trainer not available): train-tab.png not made", file=sys.stderr)

    # 3. the Models tab, showing what training exported
    window.tabs.setCurrentWidget(window.models_tab)
    user = [e for e in window.options.entries() if e.source == "user"]
    window.models_tab.refresh(select=user[0].id if user else "sr-x2-quick")
    settle(app, 0.5)
    shot(window, out / f"models-tab{suffix}.png")

    window.close()
    settle(app, 0.2)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
