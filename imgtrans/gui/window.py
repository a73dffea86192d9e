"""The main window: the Convert tab (queue, preview, options, progress), Models and Train tabs, menus
with shortcuts, drops anywhere, and the batch.

It glues panels to background work and processes no image itself: folder scans, thumbnails and
display decodes run in :mod:`imgtrans.gui.tasks` pools, the batch in a
:class:`~imgtrans.gui.worker.BatchThread`, previews in a :class:`~imgtrans.gui.preview.PreviewThread`.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from imgtrans.engine import EXISTS
from imgtrans.gui import tasks
from imgtrans.gui.about import DeviceInfo, probe_device, show_about
from imgtrans.gui.models_tab import ModelsTab
from imgtrans.gui.options_panel import OptionsPanel
from imgtrans.gui.preview_panel import PreviewPanel
from imgtrans.gui.progress_panel import ProgressPanel
from imgtrans.gui.qtcompat import emit
from imgtrans.gui.queue_model import QueueItem, Status
from imgtrans.gui.queue_panel import QueuePanel
from imgtrans.gui.settings import Settings
from imgtrans.gui.widgets import DropOverlay, MessageBar
from imgtrans.gui.worker import BatchRequest, BatchThread
from imgtrans.paths import resources_dir

log = logging.getLogger(__name__)

EMPTY_QUEUE = "The queue is empty:"
# the engine speaks in command-line options; the window names its own controls instead
_GUI_WORDS = (("use --overwrite to replace it", "choose Overwrite under \u201cIf it exists\u201d to replace it"),
              ("--overwrite", "Overwrite"), ("a --suffix", "a name suffix"), ("--suffix", "a name suffix"),
              ("--format png or tiff", "Format PNG or TIFF"), ("--format png", "Format PNG"))


def gui_wording(message: str) -> str:
    """An engine message with its command-line hints (``--overwrite``, ``--suffix``) put in the
    window's terms."""
    for cli, gui in _GUI_WORDS:
        message = message.replace(cli, gui)
    return message


def app_icon() -> QIcon:
    icon = QIcon()
    folder = resources_dir() / "icons"
    for path in sorted(folder.glob("imgtrans-*.png")) + [folder / "imgtrans.svg"]:
        if path.is_file():
            icon.addFile(str(path))
    return icon


