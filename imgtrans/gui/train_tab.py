"""The Train tab: pick folders (or, to learn a style from a painting, the painting and a folder of
photos: the fetched landscape photos when present), a name and a preset; watch the data report, live
losses and the latest sample grid; stop (a checkpoint is saved) and resume. Finished runs export their
model(s) to the user models folder, and the model lists refresh with the new model selected.

The trainer is :func:`imgtrans.training.loop.train`, a generator of events, consumed in a QThread;
Stop sets its cancel flag (it finishes the iteration, saves a checkpoint and ends).
"""

from __future__ import annotations

import html
import json
import logging
import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QFontDatabase, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgtrans.engine import IMAGE_SUFFIXES
from imgtrans.gui import tasks
from imgtrans.gui.compare_view import CompareView
from imgtrans.gui.imaging import load_display, probe
from imgtrans.gui.loss_plot import LossPlot
from imgtrans.gui.path_rows import file_row, folder_row
from imgtrans.gui.progress_panel import eta_text
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.settings import Settings
from imgtrans.gui.widgets import MessageBar
from imgtrans.paths import fetched_data_dir, runs_dir
from imgtrans.training import events as ev
from imgtrans.training.config import PRESETS, SECONDS_PER_IT, resolve

log = logging.getLogger(__name__)

TRAIN_TASKS = {"style": "Learn a style from a painting", "cyclegan": "Style transfer between two folders (CycleGAN)",
               "sr": "Super-resolution", "denoise": "Denoise"}
STEP_INTERVAL = 0.05  # seconds between forwarded Step events
PAINTING_PREVIEW_PX = 120


def fetched_landscapes() -> Path | None:
    """The landscape photos the training recipes learn styles on (``domains/landscape`` of the data
    that ``training/data/fetch.py`` fetched), when that folder is there and holds images."""
    folder = fetched_data_dir() / "domains" / "landscape"
    try:
        with os.scandir(folder) as it:
            if any(Path(e.name).suffix.lower() in IMAGE_SUFFIXES for e in it):
                return folder
    except OSError:
        pass
    return None


