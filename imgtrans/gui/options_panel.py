"""Task, model and options, remembered in QSettings as soon as they change.

The catalog is read without torch (safetensors headers only), so filling the lists is instant.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgtrans.catalog import (
    CatalogEntry,
    list_models,
    read_safetensors_metadata,
    style_strength_supported,
    takes_noise_input,
)
from imgtrans.channels import DEFAULT_STYLE_SIZE
from imgtrans.engine import ConvertOptions
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.settings import BACKENDS, DEVICES, FORMATS, TILE_MODES, Settings
from imgtrans.gui.widgets import PaintingView

TASKS = (("sr", "Super-resolution (upscale)"), ("denoise", "Denoise"), ("style", "Style transfer"))
TASK_NAMES = dict(TASKS) | {"unknown": "Other models"}
FORMAT_LABELS = {"same": "Same as input", "png": "PNG", "jpg": "JPEG", "webp": "WebP", "tiff": "TIFF"}
DEVICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}
BACKEND_LABELS = {"auto": "Automatic (fastest known)", "eager": "PyTorch", "compile": "PyTorch compiled",
                  "onnx": "ONNX Runtime"}
TILE_LABELS = {"auto": "Automatic", "off": "Whole image", "manual": "Fixed size"}


def takes_noise_level(entry: CatalogEntry | None) -> bool:
    """Whether a model has a denoise-strength input, from its safetensors header (no torch)."""
    if entry is None or entry.path.suffix.lower() != ".safetensors":
        return False
    try:
        return bool(takes_noise_input(read_safetensors_metadata(entry.path)))
    except (OSError, ValueError):
        return False


def name_suffix(text: str) -> str:
    """What the user typed as a file-name suffix, without what a file name cannot hold (path
    separators, control and reserved characters) and without surrounding spaces."""
    return "".join(ch for ch in text.strip() if ch.isprintable() and ch not in '/\\:*?"<>|')


def _combo(labels: dict[str, str]) -> QComboBox:
    box = QComboBox()
    for key, label in labels.items():
        box.addItem(label, key)
    return box


def _buddy(text: str, widget: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def _set_data(box: QComboBox, value) -> None:
    i = box.findData(value)
    if i >= 0:
        box.setCurrentIndex(i)


class OptionsPanel(QWidget):
    changed = Signal()
    recursiveChanged = Signal(bool)  # noqa: N815
    modelChanged = Signal()  # noqa: N815

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._entries: list[CatalogEntry] = []
        self._style_strength_ok = False  # the current model takes the style strength (read at each model change)
        self._loading = True
        self._build()
        self._load()
        self._loading = False
        self._update_enabled()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        for box in (self._build_model_box(), self._build_processing_box(), self._build_output_box()):
            outer.addWidget(box)
        outer.addStretch(1)
        self._connect()

    def _build_model_box(self) -> QGroupBox:
        """Task, model (with its painting and description) and the model's own settings: denoise
        strength, style strength and style scale, each row shown only for the models that take it."""
        model_box = QGroupBox("Task and model")
        form = QFormLayout(model_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.task_combo = QComboBox()
        self.task_combo.setAccessibleName("Task")
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.model_info.setTextFormat(Qt.TextFormat.RichText)
        self.model_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.model_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.painting = PaintingView(96)  # the painting a style model learnt from, when its file carries one
        form.addRow("&Task:", self.task_combo)
        form.addRow("&Model:", self.model_combo)
        form.addRow(self.painting)
        form.addRow(self.model_info)
        self._add_strength_row(form)
        self._add_style_strength_row(form)
        self._add_style_size_row(form)
        return model_box

    def _add_strength_row(self, form: QFormLayout) -> None:
        """Denoise strength: a slider and spin box kept equal, and Auto (measure each image's noise)."""
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, 100)
        self.strength_spin = QSpinBox()
        self.strength_spin.setRange(0, 100)
        self.strength_spin.setToolTip("Noise level (sigma on the 0-255 scale) the model removes. "
                                      "Higher removes more noise and more fine detail.")
        self.strength_slider.valueChanged.connect(self.strength_spin.setValue)
        self.strength_spin.valueChanged.connect(self.strength_slider.setValue)
        self.strength_auto = QCheckBox("A&uto")
        self.strength_auto.setToolTip("Measure the noise of each image and remove that much (the level used "
                                      "is shown per image in the queue and recorded in the output; a "
                                      "one-channel model gets each colour channel's own level). Untick to "
                                      "set the strength by hand.")
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength_auto)
        strength_row.addWidget(self.strength_slider, 1)
        strength_row.addWidget(self.strength_spin)
        self.strength_label = QLabel("&Strength:")
        self.strength_label.setBuddy(self.strength_spin)
        self.strength_widget = QWidget()
        self.strength_widget.setLayout(strength_row)
        strength_row.setContentsMargins(0, 0, 0, 0)
        form.addRow(self.strength_label, self.strength_widget)

    def _add_style_strength_row(self, form: QFormLayout) -> None:
        """Style strength in percent: a slider and spin box kept equal."""
        self.style_strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.style_strength_slider.setRange(0, 100)
        self.style_strength_slider.setAccessibleName("Style strength")
        self.style_strength_spin = QSpinBox()
        self.style_strength_spin.setRange(0, 100)
        self.style_strength_spin.setSuffix(" %")
        self.style_strength_spin.setAccessibleName("Style strength")
        tip = ("How much of the style to apply: 0 % gives your image unchanged, 100 % the full style "
               "as the model learnt it. Lower it to tone the style down without retraining.")
        self.style_strength_slider.setToolTip(tip)
        self.style_strength_spin.setToolTip(tip)
        self.style_strength_slider.valueChanged.connect(self.style_strength_spin.setValue)
        self.style_strength_spin.valueChanged.connect(self.style_strength_slider.setValue)
        style_strength_row = QHBoxLayout()
        style_strength_row.setContentsMargins(0, 0, 0, 0)
        style_strength_row.addWidget(self.style_strength_slider, 1)
        style_strength_row.addWidget(self.style_strength_spin)
        self.style_strength_widget = QWidget()
        self.style_strength_widget.setLayout(style_strength_row)
        self.style_strength_label = QLabel("Style stre&ngth:")
        self.style_strength_label.setBuddy(self.style_strength_spin)
        form.addRow(self.style_strength_label, self.style_strength_widget)

    def _add_style_size_row(self, form: QFormLayout) -> None:
        """Style scale: the long side a style model paints on (0: full resolution)."""
        self.style_size_spin = QSpinBox()
        self.style_size_spin.setAccessibleName("Style scale")
        self.style_size_spin.setRange(0, 8192)
        self.style_size_spin.setSingleStep(128)
        self.style_size_spin.setSuffix(" px")
        self.style_size_spin.setSpecialValueText("Full resolution")
        self.style_size_spin.setToolTip(
            "Long side of the picture the style model paints on; the result is resized back to the size "
            "of your image. Smaller gives bigger brush strokes. At full resolution a large photo gets "
            "very fine strokes and takes much longer.")
        self.style_size_label = QLabel("St&yle scale:")
        self.style_size_label.setBuddy(self.style_size_spin)
        form.addRow(self.style_size_label, self.style_size_spin)

    def _build_processing_box(self) -> QGroupBox:
        """Tiles, device and backend."""
        run_box = QGroupBox("Processing")
        form2 = QFormLayout(run_box)
        form2.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.tile_combo = _combo(TILE_LABELS)
        self.tile_combo.setToolTip("Large images are processed in tiles to fit in memory. Automatic picks the "
                                   "size from the free memory; results are identical either way.")
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(64, 8192)
        self.tile_spin.setSingleStep(64)
        self.tile_spin.setSuffix(" px")
        tile_row = QHBoxLayout()
        tile_row.setContentsMargins(0, 0, 0, 0)
        tile_row.addWidget(self.tile_combo, 1)
        tile_row.addWidget(self.tile_spin)
        form2.addRow(_buddy("T&iles:", self.tile_combo), tile_row)
        self.device_combo = _combo(DEVICE_LABELS)
        self.device_combo.setToolTip("Automatic uses a CUDA GPU when there is one, else the CPU.")
        form2.addRow("&Device:", self.device_combo)
        self.backend_combo = _combo(BACKEND_LABELS)
        self.backend_combo.setToolTip(
            "How the network runs. Automatic picks what measured fastest for the model and device.\n"
            "PyTorch compiled: faster on some models, but the first image waits for the compiler.\n"
            "ONNX Runtime: fast and light on the CPU (pip install 'imgtrans[fast]').")
        self._mark_onnx_availability()
        form2.addRow("&Backend:", self.backend_combo)
        return run_box

    def _build_output_box(self) -> QGroupBox:
        """Output folder, format and quality, name suffix, what to do with existing files, folder structure."""
        out_box = QGroupBox("Output")
        form3 = QFormLayout(out_box)
        form3.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.output_edit = QLineEdit()
        self.output_edit.setAcceptDrops(False)  # a drop anywhere queues files; never type a URL here
        self.output_edit.setAccessibleName("Output folder")
        self.browse_button = QToolButton()
        self.browse_button.setText("\u2026")
        self.browse_button.setToolTip("Choose the output folder")
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.output_edit, 1)
        folder_row.addWidget(self.browse_button)
        form3.addRow(_buddy("&Folder:", self.output_edit), folder_row)
        self.format_combo = _combo(FORMAT_LABELS)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setPrefix("quality ")
        self.quality_spin.setToolTip("JPEG quality (1-100)")
        fmt_row = QHBoxLayout()
        fmt_row.setContentsMargins(0, 0, 0, 0)
        fmt_row.addWidget(self.format_combo, 1)
        fmt_row.addWidget(self.quality_spin)
        form3.addRow(_buddy("F&ormat:", self.format_combo), fmt_row)
        self.suffix_edit = QLineEdit()
        self.suffix_edit.setAccessibleName("Name suffix")
        self.suffix_edit.setPlaceholderText("none (e.g. _x2)")
        self.suffix_edit.setMaxLength(40)
        self.suffix_edit.setToolTip("Added to every output's file name: photo.jpg becomes photo_x2.jpg. With a suffix "
                                    "the outputs can go into the folder of their originals.")
        form3.addRow(_buddy("Name suffi&x:", self.suffix_edit), self.suffix_edit)
        self.existing_combo = QComboBox()
        self.existing_combo.addItem("Skip (keep the existing file)", False)
        self.existing_combo.addItem("Overwrite", True)
        form3.addRow("If it &exists:", self.existing_combo)
        self.keep_tree_check = QCheckBox("&Keep the folder structure")
        self.keep_tree_check.setToolTip("Images from sub-folders go to the same sub-folders of the output folder.")
        self.recursive_check = QCheckBox("Include s&ub-folders of added folders")
        form3.addRow(self.keep_tree_check)
        form3.addRow(self.recursive_check)
        return out_box

    def _connect(self) -> None:
        """Every option saves itself as it changes; task and model changes refill what depends on them."""
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.browse_button.clicked.connect(self.browse_output)
        self.output_edit.editingFinished.connect(self._save)
        self.suffix_edit.editingFinished.connect(self._save)
        for signal in (self.strength_spin.valueChanged, self.strength_auto.toggled,
                       self.style_strength_spin.valueChanged,
                       self.style_size_spin.valueChanged, self.tile_combo.currentIndexChanged,
                       self.tile_spin.valueChanged,
                       self.device_combo.currentIndexChanged, self.backend_combo.currentIndexChanged,
                       self.format_combo.currentIndexChanged,
                       self.quality_spin.valueChanged, self.existing_combo.currentIndexChanged,
                       self.keep_tree_check.toggled):
            signal.connect(self._save)
        self.recursive_check.toggled.connect(self._recursive_toggled)

    # -- catalog ------------------------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        """Re-read the catalog (after an import, a removal or training) and keep or set the choice."""
        self._entries = list_models()
        task = self.current_task()
        if select:
            chosen = next((e for e in self._entries if e.id == select), None)
            if chosen is not None:
                task = chosen.task
                self.settings.set(f"model/{task}", chosen.id)
        was = self._loading
        self._loading = True
        self.task_combo.clear()
        tasks = list(TASKS)
        if any(e.task not in dict(TASKS) for e in self._entries):
            tasks.append(("unknown", TASK_NAMES["unknown"]))
        for key, label in tasks:
            n = sum(1 for e in self._entries if self._task_of(e) == key)
            self.task_combo.addItem(f"{label}" + ("" if n else "  (no models yet)"), key)
        _set_data(self.task_combo, task)
        self._loading = was
        self._fill_models()

    @staticmethod
    def _task_of(entry: CatalogEntry) -> str:
        return entry.task if entry.task in dict(TASKS) else "unknown"

    def entries(self) -> list[CatalogEntry]:
        return list(self._entries)

    def current_task(self) -> str:
        return self.task_combo.currentData() or self.settings.get_str("task", "sr")

    def current_entry(self) -> CatalogEntry | None:
        ref = self.model_combo.currentData()
        return next((e for e in self._entries if e.id == ref), None)

    def model_ref(self) -> str | None:
        return self.model_combo.currentData()

    def _fill_models(self) -> None:
        was = self._loading
        self._loading = True
        self.model_combo.clear()
        task = self.current_task()
        entries = [e for e in self._entries if self._task_of(e) == task]
        for e in entries:
            self.model_combo.addItem(e.name + ("  \u2014 yours" if e.source == "user" else ""), e.id)
            self.model_combo.setItemData(self.model_combo.count() - 1, e.description or e.name,
                                         Qt.ItemDataRole.ToolTipRole)
        if not entries:
            self.model_combo.addItem("No model for this task yet", None)
            model = self.model_combo.model()
            if isinstance(model, QStandardItemModel):
                model.item(0).setEnabled(False)
        _set_data(self.model_combo, self.settings.model_for(task))
        self._loading = was
        self._model_changed()

    def _task_changed(self) -> None:
        if self._loading:
            return
        self.settings.set("task", self.current_task())
        self._fill_models()

    def _model_changed(self) -> None:
        entry = self.current_entry()
        if not self._loading and entry is not None:
            self.settings.set(f"model/{self.current_task()}", entry.id)
        self.model_info.setText(self._describe(entry))
        has_strength = takes_noise_level(entry)
        self.strength_label.setVisible(has_strength)
        self.strength_widget.setVisible(has_strength)
        is_style = entry is not None and entry.task == "style"
        self.style_size_label.setVisible(is_style)
        self.style_size_spin.setVisible(is_style)
        self._style_strength_ok = style_strength_supported(entry)
        self.style_strength_label.setVisible(self._style_strength_ok)
        self.style_strength_widget.setVisible(self._style_strength_ok)
        self.painting.show_entry(entry)
        emit(self.modelChanged)
        emit(self.changed)

    @staticmethod
    def _describe(entry: CatalogEntry | None) -> str:
        if entry is None:
            return ("<i>No model for this task. Import a weight file or train one in the Models and "
                    "Train tabs.</i>")
        facts = []
        if entry.task == "sr":
            facts.append(f"<b>\u00d7{entry.scale}</b> upscale")
        if entry.arch:
            facts.append(html.escape(entry.arch))
        facts.append("bundled" if entry.source == "bundled" else "your model")
        parts = [" \u00b7 ".join(facts)]
        if entry.description:
            parts.append(html.escape(entry.description))
        if entry.licence:
            parts.append(f"Licence: {html.escape(entry.licence)}")
        return "<br>".join(parts)

    # -- settings -----------------------------------------------------------------------------
    def _load(self) -> None:
        s = self.settings
        self.strength_spin.setValue(s.get_int("denoise/sigma", 25, 0, 100))
        self.strength_auto.setChecked(s.get_bool("denoise/auto", True))
        self.style_size_spin.setValue(s.get_int("style/size", DEFAULT_STYLE_SIZE, 0, 8192))
        self.style_strength_spin.setValue(s.get_int("style/strength", 100, 0, 100))
        _set_data(self.tile_combo, s.get_str("tile/mode", "auto", TILE_MODES))
        self.tile_spin.setValue(s.get_int("tile/size", 512, 64, 8192))
        _set_data(self.device_combo, s.get_str("device", "auto", DEVICES))
        _set_data(self.backend_combo, s.get_str("backend", "auto", BACKENDS))
        self.output_edit.setText(str(s.output_dir))
        _set_data(self.format_combo, s.get_str("output/format", "same", FORMATS))
        self.quality_spin.setValue(s.get_int("output/jpeg_quality", 95, 1, 100))
        self.suffix_edit.setText(name_suffix(s.get_str("output/suffix", "")))
        _set_data(self.existing_combo, s.get_bool("output/overwrite", False))
        self.keep_tree_check.setChecked(s.get_bool("output/keep_tree", True))
        self.recursive_check.setChecked(s.get_bool("input/recursive", True))
        self.refresh_models()  # the task comes from the settings while the list is empty

    def _save(self) -> None:
        self._update_enabled()
        if self._loading:
            return
        s = self.settings
        s.set("denoise/sigma", self.strength_spin.value())
        s.set("denoise/auto", self.strength_auto.isChecked())
        s.set("style/size", self.style_size_spin.value())
        s.set("style/strength", self.style_strength_spin.value())
        s.set("tile/mode", self.tile_combo.currentData())
        s.set("tile/size", self.tile_spin.value())
        s.set("device", self.device_combo.currentData())
        s.set("backend", self.backend_combo.currentData())
        s.set("output/dir", self.output_edit.text().strip())
        s.set("output/format", self.format_combo.currentData())
        s.set("output/jpeg_quality", self.quality_spin.value())
        s.set("output/suffix", self.name_suffix())
        s.set("output/overwrite", bool(self.existing_combo.currentData()))
        s.set("output/keep_tree", self.keep_tree_check.isChecked())
        s.set("input/recursive", self.recursive_check.isChecked())
        emit(self.changed)

    def _recursive_toggled(self, on: bool) -> None:
        self._save()
        if not self._loading:
            emit(self.recursiveChanged, on)

    def _update_enabled(self) -> None:
        self.tile_spin.setEnabled(self.tile_combo.currentData() == "manual")
        self.quality_spin.setEnabled(self.format_combo.currentData() in ("same", "jpg"))
        self.strength_slider.setEnabled(not self.strength_auto.isChecked())
        self.strength_spin.setEnabled(not self.strength_auto.isChecked())

    def browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if folder:
            self.set_output_dir(Path(folder))

    def set_output_dir(self, folder: Path) -> None:
        self.output_edit.setText(str(folder))
        self._save()

    def set_cuda(self, available: bool, detail: str) -> None:
        """Called once the device probe is back: grey out the GPU choice when there is none."""
        model = self.device_combo.model()
        i = self.device_combo.findData("cuda")
        if isinstance(model, QStandardItemModel) and i >= 0:
            item = model.item(i)
            item.setEnabled(available)
            item.setToolTip(detail if available else "No CUDA GPU found on this computer")
        if not available and self.device_combo.currentData() == "cuda":
            _set_data(self.device_combo, "auto")

    def _mark_onnx_availability(self) -> None:
        """Grey out ONNX Runtime when it is not installed (found without importing it)."""
        import importlib.util

        model = self.backend_combo.model()
        i = self.backend_combo.findData("onnx")
        if importlib.util.find_spec("onnxruntime") is None and isinstance(model, QStandardItemModel) and i >= 0:
            item = model.item(i)
            item.setEnabled(False)
            item.setToolTip("onnxruntime is not installed: pip install 'imgtrans[fast]'")

    def set_running(self, running: bool) -> None:
        for w in (self.task_combo, self.model_combo, self.strength_widget, self.style_strength_widget,
                  self.style_size_spin,
                  self.tile_combo, self.tile_spin,
                  self.device_combo, self.backend_combo, self.output_edit, self.browse_button, self.format_combo,
                  self.quality_spin,
                  self.suffix_edit, self.existing_combo, self.keep_tree_check, self.recursive_check):
            w.setEnabled(not running)
        if not running:
            self._update_enabled()

    # -- the result ---------------------------------------------------------------------------
    def output_dir(self) -> Path:
        text = self.output_edit.text().strip()
        return Path(text).expanduser() if text else self.settings.output_dir

    def name_suffix(self) -> str:
        return name_suffix(self.suffix_edit.text())

    def convert_options(self) -> ConvertOptions:
        tile_mode = self.tile_combo.currentData()
        entry = self.current_entry()
        return ConvertOptions(
            output_dir=self.output_dir(),
            fmt=self.format_combo.currentData(),
            jpeg_quality=self.quality_spin.value(),
            overwrite=bool(self.existing_combo.currentData()),
            suffix=self.name_suffix(),
            recursive=self.recursive_check.isChecked(),
            keep_tree=self.keep_tree_check.isChecked(),
            tile=None if tile_mode == "auto" else (0 if tile_mode == "off" else self.tile_spin.value()),
            device=self.device_combo.currentData(),
            backend=self.backend_combo.currentData(),
            noise_level=(float(self.strength_spin.value())
                         if takes_noise_level(entry) and not self.strength_auto.isChecked() else None),
            style_size=self.style_size_spin.value(),
            style_strength=self.style_strength_spin.value() / 100 if self._style_strength_ok else 1.0,
        )
