"""The Models tab: every model in the catalog grouped by task, import a weight file, remove yours."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgtrans.catalog import (
    CatalogEntry,
    border_label,
    data_licences_text,
    declared_edge_context,
    list_models,
    provenance,
    read_model_metadata,
    style_credit,
    style_strength_supported,
)
from imgtrans.gui import tasks
from imgtrans.gui.options_panel import TASK_NAMES, TASKS
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.widgets import MessageBar, PaintingView
from imgtrans.model_import import Imported, import_model, remove_model
from imgtrans.paths import user_models_dir

log = logging.getLogger(__name__)

WEIGHT_FILTER = "Model weights (*.safetensors *.pth *.pt *.ckpt *.bin *.onnx);;All files (*)"


def arch_label(entry: CatalogEntry) -> str:
    """The architecture; for imported non-imgtrans models, what the loader detected at import."""
    if entry.arch:
        return entry.arch
    try:
        return read_model_metadata(entry.path).get("detected_arch", "") or "detected when loaded"
    except (OSError, ValueError):
        pass
    return "detected when loaded"


def _user_facts(entry: CatalogEntry) -> list[tuple[str, str]]:
    """Training or import facts stored in a user model's metadata (header only, no torch)."""
    try:
        meta = read_model_metadata(entry.path)
    except (OSError, ValueError):
        return []
    facts = []
    for key, label in (("steps", "Trained for"), ("date", "Saved")):  # data and origin: _provenance_rows
        value = meta.get(key, "").strip()
        if value:
            facts.append((label, f"{value} iterations" if key == "steps" else value))
    return facts


def _border(entry: CatalogEntry) -> str:
    """The mirrored edge border the model runs with, from its metadata (header only, no torch)."""
    try:
        return border_label(declared_edge_context(read_model_metadata(entry.path)))
    except (OSError, ValueError):
        return "unknown (the file's metadata cannot be read)"


def _provenance_rows(entry: CatalogEntry) -> list[tuple[str, str]]:
    """Where the weights come from and their licences, as ``imgtrans info`` states them."""
    try:
        meta = read_model_metadata(entry.path)
    except (OSError, ValueError):
        meta = {}
    facts = provenance(meta, entry)
    return [("Origin", facts["origin"]), ("Weights licence", facts["weights_licence"]),
            ("Training data", data_licences_text(facts["training_data_licences"]))]