class TrainThread(QThread):
    event = Signal(object)
    error = Signal(str)
    run_done = Signal(object)  # the Done event, or None when training stopped on an error

    def __init__(self, cfg, parent=None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.cancel_event = threading.Event()

    def run(self) -> None:
        done = None
        tasks.background_priority(self)
        try:
            from imgtrans.training.errors import TrainingError
            from imgtrans.training.loop import train  # torch: imported here, in the worker

            last = 0.0
            try:
                for e in train(self.cfg, self.cancel_event, resume="auto"):
                    if isinstance(e, ev.Step):
                        now = time.monotonic()
                        if now - last < STEP_INTERVAL:
                            continue
                        last = now
                    if isinstance(e, ev.Done):
                        done = e
                    emit(self.event, e)
            except (TrainingError, ValueError, OSError) as exc:
                emit(self.error, str(exc))
        except Exception as exc:  # shown in the tab, never a crash
            log.exception("training crashed")
            emit(self.error, f"Training stopped: {type(exc).__name__}: {exc}")
        finally:
            emit(self.run_done, done)


def _model_id(path: Path) -> str:
    """The catalog id of an exported model file (its ``id`` metadata, else its file name)."""
    from imgtrans.catalog import read_safetensors_metadata

    try:
        return read_safetensors_metadata(path).get("id") or path.stem
    except (OSError, ValueError):
        return path.stem


def _model_label(path: Path) -> str:
    """How an exported model appears in the model list: its name, and the id the command line takes."""
    from imgtrans.catalog import read_safetensors_metadata

    try:
        meta = read_safetensors_metadata(path)
    except (OSError, ValueError):
        meta = {}
    ident = meta.get("id") or path.stem
    return f"{meta.get('name') or ident} (id {ident})"


class TrainTab(QWidget):
    modelExported = Signal(object)  # noqa: N815 - id to select or None
    stopped = Signal()  # a run ended (finished, stopped or failed)

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.thread: TrainThread | None = None
        self._total = 0
        self._start_step = 0
        self._sec_per_it: float | None = None
        self._sample_token = 0
        self._painting_token = 0  # the latest painting preview asked for; older answers are dropped
        self._finished: set[str] = set()  # runs that ran to their end in this session
        self._build()
        self._load()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.message = MessageBar()
        left = self._build_left(self._build_run_box())
        right = self._build_right()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([400, 900])
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)
        self._connect()

    def _build_run_box(self) -> QGroupBox:
        """The run's options: task, its folders (or painting and photos), scale, name, preset, length, device."""
        box = QGroupBox("Training run")
        form = self._form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._make_run_fields()
        self._add_run_rows(form)
        return box

    def _make_run_fields(self) -> None:
        """The option widgets, not yet in the form."""
        self.task_combo = QComboBox()
        for key, label in TRAIN_TASKS.items():
            self.task_combo.addItem(label, key)
        self.domain_a_edit = QLineEdit()
        self.domain_a_edit.setPlaceholderText("folder of images of style A (e.g. photos)")
        self.domain_b_edit = QLineEdit()
        self.domain_b_edit.setPlaceholderText("folder of images of style B (e.g. paintings)")
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("folder of clean, sharp photos")
        self.painting_edit = QLineEdit()
        self.painting_edit.setPlaceholderText("the painting whose style to learn (an image file)")
        self.painting_preview = QLabel()  # the chosen painting, small, or why it cannot be used
        self.painting_preview.setWordWrap(True)
        self.painting_preview.setTextFormat(Qt.TextFormat.PlainText)
        self.painting_preview.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.landscapes_button = QToolButton()
        self.landscapes_button.setText("Landscapes")
        self.landscapes_button.setToolTip("Use the landscape photos fetched for the training recipes "
                                          "(training/data/fetch.py)")
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(2, 8)
        self.scale_spin.setPrefix("\u00d7")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("a name for the run and the model")
        self.preset_combo = QComboBox()
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 10_000_000)
        self.steps_spin.setSingleStep(500)
        self.steps_spin.setSuffix(" iterations")
        self.steps_spin.setSpecialValueText("as the preset says")
        self.device_combo = QComboBox()
        for key, label in (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)")):
            self.device_combo.addItem(label, key)

    def _add_run_rows(self, form: QFormLayout) -> None:
        """The form's rows; the folder/painting rows are in ``self._rows``, shown per task by ``_task_changed``."""
        form.addRow("&Task:", self.task_combo)
        self.domain_a_label = QLabel("Domain &A:")
        self.domain_a_label.setBuddy(self.domain_a_edit)
        self.domain_b_label = QLabel("Domain &B:")
        self.domain_b_label.setBuddy(self.domain_b_edit)
        self.data_label = QLabel("&Images:")
        self.data_label.setBuddy(self.data_edit)
        self.painting_label = QLabel("Pa&inting:")
        self.painting_label.setBuddy(self.painting_edit)
        self.scale_label = QLabel("&Scale:")
        self.scale_label.setBuddy(self.scale_spin)
        self._rows = {
            "painting": (self.painting_label, file_row(self.painting_edit, "Painting", self)),
            "a": (self.domain_a_label, folder_row(self.domain_a_edit, "Domain A folder", self)),
            "b": (self.domain_b_label, folder_row(self.domain_b_edit, "Domain B folder", self)),
            "data": (self.data_label, folder_row(self.data_edit, "Training images folder", self)),
        }
        self._rows["data"][1].addWidget(self.landscapes_button)
        for key, (label, row) in self._rows.items():
            form.addRow(label, row)
            if key == "painting":
                form.addRow("", self.painting_preview)
        form.addRow(self.scale_label, self.scale_spin)
        form.addRow("&Name:", self.name_edit)
        form.addRow("&Preset:", self.preset_combo)
        form.addRow("&Length:", self.steps_spin)
        form.addRow("&Device:", self.device_combo)

    def _build_left(self, box: QGroupBox) -> QWidget:
        """The run's options, Start and Stop, and the log."""
        style = self.style()
        self.start_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start training")
        self.stop_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
        self.stop_button.setToolTip("Finish the current iteration, save a checkpoint and stop; "
                                    "Resume continues from it.")
        self.stop_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.stop_button)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setPlaceholderText("The data check report and training messages appear here.")
        self.log_view.setMaximumBlockCount(5000)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(box)
        ll.addLayout(buttons)
        ll.addWidget(QLabel("Data check and log:"))
        ll.addWidget(self.log_view, 1)
        return left

    def _build_right(self) -> QWidget:
        """Progress, losses so far (label and plot) and the latest sample grid."""
        self.progress_label = QLabel("Not running.")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.losses_label = QLabel()
        self.losses_label.setWordWrap(True)
        self.plot = LossPlot()
        self.samples = CompareView()
        self.samples.show_message("The latest sample grid appears here during training:\n"
                                  "inputs and what the model currently makes of them.")
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.plot)
        right_split.addWidget(self.samples)
        right_split.setStretchFactor(0, 2)
        right_split.setStretchFactor(1, 3)
        right_split.setChildrenCollapsible(False)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.progress_label)
        rl.addWidget(self.progress_bar)
        rl.addWidget(self.losses_label)
        rl.addWidget(right_split, 1)
        return right

    def _connect(self) -> None:
        """Options save themselves as they change; the task and the painting update what depends on them."""
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        self.name_edit.textChanged.connect(self._update_start_label)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        for w in (self.domain_a_edit, self.domain_b_edit, self.data_edit, self.name_edit, self.painting_edit):
            w.editingFinished.connect(self._save)
        self.painting_edit.editingFinished.connect(self._painting_changed)
        self.landscapes_button.clicked.connect(self._use_landscapes)
        for signal in (self.preset_combo.currentIndexChanged, self.steps_spin.valueChanged,
                       self.device_combo.currentIndexChanged, self.scale_spin.valueChanged):
            signal.connect(self._save)

    # -- settings -----------------------------------------------------------------------------
    def _load(self) -> None:
        s = self.settings
        self._loading = True
        i = self.task_combo.findData(s.get_str("train/task", "style", tuple(TRAIN_TASKS)))
        self.task_combo.setCurrentIndex(max(0, i))
        self.domain_a_edit.setText(s.get_str("train/domain_a"))
        self.domain_b_edit.setText(s.get_str("train/domain_b"))
        self.data_edit.setText(s.get_str("train/data"))
        self.painting_edit.setText(s.get_str("train/painting"))
        self.name_edit.setText(s.get_str("train/name", "my-style"))
        self.steps_spin.setValue(s.get_int("train/steps", 2000, 0, 10_000_000))
        self.scale_spin.setValue(s.get_int("train/scale", 4, 2, 8))
        j = self.device_combo.findData(s.get_str("train/device", "auto"))
        self.device_combo.setCurrentIndex(max(0, j))
        self._task_changed()
        self._loading = False
        self._painting_changed()

    def _save(self) -> None:
        if getattr(self, "_loading", False):
            return
        s = self.settings
        s.set("train/task", self.task_combo.currentData())
        s.set("train/domain_a", self.domain_a_edit.text().strip())
        s.set("train/domain_b", self.domain_b_edit.text().strip())
        s.set("train/data", self.data_edit.text().strip())
        s.set("train/painting", self.painting_edit.text().strip())
        s.set("train/name", self.name_edit.text().strip())
        s.set("train/preset", self.preset_combo.currentData() or "")
        s.set("train/steps", self.steps_spin.value())
        s.set("train/scale", self.scale_spin.value())
        s.set("train/device", self.device_combo.currentData())

    def _task_changed(self) -> None:
        task = self.task_combo.currentData()
        style = task == "style"
        shown = {"painting": style, "a": task == "cyclegan", "b": task == "cyclegan", "data": task != "cyclegan"}
        for key, (_label, row) in self._rows.items():
            self._form.setRowVisible(row, shown[key])  # the whole row: no gap where a hidden one was
        self._show_preview(style)
        landscapes = fetched_landscapes() if style else None
        self.landscapes_button.setVisible(landscapes is not None)
        if landscapes is not None and not self.data_edit.text().strip():
            self.data_edit.setText(str(landscapes))
        self.data_label.setText("&Photos:" if style else "&Images:")
        self.data_edit.setPlaceholderText("folder of photos to learn the style on" if style
                                          else "folder of clean, sharp photos")
        self._form.setRowVisible(self.scale_spin, task == "sr")
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        for preset in PRESETS[task]:
            speed = SECONDS_PER_IT.get(task, {}).get(preset, "")
            self.preset_combo.addItem(f"{preset} \u2014 {speed} per iteration on a 2-core CPU" if speed else preset,
                                      preset)
        wanted = self.settings.get_str("train/preset", "cpu-small")
        k = self.preset_combo.findData(wanted)
        self.preset_combo.setCurrentIndex(k if k >= 0 else max(0, self.preset_combo.findData("cpu-small")))
        self.preset_combo.blockSignals(False)
        self._save()
        self._update_start_label()

    def _run_has_checkpoints(self) -> bool:
        name = self.name_edit.text().strip()
        if not name or "/" in name or "\\" in name:
            return False
        folder = runs_dir() / name / "checkpoints"
        try:
            return folder.is_dir() and any(folder.iterdir())
        except OSError:
            return False

    def _update_start_label(self) -> None:
        resume = self._run_has_checkpoints()
        complete = resume and self.name_edit.text().strip() in self._finished
        if complete:
            self.start_button.setText("Train further")
            self.start_button.setToolTip("This run is complete: raise its length to continue it, or pick a new name")
        else:
            self.start_button.setText("Resume training" if resume else "Start training")
            self.start_button.setToolTip("Continue this run from its latest checkpoint" if resume
                                         else "Start a new run")

    # -- running ------------------------------------------------------------------------------
    def build_config(self):
        """The run's options, as the command line would resolve them (stored options of a run being
        resumed, then what is chosen here). Raises ValueError with a readable message."""
        task = self.task_combo.currentData()
        name = self.name_edit.text().strip()
        if not name:
            raise ValueError("Give the run a name.")
        explicit = {"name": name, "preset": self.preset_combo.currentData(), "device": self.device_combo.currentData()}
        if self.steps_spin.value():
            explicit["steps"] = self.steps_spin.value()
            explicit["sample_every"] = max(1, min(200, self.steps_spin.value() // 20))
        if task == "cyclegan":
            a, b = self.domain_a_edit.text().strip(), self.domain_b_edit.text().strip()
            if not a or not b:
                raise ValueError("Choose a folder for domain A and one for domain B.")
            explicit.update(domain_a=a, domain_b=b)
        else:
            if task == "style":
                painting = self.painting_edit.text().strip()
                if not painting:
                    raise ValueError("Choose the painting whose style to learn.")
                path = Path(painting).expanduser()
                if not path.is_file():
                    raise ValueError(f"The painting {painting} does not exist.")
                explicit["style_images"] = [str(path)]
            data = self.data_edit.text().strip()
            if not data:
                raise ValueError("Choose the folder of photos to learn the style on." if task == "style"
                                 else "Choose the folder of training images.")
            explicit["data"] = data
            if task == "sr":
                explicit["scale"] = self.scale_spin.value()
        stored = None
        config = runs_dir() / name / "config.json"
        if config.is_file():
            try:
                stored = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                stored = None
            if stored and stored.get("task", task) != task:
                raise ValueError(f"The run \u201c{name}\u201d is a {TRAIN_TASKS.get(stored['task'], stored['task'])} "
                                 "run; pick another name.")
        return resolve(task, explicit, stored)

    def _painting_changed(self) -> None:
        """Show the chosen painting small under its field (decoded in a worker), or why it cannot be used."""
        self._painting_token += 1
        token, text = self._painting_token, self.painting_edit.text().strip()
        self.painting_preview.clear()
        self._show_preview(False)
        if not text:
            return
        path = Path(text).expanduser()

        def shown(result) -> None:
            if token != self._painting_token:
                return
            if result.error or result.thumb is None:
                self.painting_preview.setText(f"This file cannot be used: {result.error or 'it does not decode'}")
            else:
                self.painting_preview.setPixmap(QPixmap.fromImage(result.thumb))
                self.painting_preview.setToolTip(f"{path.name}: {result.width}\u00d7{result.height}")
            self._show_preview(self.task_combo.currentData() == "style")

        if not path.is_file():
            self.painting_preview.setText("No such file.")
            self._show_preview(self.task_combo.currentData() == "style")
            return
        tasks.submit(probe, path, PAINTING_PREVIEW_PX, done=shown,
                     error=lambda exc: log.warning("painting %s: %s", path, exc))

    def _show_preview(self, style: bool) -> None:
        """The painting's preview row: shown in style mode once there is a picture or a message."""
        has = bool(self.painting_preview.text()) or not self.painting_preview.pixmap().isNull()
        self._form.setRowVisible(self.painting_preview, style and has)

    def _use_landscapes(self) -> None:
        folder = fetched_landscapes()
        if folder is not None:
            self.data_edit.setText(str(folder))
            self._save()

    def start(self) -> None:
        if self.thread is not None:
            return
        try:
            cfg = self.build_config()
        except ValueError as exc:
            self.message.show_message(html.escape(str(exc)), "warning")
            return
        self._save()
        self.message.hide()
        resuming = self._run_has_checkpoints()
        if not resuming:
            self.log_view.clear()
            self.plot.clear()
        self.log_view.appendPlainText(f"{'Resuming' if resuming else 'Starting'} {cfg.task} run \u201c{cfg.name}\u201d "
                                      f"(preset {cfg.preset})\u2026")
        self._sec_per_it = None
        self.thread = TrainThread(cfg, self)
        self.thread.event.connect(self._on_event)
        self.thread.error.connect(self._on_error)
        self.thread.run_done.connect(self._on_done)
        self._set_running(True)
        self.progress_label.setText("Checking the data\u2026")
        log.info("training %s run %s", cfg.task, cfg.name)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.cancel_event.set()
            self.stop_button.setEnabled(False)
            self.progress_label.setText("Stopping after this iteration and saving a checkpoint\u2026")

    def is_running(self) -> bool:
        return self.thread is not None

    def shutdown(self) -> None:
        """Window closing: stop and wait for the checkpoint (the window asks first when it would be long)."""
        if self.thread is not None:
            self.thread.cancel_event.set()
            self.thread.wait()

    def _set_running(self, running: bool) -> None:
        for w in (self.task_combo, self.domain_a_edit, self.domain_b_edit, self.data_edit, self.name_edit,
                  self.preset_combo, self.steps_spin, self.device_combo, self.scale_spin, self.painting_edit,
                  *(row.itemAt(k).widget() for _, row in self._rows.values() for k in range(row.count()))):
            w.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _on_event(self, e) -> None:
        if isinstance(e, ev.Step):
            self.plot.add(e.step, e.losses)
            self._sec_per_it = e.seconds if self._sec_per_it is None else 0.9 * self._sec_per_it + 0.1 * e.seconds
            self.progress_bar.setValue(e.step)
            left = (self._total - e.step) * (self._sec_per_it or 0)
            self.progress_label.setText(f"Iteration {e.step} of {self._total} \u00b7 epoch {e.epoch + 1} \u00b7 "
                                        f"{self._sec_per_it:.2f} s/iteration \u00b7 {eta_text(left)}")
            self.losses_label.setText("Losses: " + ", ".join(f"{k} {v:.3f}" for k, v in e.losses.items()))
        elif isinstance(e, ev.DataChecked):
            self.log_view.appendPlainText("\n".join(e.lines))
        elif isinstance(e, ev.Info):
            self.log_view.appendPlainText(e.message)
        elif isinstance(e, ev.Warning):
            self.log_view.appendPlainText(f"Warning: {e.message}")
        elif isinstance(e, ev.Started):
            self._total, self._start_step = e.total_steps, e.start_step
            self.progress_bar.setRange(0, max(1, e.total_steps))
            self.progress_bar.setValue(e.start_step)
            where = f" from iteration {e.start_step}" if e.resumed_from else ""
            self.log_view.appendPlainText(f"Run folder: {e.run_dir}\nTraining{where}\u2026")
            self.progress_label.setText(f"Iteration {e.start_step} of {e.total_steps}: starting\u2026")
        elif isinstance(e, ev.SampleSaved):
            self._show_sample(e.step, e.path)
        elif isinstance(e, ev.Evaluated):
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in e.metrics.items())
            self.log_view.appendPlainText(f"Evaluation at iteration {e.step}: {metrics}")
        elif isinstance(e, ev.CheckpointSaved):
            self.log_view.appendPlainText(f"Checkpoint saved at iteration {e.step} ({e.reason}).")
        elif isinstance(e, ev.Exported):
            names = ", ".join(_model_label(p) for p in e.paths)
            self.log_view.appendPlainText(f"Model saved: {names}. It is in the model list now.")
            self.message.show_message(f"Training finished: {html.escape(names)} is now in the model list "
                                      "(Convert tab and Models tab).", "info")
            emit(self.modelExported, _model_id(e.paths[0]) if e.paths else None)
        elif isinstance(e, ev.Done):
            self.progress_bar.setValue(e.step)
            if e.reason == "finished" and self.thread is not None:
                self._finished.add(self.thread.cfg.name)
            text = (f"Finished after {e.step} iterations." if e.reason == "finished"
                    else f"Stopped at iteration {e.step}; Resume continues from the checkpoint.")
            self.progress_label.setText(text)
            self.log_view.appendPlainText(text)

    def _show_sample(self, step: int, path: Path) -> None:
        self._sample_token += 1
        token = self._sample_token

        def shown(image) -> None:
            if token == self._sample_token:
                self.samples.set_images(image, None, (f"Samples at iteration {step}", ""), keep_view=True)

        tasks.submit(load_display, path, done=shown, error=lambda exc: log.warning("sample %s: %s", path, exc))

    def _on_error(self, text: str) -> None:
        log.warning("training: %s", text)
        self.message.show_message(html.escape(text), "error")
        self.log_view.appendPlainText(f"Error: {text}")
        self.progress_label.setText("Stopped by an error (see above).")

    def _on_done(self, _done) -> None:
        thread, self.thread = self.thread, None
        if thread is not None:
            thread.wait(5000)
            thread.deleteLater()
        self._set_running(False)
        self._update_start_label()
        emit(self.stopped)