class MainWindow(QMainWindow):
    batch_finished = Signal(object)  # the engine's Summary, or None when the batch could not start
    preview_shown = Signal(str)  # "before" or "after"

    def __init__(self, settings: Settings | None = None, log_file: str = "") -> None:
        super().__init__()
        tasks.relay()  # created in the GUI thread, before any worker reports back
        self.settings = settings or Settings()
        self.log_file = log_file
        self.device = DeviceInfo()
        self.batch: BatchThread | None = None
        self._batch_keys: set[str] = set()  # the queue rows the running (or last) batch was given
        self._processed = 0
        self._fraction = 0.0
        self._close_after_training = False

        self.setWindowTitle("imgtrans")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build()
        self._build_menus()
        self._restore_geometry()
        # torch (about a second to import) loads in a worker once the window is on screen
        QTimer.singleShot(300, lambda: tasks.submit(probe_device, done=self._device_ready,
                                                    error=lambda exc: self._device_ready(None)))

    # ---------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)

        self.message = MessageBar()
        self.queue_panel = QueuePanel(self.settings)
        self.preview_panel = PreviewPanel()
        self.options = OptionsPanel(self.settings)
        scroll = QScrollArea()
        scroll.setWidget(self.options)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(300)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for i, w in enumerate((self.queue_panel, self.preview_panel, scroll)):
            self.splitter.addWidget(w)
            self.splitter.setStretchFactor(i, 1 if i == 1 else 0)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([400, 640, 340])
        self.progress = ProgressPanel()
        convert = QWidget()
        layout = QVBoxLayout(convert)
        layout.addWidget(self.message)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.progress)
        self.tabs.addTab(convert, "&Convert")

        self.models_tab = ModelsTab()
        self.tabs.addTab(self.models_tab, "&Models")
        self.train_tab = self._make_train_tab()
        if self.train_tab is not None:
            self.tabs.addTab(self.train_tab, "&Train")
        self.device_label = QLabel()
        self.statusBar().addPermanentWidget(self.device_label)
        self.overlay = DropOverlay(self)

        # the parts tests and scripts reach for
        self.queue = self.queue_panel.model
        self.compare = self.preview_panel.compare
        self.count_label = self.queue_panel.count_label
        self.preview_status = self.preview_panel.status

        qp, pp = self.queue_panel, self.preview_panel
        qp.currentChanged.connect(self._current_changed)
        qp.countsChanged.connect(self.progress.set_queue_size)
        qp.countsChanged.connect(self._queue_counts_changed)
        qp.itemProbed.connect(self._item_probed)
        qp.notify.connect(self.message.show_message)
        qp.view.doubleClicked.connect(lambda _i: self.run_preview())
        pp.previewRequested.connect(self.run_preview)
        pp.shown.connect(self.preview_shown)
        pp.failed.connect(lambda text: self.message.show_message(f"Preview failed: {html.escape(text)}", "error", 0))
        self.progress.start_button.clicked.connect(self.start_batch)
        self.progress.cancel_button.clicked.connect(self.cancel_batch)
        self.progress.open_button.clicked.connect(self.open_output_folder)
        self.options.recursiveChanged.connect(self._recursive_changed)
        self.options.modelChanged.connect(pp.cancel_preview)
        self.models_tab.modelsChanged.connect(self._models_changed)
        self.models_tab.useModel.connect(self._use_model)
        qp.recursive = self.options.recursive_check.isChecked()
        qp.update_counts()

    def _make_train_tab(self):
        try:
            from imgtrans.gui.train_tab import TrainTab
        except Exception:  # no trainer (or a broken one): the window opens without the tab
            log.warning("training tab unavailable", exc_info=True)
            return None
        tab = TrainTab(self.settings)
        tab.modelExported.connect(self._models_changed)
        return tab

    def _build_menus(self) -> None:
        def add(menu, text, slot, shortcut=None):
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        qp, view = self.queue_panel, self.compare
        bar = self.menuBar()
        m = bar.addMenu("&File")
        add(m, "Add &Images\u2026", qp.choose_files, QKeySequence.StandardKey.Open)
        add(m, "Add &Folder\u2026", qp.choose_folder, "Ctrl+Shift+O")
        add(m, "&Paste Images or Paths", qp.paste, QKeySequence.StandardKey.Paste)
        m.addSeparator()
        add(m, "&Remove Selected", qp.remove_selected, QKeySequence.StandardKey.Delete)
        add(m, "&Clear Queue", qp.clear, "Ctrl+Shift+Delete")
        m.addSeparator()
        add(m, "Choose &Output Folder\u2026", self.options.browse_output)
        add(m, "Open Output F&older", self.open_output_folder, "Ctrl+Shift+E")
        m.addSeparator()
        add(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        m = bar.addMenu("&Run")
        self.convert_action = add(m, "&Convert Queue", self.start_batch, "Ctrl+Return")
        self.cancel_action = add(m, "C&ancel", self.cancel_batch, "Esc")
        self.cancel_action.setEnabled(False)
        add(m, "&Preview Selected Image", self.run_preview, "Ctrl+P")

        m = bar.addMenu("&View")
        add(m, "Zoom to &Fit", view.fit, "Ctrl+0")
        add(m, "&Actual Pixels (100%)", view.actual_size, "Ctrl+1")
        add(m, "Zoom &In", lambda: view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        add(m, "Zoom &Out", lambda: view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        m.addSeparator()
        add(m, "Show &Original", lambda: view.set_split(1.0), "Ctrl+[")
        add(m, "Show &Result", lambda: view.set_split(0.0), "Ctrl+]")
        add(m, "&Split in the Middle", lambda: view.set_split(0.5), "Ctrl+\\")
        m.addSeparator()
        for i in range(self.tabs.count()):
            add(m, f"{self.tabs.tabText(i).replace('&', '')} Tab", lambda _c=False, i=i: self.tabs.setCurrentIndex(i),
                f"Alt+{i + 1}")

        m = bar.addMenu("&Help")
        add(m, "&Keyboard Shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        add(m, "Open &Log Folder", self.open_log_folder)
        add(m, "&About imgtrans", lambda: show_about(self, self.device, self.log_file))

    def _restore_geometry(self) -> None:
        geometry = self.settings.get_bytes("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            screen = QGuiApplication.primaryScreen()
            avail = screen.availableGeometry() if screen else None
            w, h = 1360, 860
            if avail is not None:
                w, h = min(w, avail.width() - 40), min(h, avail.height() - 60)
            self.resize(w, h)
        state = self.settings.get_bytes("window/splitter")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.splitter.restoreState(state)

    # ------------------------------------------------------------------------- drops, queue
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
            self.overlay.cover()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.overlay.hide()

    def dropEvent(self, event) -> None:  # noqa: N802
        self.overlay.hide()
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.tabs.setCurrentIndex(0)
            self.add_paths(paths)

    def add_paths(self, paths: list[Path]) -> None:
        self.queue_panel.add_paths(paths)

    def select_row(self, row: int) -> None:
        self.queue_panel.select_row(row)

    def _recursive_changed(self, on: bool) -> None:
        self.queue_panel.recursive = on
        self.queue_panel.rescan()

    def _current_changed(self, item: QueueItem | None) -> None:
        if item is None:
            self.preview_panel.clear()
        else:
            self.preview_panel.show_item(item, self.options.convert_options().max_pixels)

    def _item_probed(self, key: str) -> None:
        item = self.queue_panel.current_item()
        if item is not None and item.key == key and item.status == Status.UNREADABLE:
            self.preview_panel.show_item(item, self.options.convert_options().max_pixels)

    def _queue_counts_changed(self, runnable: int, _pending: int) -> None:
        if runnable and self.message.text().startswith(EMPTY_QUEUE):
            self.message.hide()  # files arrived: the hint about an empty queue is stale

    def run_preview(self) -> None:
        item = self.queue_panel.current_item()
        if item is None:
            self.message.show_message("Select an image in the queue first.", "info", 5000)
        elif item.status in (Status.SKIPPED, Status.UNREADABLE):
            self.message.show_message(f"{html.escape(item.path.name)} cannot be converted: {html.escape(item.message)}",
                                      "warning", 8000)
        elif not self.options.model_ref():
            self.message.show_message("Choose a model first (or import one in the Models tab).", "warning")
        else:
            self.preview_panel.run_preview(item, self.options.model_ref(), self.options.convert_options())

    # ----------------------------------------------------------------------------------- batch
    def start_batch(self) -> None:
        if self.batch is not None:
            return
        items = self.queue.runnable()
        if not items:
            self.message.show_message(f"{EMPTY_QUEUE} drop images or folders here, or use Add images.", "info", 6000)
            return
        ref = self.options.model_ref()
        if not ref:
            self.message.show_message("There is no model for this task yet. Import one in the Models tab.", "warning")
            return
        options = self.options.convert_options()
        for item in items:
            self.queue.update(item.key, status=Status.QUEUED, message="", fraction=0.0, seconds=0.0)
        self._batch_keys = {item.key for item in items}
        request = BatchRequest(self.queue_panel.roots_of(items), self._batch_keys, ref, options)
        self.message.hide()
        self.batch = BatchThread(request, self)
        self.batch.status.connect(self.progress.set_status)
        self.batch.event.connect(self._on_event)
        self.batch.error.connect(self._on_batch_error)
        self.batch.batch_done.connect(self._on_batch_done)
        self._processed, self._fraction = 0, 0.0
        self._set_running(True)
        self.progress.begin()
        self.progress.set_status("Starting\u2026")
        log.info("convert %d file(s) with %s into %s", len(items), ref, options.output_dir)
        self.batch.start()

    def cancel_batch(self) -> None:
        if self.batch is not None:
            self.batch.cancel()
            self.progress.cancelling()
            log.info("cancel requested")

    def is_running(self) -> bool:
        return self.batch is not None

    def _set_running(self, running: bool) -> None:
        self.options.set_running(running)
        self.convert_action.setEnabled(not running)
        self.cancel_action.setEnabled(running)
        self.queue_panel.clear_button.setEnabled(not running)
        self.queue_panel.locked = running
        self.models_tab.setEnabled(not running)
        if not running:
            self.queue_panel.running_key = None

    def _on_event(self, ev) -> None:
        """One engine event: update its row, the bars and the status line."""
        key = str(ev.src) if ev.src is not None else ""
        kind, queue, progress = ev.kind, self.queue, self.progress
        if kind == "plan":
            progress.set_total(ev.total)
            if ev.total == 0:
                progress.set_status("Nothing to convert.")
        elif kind == "start":
            self.queue_panel.running_key = key
            self._fraction = 0.0
            queue.update(key, status=Status.RUNNING, fraction=0.0, dst=ev.dst, detail="")
            progress.set_status(f"Converting {ev.src.name}  ({ev.index + 1} of {ev.total})")
        elif kind == "progress":
            self._fraction = ev.fraction
            queue.update(key, fraction=ev.fraction)
        elif kind == "noise":  # a denoiser on auto: the level measured on this image, on its row and in the log
            log.info("%s: %s", ev.src, ev.message)
            queue.update(key, detail=ev.message)
        elif kind == "note":  # converted, but the format loses something: said on the row
            queue.update(key, message=gui_wording(ev.message))
        elif kind == "done":
            self._processed += 1
            self._fraction = 0.0
            queue.update(key, status=Status.DONE, dst=ev.dst, seconds=ev.seconds, fraction=1.0)
            current = self.queue_panel.current_item()
            if current is not None and current.key == key:
                self._current_changed(current)
        elif kind == "skipped":
            exists = ev.message.startswith(EXISTS)
            self._processed += ev.dst is not None
            message = "output already exists (choose Overwrite to replace it)" if exists else gui_wording(ev.message)
            queue.update(key, status=Status.EXISTS if exists else Status.SKIPPED, message=message, dst=ev.dst)
        elif kind == "failed":
            if key == "<batch>":  # the batch as a whole (e.g. CUDA asked for, none there)
                self.message.show_message(html.escape(ev.message), "error")
            else:
                self._processed += ev.dst is not None
                queue.update(key, status=Status.FAILED, message=gui_wording(ev.message))
        elif kind == "cancelled" and self.queue_panel.running_key:
            queue.update(self.queue_panel.running_key, status=Status.CANCELLED, fraction=0.0)
        if kind in ("plan", "start", "progress", "done", "skipped", "failed"):
            progress.update_progress(self._processed, self._fraction)
        if kind != "progress":
            self.queue_panel.schedule_counts()

    def _on_batch_error(self, text: str) -> None:
        log.warning("batch: %s", text)
        self.message.show_message(html.escape(text), "error")

    def _on_batch_done(self, summary) -> None:
        thread, self.batch = self.batch, None
        if thread is not None:
            thread.wait(2000)
            thread.deleteLater()
        cancelled = summary is not None and summary.cancelled
        for item in self.queue.items:
            never_started = cancelled and item.status == Status.QUEUED and item.key in self._batch_keys
            if item.status == Status.RUNNING or never_started:
                self.queue.update(item.key, status=Status.CANCELLED, fraction=0.0,
                                  message="" if item.status == Status.RUNNING else "not started")
        self._set_running(False)
        if summary is None:
            self.progress.end("Not started: see the message above.", complete=False)
        else:
            self.progress.end(self._summary_text(summary), complete=not summary.cancelled)
            if summary.failed and self.message.isHidden():
                n = len(summary.failed)
                self.message.show_message(f"{n} file{'s' if n != 1 else ''} could not be converted; the reason is "
                                          "in the queue (hover for details).", "warning", 15000)
            if self.queue_panel.current_item() is None:
                first = next((i for i, it in enumerate(self.queue.items) if it.status == Status.DONE), None)
                if first is not None:
                    self.queue_panel.select_row(first)
        self.queue_panel.update_counts()
        emit(self.batch_finished, summary)

    @staticmethod
    def _summary_text(summary) -> str:
        parts = [f"{len(summary.converted)} converted"]
        exists = sum(1 for _p, reason in summary.skipped if reason.startswith(EXISTS))
        if exists:
            parts.append(f"{exists} kept (output existed)")
        if summary.failed:
            parts.append(f"{len(summary.failed)} failed")
        text = ", ".join(parts) + f" in {summary.seconds:.1f} s"
        return "Cancelled: " + text if summary.cancelled else text

    # ----------------------------------------------------------------------------- the rest
    def _device_ready(self, info: DeviceInfo | None) -> None:
        self.device = info or DeviceInfo(torch="unavailable", device="unknown")
        self.device_label.setText(f"Device: {self.device.device}")
        self.device_label.setToolTip(self.device.detail)
        self.options.set_cuda(self.device.cuda, self.device.detail)

    def _models_changed(self, select=None) -> None:
        self.options.refresh_models(select=select)
        self.models_tab.refresh(select=select)

    def _use_model(self, model_id: str) -> None:
        self.options.refresh_models(select=model_id)
        self.tabs.setCurrentIndex(0)

    def open_output_folder(self) -> None:
        folder = self.options.output_dir()
        if not folder.is_dir():
            self.message.show_message(f"The output folder {html.escape(str(folder))} does not exist yet; "
                                      "the first conversion creates it.", "info", 6000)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def open_log_folder(self) -> None:
        if self.log_file:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.log_file).parent)))

    def shortcuts_html(self) -> str:
        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            for act in menu.actions() if menu else []:
                if not act.shortcut().isEmpty():
                    keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                    rows.append(f"<tr><td>{html.escape(act.text().replace('&', ''))}</td>"
                                f"<td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>")
        return (f"<table>{''.join(rows)}</table><p>In the preview: drag the divider to compare, drag elsewhere "
                "to pan, use the wheel to zoom, double-click for 100%; Left/Right move the divider.</p>")

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", self.shortcuts_html())

    def resizeEvent(self, event) -> None:  # noqa: N802
        if self.overlay.isVisible():
            self.overlay.cover()
        super().resizeEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.train_tab is not None and self.train_tab.is_running():
            # the trainer finishes its iteration and saves a checkpoint first: close when that is done
            if not self._close_after_training:
                self._close_after_training = True
                self.train_tab.stopped.connect(self.close)
                self.train_tab.stop()
                self.tabs.setCurrentWidget(self.train_tab)
                self.train_tab.message.show_message(
                    "Stopping the training run and saving a checkpoint; the window closes when that is done.", "info")
            event.ignore()
            return
        if self.batch is not None:  # the engine stops within one tile; finished files are kept
            log.info("window closed during a batch: cancelling")
            self.batch.cancel()
            self.batch.wait(30_000)
        self.preview_panel.shutdown()
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/splitter", self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
