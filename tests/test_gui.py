"""The desktop window, offscreen (pytest-qt). Every test gets its own IMGTRANS_HOME (conftest), so
settings, logs and user models never leak between tests."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from conftest import write_rgb
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from imgtrans.gui.queue_model import QueueModel, Status
from imgtrans.paths import user_models_dir

BATCH_TIMEOUT = 30_000


def install_model(path: Path) -> None:
    user_models_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(path, user_models_dir() / path.name)


def images(folder: Path, n: int, size: int) -> list[Path]:
    return [write_rgb(folder / f"img{i:02d}.png", size, size, seed=i) for i in range(n)]


def queue_ready(window, n: int, qtbot) -> None:
    qtbot.waitUntil(lambda: len(window.queue.items) == n and all(i.probed for i in window.queue.items), timeout=10_000)


def prepare(window, qtbot, inputs: list[Path], model_id: str, out: Path) -> None:
    window.options.refresh_models(select=model_id)
    assert window.options.model_ref() == model_id
    window.options.set_output_dir(out)
    window.add_paths(inputs)


def drop(widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(widget.width() // 2, widget.height() // 2)
    enter = QDragEnterEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


# ------------------------------------------------------------------------------------------- queue


def test_dropping_a_folder_fills_the_queue(make_window, qtbot, tmp_path):
    folder = tmp_path / "shoot"
    images(folder, 3, 40)
    write_rgb(folder / "sub" / "deep.jpg", 30, 20, seed=9)
    (folder / "notes.txt").write_text("not an image")
    w = make_window()
    drop(w.compare, [folder])  # dropped on a child: the whole window accepts drops
    queue_ready(w, 5, qtbot)
    by_name = {i.path.name: i for i in w.queue.items}
    queued = {n for n, i in by_name.items() if i.status == Status.QUEUED}
    assert queued == {"img00.png", "img01.png", "img02.png", "deep.jpg"}
    assert by_name["notes.txt"].status == Status.SKIPPED
    assert "not an image" in by_name["notes.txt"].message
    assert (by_name["img00.png"].width, by_name["img00.png"].height) == (40, 40)
    assert by_name["img00.png"].thumb is not None
    qtbot.waitUntil(lambda: "4 images" in w.count_label.text() and "1 skipped" in w.count_label.text(), timeout=2000)
    # without sub-folders the nested image leaves the queue
    w.options.recursive_check.setChecked(False)
    qtbot.waitUntil(lambda: "deep.jpg" not in {i.path.name for i in w.queue.items}, timeout=5000)


def test_paste_paths_and_image_data(make_window, qtbot, tmp_path):
    from PySide6.QtGui import QGuiApplication

    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(write_rgb(tmp_path / "copied.png", 20, 20)))])
    QGuiApplication.clipboard().setMimeData(mime)
    w.queue_panel.paste()
    queue_ready(w, 1, qtbot)
    image = QImage(30, 10, QImage.Format.Format_RGB888)
    image.fill(QColor("gray"))
    QGuiApplication.clipboard().setImage(image)
    w.queue_panel.paste()  # a screenshot in the clipboard: kept as a PNG in the cache, then queued
    queue_ready(w, 2, qtbot)
    pasted = w.queue.items[1]
    assert pasted.path.suffix == ".png" and (pasted.width, pasted.height) == (30, 10)
    assert "Ctrl+V" in w.shortcuts_html() and "Ctrl+Return" in w.shortcuts_html()


def test_bad_inputs_get_clear_messages(make_window, qtbot, tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    huge = tmp_path / "huge.png"  # a valid PNG header claiming 30000 x 30000 pixels
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = zlib.compress(b"\x00" * 1000)  # the first rows only: a real file would be gigabytes
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    w = make_window()
    w.add_paths([corrupt, huge])
    queue_ready(w, 2, qtbot)
    items = {i.path.name: i for i in w.queue.items}
    assert items["broken.jpg"].status == Status.UNREADABLE and items["broken.jpg"].message
    assert items["huge.png"].status == Status.UNREADABLE and "megapixels" in items["huge.png"].message
    assert not w.queue.runnable()
    w.add_paths([empty])
    qtbot.waitUntil(lambda: "No images in" in w.message.text(), timeout=5000)
    # selecting an unusable file explains itself in the preview pane
    w.select_row(0)
    assert "Cannot use" in w.compare.message()


def test_the_empty_queue_hint_goes_when_images_arrive(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.options.current_task() == "sr" and w.options.model_ref() == "sr-x2"  # the default x2, not the demo one
    w.start_batch()
    assert w.message.text().startswith("The queue is empty")
    w.add_paths(images(tmp_path / "in", 2, 32))
    queue_ready(w, 2, qtbot)
    qtbot.waitUntil(lambda: w.message.text() == "", timeout=5000)
    assert w.progress.start_button.text() == "&Convert 2 images"


def test_unwritable_output_folder_is_reported(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["sr"])
    blocker_file = tmp_path / "a-file"
    blocker_file.write_text("x")
    w = make_window()
    prepare(w, qtbot, images(tmp_path / "in", 1, 32), "tiny-sr", blocker_file / "out")
    queue_ready(w, 1, qtbot)
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    assert blocker.args == [None]
    assert "Cannot write to the output folder" in w.message.text()
    assert w.progress.start_button.isEnabled()


# ------------------------------------------------------------------------------------------- batch


@pytest.mark.parametrize("model_id", ["tiny-denoise_map", "denoise-gray"])
def test_a_denoiser_on_auto_shows_the_level_it_measured_on_each_row(make_window, qtbot, tmp_path, tiny_models,
                                                                    model_id):
    install_model(tiny_models["denoise_map"])
    w = make_window()
    w.options.task_combo.setCurrentIndex(w.options.task_combo.findData("denoise"))
    images(tmp_path / "in", 2, 40)
    prepare(w, qtbot, [tmp_path / "in"], model_id, tmp_path / "out")
    queue_ready(w, 2, qtbot)
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    assert blocker.args[0] is not None and blocker.args[0].ok
    # the bundled one-channel denoiser runs on each colour channel with that channel's own level
    shown = "noise level R " if model_id == "denoise-gray" else "noise level "
    for item in w.queue.items:
        text = QueueModel.status_text(item)
        assert text.startswith("Done") and shown in text and "(estimated" in text, text


def test_batch_runs_to_the_finished_signal(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["sr"])
    out = tmp_path / "out"
    w = make_window()
    images(tmp_path / "in", 4, 48)
    prepare(w, qtbot, [tmp_path / "in"], "tiny-sr", out)
    queue_ready(w, 4, qtbot)
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    summary = blocker.args[0]
    assert summary is not None and summary.ok and len(summary.converted) == 4
    assert all(i.status == Status.DONE for i in w.queue.items)
    from PIL import Image

    with Image.open(out / "img00.png") as im:
        assert im.size == (96, 96)
    assert w.progress.overall_bar.value() == w.progress.overall_bar.maximum()
    assert "4 converted" in w.progress.status_label.full_text()
    # the converted file shows before/after
    qtbot.waitUntil(w.compare.has_after, timeout=5000)
    # run again: outputs exist and the policy is "skip"
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    assert len(blocker.args[0].converted) == 0
    assert all(i.status == Status.EXISTS for i in w.queue.items)
    assert w.progress.start_button.text() == "&Convert again"  # nothing in the queue is left to do

    # another model into the same folder: the rows say whose files are there, in the window's words
    install_model(tiny_models["denoise"])
    w.options.refresh_models(select="tiny-denoise")
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    assert len(blocker.args[0].failed) == 4
    row = w.queue.items[0]
    assert row.status == Status.FAILED and "made by tiny-sr, not tiny-denoise" in row.message, row.message
    assert "--" not in row.message and "Overwrite" in row.message and "name suffix" in row.message
    assert w.progress.start_button.text() == "&Convert 4 images"

    # a name suffix puts the outputs beside the others
    w.options.suffix_edit.setText(" _dn/ ")
    w.options.suffix_edit.editingFinished.emit()
    assert w.options.convert_options().suffix == "_dn"
    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
    assert len(blocker.args[0].converted) == 4 and (out / "img00_dn.png").is_file()


def test_cancel_mid_batch_leaves_no_partial_outputs(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["sr"])
    out = tmp_path / "out"
    w = make_window()
    w.options.tile_combo.setCurrentIndex(w.options.tile_combo.findData("manual"))
    w.options.tile_spin.setValue(128)  # several tiles per image: the cancel lands inside one
    images(tmp_path / "in", 8, 256)
    prepare(w, qtbot, [tmp_path / "in"], "tiny-sr", out)
    queue_ready(w, 8, qtbot)

    def on_event(ev):
        if ev.kind == "done" and w.batch is not None:
            w.cancel_batch()

    with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
        w.start_batch()
        w.batch.event.connect(on_event)
    summary = blocker.args[0]
    assert summary.cancelled
    assert 1 <= len(summary.converted) < 8
    written = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert written == sorted(p.name for p in summary.converted)  # no .part or half files
    from PIL import Image

    for path in summary.converted:
        with Image.open(path) as im:
            im.load()
            assert im.size == (512, 512)
    statuses = [i.status for i in w.queue.items]
    assert Status.DONE in statuses and Status.RUNNING not in statuses and Status.QUEUED not in statuses
    never_started = [i for i in w.queue.items if i.status == Status.CANCELLED and i.message == "not started"]
    assert never_started, [(i.status, i.message) for i in w.queue.items]
    assert "Cancelled" in w.progress.status_label.full_text()
    left = sum(1 for i in w.queue.items if i.status != Status.DONE)
    assert w.progress.start_button.text() == f"&Convert {left} image{'s' if left != 1 else ''}"


def test_event_loop_never_stalls_during_a_batch(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["sr"])
    w = make_window()
    images(tmp_path / "in", 8, 128)
    prepare(w, qtbot, [tmp_path / "in"], "tiny-sr", tmp_path / "out")
    queue_ready(w, 8, qtbot)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        with qtbot.waitSignal(w.batch_finished, timeout=BATCH_TIMEOUT) as blocker:
            w.start_batch()
    finally:
        timer.stop()
    assert blocker.args[0].ok and len(blocker.args[0].converted) == 8
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    worst = max(gaps) * 1000
    print(f"\nGUI event loop during an 8-image batch: {len(ticks)} ticks, max stall {worst:.1f} ms")
    assert len(ticks) > 5
    assert worst < 100


# ----------------------------------------------------------------------------------------- options


def test_settings_persist_across_windows(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["denoise_map"])
    w = make_window()
    o = w.options
    o.task_combo.setCurrentIndex(o.task_combo.findData("denoise"))
    o.refresh_models(select="tiny-denoise_map")
    assert o.strength_widget.isVisibleTo(o)  # this model takes a noise level
    assert o.strength_auto.isChecked() and not o.strength_spin.isEnabled()  # auto by default: measured per image
    assert o.convert_options().noise_level is None
    o.strength_auto.setChecked(False)
    assert o.strength_spin.isEnabled()
    o.strength_spin.setValue(40)
    o.tile_combo.setCurrentIndex(o.tile_combo.findData("manual"))
    o.tile_spin.setValue(256)
    o.device_combo.setCurrentIndex(o.device_combo.findData("cpu"))
    o.format_combo.setCurrentIndex(o.format_combo.findData("png"))
    o.existing_combo.setCurrentIndex(1)
    o.keep_tree_check.setChecked(False)
    o.set_output_dir(tmp_path / "elsewhere")
    w.close()

    o2 = make_window().options
    assert o2.current_task() == "denoise" and o2.model_ref() == "tiny-denoise_map"
    assert o2.strength_spin.value() == 40 and not o2.strength_auto.isChecked()
    opts = o2.convert_options()
    assert opts.tile == 256 and opts.device == "cpu" and opts.fmt == "png" and opts.overwrite
    assert not opts.keep_tree and opts.output_dir == tmp_path / "elsewhere" and opts.noise_level == 40.0
    assert (Path(os.environ["IMGTRANS_HOME"]) / "gui-settings.ini").is_file()


def test_style_scale_shows_for_style_models_and_reaches_the_engine(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["style"])
    install_model(tiny_models["denoise"])
    w = make_window()
    o = w.options
    o.task_combo.setCurrentIndex(o.task_combo.findData("denoise"))
    assert not o.style_size_spin.isVisibleTo(o)
    o.task_combo.setCurrentIndex(o.task_combo.findData("style"))
    o.refresh_models(select="tiny-style")
    assert o.style_size_spin.isVisibleTo(o)
    assert o.convert_options().style_size == 512
    o.style_size_spin.setValue(0)
    assert o.style_size_spin.text() == "Full resolution"
    w.close()
    o2 = make_window().options
    assert o2.convert_options().style_size == 0  # remembered


# ----------------------------------------------------------------------------------------- compare


def _display(w: int, h: int, color: str):
    from PIL import Image

    from imgtrans.gui.imaging import display_from_pil

    return display_from_pil(Image.new("RGB", (w, h), color))


def test_compare_divider_follows_a_mouse_drag(make_window, qtbot):
    w = make_window()
    view = w.compare
    view.set_images(_display(200, 100, "black"), _display(400, 200, "white"))
    assert view.split() == 0.5
    start = QPoint(int(view.divider_x()), view.height() // 2)
    target = QPoint(int(view.width() * 0.2), view.height() // 2)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(target), QPointF(view.mapToGlobal(target)),
                       Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, move)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=target)
    assert view.split() == pytest.approx(0.2, abs=0.01)
    # the two halves really show different images at the divider
    shot = view.grab().toImage()
    y = view.height() // 2 + 40
    dpr = shot.devicePixelRatio()
    left = shot.pixelColor(int((view.divider_x() - 20) * dpr), int(y * dpr))
    right = shot.pixelColor(int((view.divider_x() + 20) * dpr), int(y * dpr))
    assert left.lightness() < 50 and right.lightness() > 200
    # dragging away from the divider pans instead; zoom is shared by both halves
    view.actual_size()
    assert view.zoom_percent() == pytest.approx(100)
    before = view.scene_rect_in_widget().topLeft()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(view.width() - 30, 30))
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(view.width() - 60, 40), QPointF(0, 0),
                       Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, move)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(view.width() - 60, 40))
    assert view.scene_rect_in_widget().topLeft() != before
    assert view.split() == pytest.approx(0.2, abs=0.01)
    view.fit()
    assert view.is_fit()


def test_quick_preview_of_one_image(make_window, qtbot, tmp_path, tiny_models):
    install_model(tiny_models["sr"])
    w = make_window()
    prepare(w, qtbot, [write_rgb(tmp_path / "big.png", 700, 300, seed=3)], "tiny-sr", tmp_path / "out")
    queue_ready(w, 1, qtbot)
    w.select_row(0)
    labels = []
    w.preview_shown.connect(labels.append)
    w.run_preview()
    qtbot.waitUntil(lambda: "Result (preview)" in w.compare._labels[1], timeout=20_000)
    assert w.compare.has_after()
    qtbot.waitUntil(lambda: "Preview ready" in w.preview_status.text(), timeout=5000)
    assert not (tmp_path / "out").exists()  # a preview writes nothing


def test_style_preview_paints_at_the_style_size(qtbot, tmp_path, tiny_models, monkeypatch):
    """The quick pass must look like the result: no quick pass when the style model paints at <= 512 px
    anyway, and strokes at the same relative size when it paints larger."""
    from imgtrans.engine import ConvertOptions
    from imgtrans.gui import preview

    install_model(tiny_models["style"])
    src = write_rgb(tmp_path / "big.png", 1400, 600, seed=3)
    calls = []
    real = preview.process_image

    def spy(model, img, options, step=None):
        calls.append((max(img.width, img.height), options.style_size))
        return real(model, img, options, step)

    monkeypatch.setattr(preview, "process_image", spy)
    for size, expected in ((256, [(1400, 256)]), (1024, [(512, 374), (1400, 1024)])):
        calls.clear()
        labels = []
        thread = preview.PreviewThread(1, src, "tiny-style", ConvertOptions(output_dir=tmp_path, style_size=size))
        # the thread runs synchronously (_run) in this iteration
        thread.after_ready.connect(lambda _t, _img, label, _final: labels.append(label))  # noqa: B023
        thread._run()
        assert calls == expected
        assert labels[-1] == "Result (preview)" and len(labels) == len(expected)


# ------------------------------------------------------------------------------------------ models


def test_models_tab_imports_and_removes(make_window, qtbot, tmp_path, tiny_models):
    w = make_window()
    tab = w.models_tab
    junk = tmp_path / "not_a_model.pth"
    junk.write_bytes(os.urandom(2000))
    with qtbot.waitSignal(tab.importFinished, timeout=20_000) as blocker:
        tab.import_file(junk)
    assert blocker.args == [False]
    assert "Not imported" in tab.message.text() and "not_a_model.pth" in tab.message.text()

    with qtbot.waitSignal(tab.importFinished, timeout=20_000) as blocker:
        tab.import_file(tiny_models["denoise"], "My denoiser")
    assert blocker.args == [True]
    assert "dncnn" in tab.message.text()
    entry = tab.current_entry()
    assert entry is not None and entry.source == "user" and entry.name == "My denoiser"
    assert entry.path.parent == user_models_dir()
    assert "my-denoiser" in [e.id for e in w.options.entries()]
    tab.remove_selected(confirm=False)
    assert not entry.path.exists()
    assert "my-denoiser" not in [e.id for e in w.options.entries()]


def test_import_of_a_third_party_architecture(make_window, qtbot, tmp_path):
    """A Real-ESRGAN "Compact" .pth (recognised by spandrel) is stored as .safetensors and listed."""
    pytest.importorskip("spandrel")
    import importlib

    import torch

    srvgg = importlib.import_module("spandrel.architectures.Compact.__arch.SRVGG").SRVGGNetCompact
    net = srvgg(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    torch.save({"params": net.state_dict()}, tmp_path / "realesr-compact.pth")
    w = make_window()
    with qtbot.waitSignal(w.models_tab.importFinished, timeout=20_000) as blocker:
        w.models_tab.import_file(tmp_path / "realesr-compact.pth")
    assert blocker.args == [True], w.models_tab.message.text()
    assert "Compact" in w.models_tab.message.text()
    entry = w.models_tab.current_entry()
    assert entry.task == "sr" and entry.scale == 2 and entry.path.suffix == ".safetensors"
    from imgtrans.gui.models_tab import arch_label

    assert "Compact" in arch_label(entry)
    details = w.models_tab.details.text()  # the provenance `imgtrans info` states
    assert "third-party file, imported from realesr-compact.pth (sha256 " in details
    assert "unknown (imported file: check where it came from)" in details
    assert w.models_tab.select("photo2ukiyoe-a2b")
    details = w.models_tab.details.text()
    assert "weights by imgtrans (MIT)" in details and "ukiyoe: GPL-3+ 9 files" in details


def test_import_of_an_onnx_graph(make_window, qtbot, tmp_path):
    """An image-to-image ONNX file (0-255, any size, as fast-neural-style) imported in the Models tab:
    listed with what was detected and its provenance, offered for conversion."""
    pytest.importorskip("onnxruntime")
    from tests.test_onnx_models import Style255, _export, _seeded

    src = _export(_seeded(Style255(), 3), tmp_path / "candy.onnx")
    w = make_window()
    with qtbot.waitSignal(w.models_tab.importFinished, timeout=20_000) as blocker:
        w.models_tab.import_file(src, "Candy")
    assert blocker.args == [True], w.models_tab.message.text()
    entry = w.models_tab.current_entry()
    assert entry.name == "Candy" and entry.task == "style" and entry.path.suffix == ".onnx"
    from imgtrans.gui.models_tab import arch_label

    assert arch_label(entry) == "ONNX graph (x1, range 0-255, any size, sides multiple of 2)"
    details = w.models_tab.details.text()
    assert "third-party file, imported from candy.onnx (sha256 " in details
    assert "unknown (imported file: check where it came from)" in details
    assert "candy" in [e.id for e in w.options.entries()]


# ------------------------------------------------------------------------------------------- other


def test_many_signal_emits_leave_the_interpreter_alive(qtbot):
    """PySide6 6.12.0's Signal.emit drops a reference to True each time; on Python < 3.12 a long batch
    would abort the process ("bool_dealloc"). Every emit of the GUI goes through qtcompat.emit."""
    import sys

    from imgtrans.gui.queue_model import QueueModel

    model = QueueModel()
    model.add([(Path(f"/x/{i}.png"), Path("/x")) for i in range(3)], [])
    key = model.items[1].key
    before = sys.getrefcount(True)
    for _ in range(20_000):
        model.changed(key)
    assert sys.getrefcount(True) >= before - 10


def test_logging_about_and_main(qtbot, tmp_path):
    import logging

    from imgtrans.gui.about import DeviceInfo, about_html
    from imgtrans.gui.app import main, setup_logging
    from imgtrans.gui.window import MainWindow

    log_file = setup_logging()
    logging.getLogger("imgtrans.gui.test").warning("hello from the test")
    for h in logging.getLogger().handlers:
        h.flush()
    assert log_file.parent.parent == Path(os.environ["IMGTRANS_HOME"])
    assert "hello from the test" in log_file.read_text()
    text = about_html(DeviceInfo(torch="2.x", device="CPU (2 threads)"), str(log_file))
    assert "imgtrans" in text and "PySide6" in text and "CPU (2 threads)" in text

    img = write_rgb(tmp_path / "one.png", 32, 32)
    seen = []

    def close_windows():
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow):
                seen.append(len(widget.queue.items))
                widget.close()

    QTimer.singleShot(1500, close_windows)
    assert main([str(img)]) == 0
    assert seen == [1]
    for h in list(logging.getLogger().handlers):
        if getattr(h, "_imgtrans_gui", False):
            logging.getLogger().removeHandler(h)
            h.close()


# ------------------------------------------------------------------------------------------- train


def test_train_tab_runs_stops_resumes_and_exports(make_window, qtbot, tmp_path, monkeypatch):
    pytest.importorskip("imgtrans.training.loop")
    import dataclasses

    from imgtrans.gui.train_tab import TrainTab

    real_build = TrainTab.build_config
    # the tab's own options, with networks shrunk so that a few iterations take a moment
    monkeypatch.setattr(TrainTab, "build_config", lambda self: dataclasses.replace(
        real_build(self), ngf=8, n_blocks=2, ndf=8, size=32, tensorboard=False))
    for domain, offset in (("A", 0), ("B", 50)):
        for i in range(6):
            write_rgb(tmp_path / domain / f"{i}.png", 48, 48, seed=offset + i)
    w = make_window()
    tab = w.train_tab
    assert tab is not None
    w.tabs.setCurrentWidget(tab)
    tab.task_combo.setCurrentIndex(tab.task_combo.findData("cyclegan"))
    tab.domain_a_edit.setText(str(tmp_path / "A"))
    tab.domain_b_edit.setText(str(tmp_path / "B"))
    tab.name_edit.setText("gui-run")
    tab.preset_combo.setCurrentIndex(tab.preset_combo.findData("cpu-tiny"))
    tab.steps_spin.setValue(3)
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))
    assert tab.start_button.text() == "Start training"

    def stop_on_first_step(e):
        from imgtrans.training import events as ev

        if isinstance(e, ev.Step) and tab.thread is not None:
            tab.stop()

    with qtbot.waitSignal(tab.stopped, timeout=60_000):
        tab.start()
        tab.thread.event.connect(stop_on_first_step)
    log_text = tab.log_view.toPlainText()
    assert "domain A:" in log_text and "usable" in log_text  # the data check report
    assert "Stopped at iteration" in tab.progress_label.text()
    assert tab.plot.series  # live losses arrived
    assert tab.start_button.text() == "Resume training"

    with qtbot.waitSignal(tab.stopped, timeout=60_000):
        tab.start()
    assert "Finished after 3 iterations" in tab.progress_label.text(), tab.log_view.toPlainText()
    assert "from iteration" in tab.log_view.toPlainText()  # it resumed
    qtbot.waitUntil(tab.samples.has_images, timeout=5000)  # the latest sample grid
    ids = [e.id for e in w.options.entries()]
    assert any(i.startswith("gui-run") for i in ids), ids  # the exported model joined the lists


def test_no_display_is_said_instead_of_a_qt_abort(capsys, monkeypatch):
    from imgtrans.gui.app import display_problem, main

    assert display_problem({}, "linux").startswith("no display")
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "win32") is None and display_problem({}, "darwin") is None
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([]) == 2
    assert "imgtrans convert" in capsys.readouterr().err