class ModelsTab(QWidget):
    modelsChanged = Signal(object)  # noqa: N815 - id to select, or None
    useModel = Signal(str)  # noqa: N815
    importFinished = Signal(bool)  # noqa: N815 - for tests and scripts

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.message = MessageBar()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Scale", "Architecture", "Source"])
        self.tree.setRootIsDecorated(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMargin(8)
        self.painting = PaintingView(160)  # the painting a style model learnt from, when its file carries one
        details_pane = QWidget()
        dl = QVBoxLayout(details_pane)
        dl.setContentsMargins(0, 0, 0, 0)
        painting_box = QHBoxLayout()  # first: a style is recognised by its painting
        painting_box.setContentsMargins(8, 8, 8, 0)
        painting_box.addWidget(self.painting)
        dl.addLayout(painting_box)
        dl.addWidget(self.details)
        dl.addStretch(1)
        details_scroll = QScrollArea()
        details_scroll.setWidgetResizable(True)
        details_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        details_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the text wraps instead
        details_scroll.setMinimumWidth(320)
        details_scroll.setWidget(details_pane)

        style = self.style()
        self.import_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton),
                                         "&Import model file\u2026")
        self.import_button.setToolTip("Add a third-party weight file (.safetensors, or a tensor-only .pth). "
                                      "It is checked with the safe loader; nothing in it is executed.")
        self.remove_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_TrashIcon), "&Remove")
        self.use_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton),
                                      "&Use for converting")
        self.folder_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon),
                                         "Open models &folder")
        buttons = QHBoxLayout()
        for b in (self.import_button, self.remove_button, self.use_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.folder_button)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(details_scroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 400])
        split.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        layout.addWidget(split, 1)

        self.import_button.clicked.connect(self.choose_import)
        self.remove_button.clicked.connect(lambda: self.remove_selected(confirm=True))
        self.use_button.clicked.connect(self._use)
        self.folder_button.clicked.connect(self._open_folder)
        self.tree.currentItemChanged.connect(self._show_details)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self._use())
        self.refresh()

    # -- listing ------------------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        current = select or (self.current_entry().id if self.current_entry() else None)
        self.tree.clear()
        entries = list_models()
        groups: dict[str, QTreeWidgetItem] = {}
        order = [t for t, _ in TASKS] + ["unknown"]
        for task in order:
            members = [e for e in entries if (e.task if e.task in dict(TASKS) else "unknown") == task]
            if not members and task == "unknown":
                continue
            group = QTreeWidgetItem([f"{TASK_NAMES[task]}  ({len(members)})"])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self.tree.addTopLevelItem(group)
            groups[task] = group
            for e in members:
                item = QTreeWidgetItem([e.name, f"\u00d7{e.scale}" if e.scale > 1 else "\u2014", arch_label(e),
                                        "bundled" if e.source == "bundled" else "yours"])
                item.setData(0, Qt.ItemDataRole.UserRole, e)
                item.setToolTip(0, e.description or e.name)
                group.addChild(item)
                if e.id == current:
                    self.tree.setCurrentItem(item)
            if not members:
                hint = QTreeWidgetItem(["No models yet: import a file or train one"])
                hint.setFlags(Qt.ItemFlag.NoItemFlags)
                group.addChild(hint)
        self.tree.expandAll()
        if self.tree.currentItem() is None:
            self._show_details(None)

    def current_entry(self) -> CatalogEntry | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def select(self, model_id: str) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                entry = group.child(j).data(0, Qt.ItemDataRole.UserRole)
                if entry is not None and entry.id == model_id:
                    self.tree.setCurrentItem(group.child(j))
                    return True
        return False

    def _show_details(self, item, _previous=None) -> None:
        entry = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        self.remove_button.setEnabled(entry is not None and entry.source == "user")
        self.use_button.setEnabled(entry is not None)
        shown = self.painting.show_entry(entry)
        if entry is None:
            self.details.setText("<p>Select a model to see its details.</p>"
                                 "<p>Bundled models ship with imgtrans. Models you train, or weight files you "
                                 "import, are stored in your models folder and appear here and in the Convert tab.</p>")
            return
        rows = [
            ("Task", TASK_NAMES.get(entry.task, entry.task)),
            ("Scale", f"\u00d7{entry.scale}"),
            ("Architecture", arch_label(entry)),
            ("Source", "bundled with imgtrans" if entry.source == "bundled" else "your models folder"),
            *_provenance_rows(entry),
            ("Edge border", _border(entry)),
            ("Id", entry.id),
            ("File", str(entry.path)),
        ]
        if entry.source == "user":
            rows[-2:-2] = _user_facts(entry)
        if entry.task == "style":
            credit = "" if shown else style_credit(entry)  # with a thumbnail, its caption names the painting
            extra = [("Learnt from", credit)] if credit else []
            if style_strength_supported(entry):
                extra.append(("Style strength", "adjustable from 0 to 100 % (Convert tab)"))
            rows[1:1] = extra
        table = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
        desc = f"<p>{html.escape(entry.description)}</p>" if entry.description else ""
        self.details.setText(f"<h3>{html.escape(entry.name)}</h3>{desc}<table>{table}</table>")

    # -- actions ------------------------------------------------------------------------------
    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", str(Path.home()), WEIGHT_FILTER)
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path, name: str | None = None) -> None:
        """Check and store ``path`` in a worker thread; the result shows in the message bar."""
        self.message.show_message(f"Checking {path.name} with the safe loader\u2026", "info")
        self.import_button.setEnabled(False)
        log.info("importing model %s", path)
        tasks.submit(import_model, path, name, done=self._imported, error=self._import_failed, pool_name="model")

    def _imported(self, result: Imported) -> None:
        self.import_button.setEnabled(True)
        log.info("imported %s as %s (%s)", result.path, result.id, result.arch)
        self.message.show_message(html.escape(result.summary()) + " It is now in the model list.", "info")
        self.refresh(select=result.id)
        emit(self.modelsChanged, result.id)
        emit(self.importFinished, True)

    def _import_failed(self, exc: Exception) -> None:
        self.import_button.setEnabled(True)
        log.warning("import failed: %s", exc)
        self.message.show_message(f"Not imported: {html.escape(str(exc))}", "error")
        emit(self.importFinished, False)

    def remove_selected(self, confirm: bool = True) -> None:
        entry = self.current_entry()
        if entry is None or entry.source != "user":
            return
        if confirm:
            answer = QMessageBox.question(self, "Remove model",
                                          f"Delete \u201c{entry.name}\u201d?\n\nIts file {entry.path.name} will be "
                                          "removed from your models folder.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            remove_model(entry)
        except (OSError, ValueError) as exc:
            self.message.show_message(f"Could not remove {html.escape(entry.name)}: {html.escape(str(exc))}", "error")
            return
        log.info("removed user model %s", entry.path)
        self.message.show_message(f"Removed \u201c{html.escape(entry.name)}\u201d.", "info", 6000)
        self.refresh()
        emit(self.modelsChanged, None)

    def _use(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            emit(self.useModel, entry.id)

    def _open_folder(self) -> None:
        folder = user_models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
