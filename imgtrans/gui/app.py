"""Entry point of the desktop app: ``imgtrans``, ``imgtrans gui [FILES...]`` and ``python -m imgtrans``
call :func:`main`.

The window appears before torch is imported (that happens in a worker thread), so start-up is fast.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path

from imgtrans.paths import user_data_dir

log = logging.getLogger("imgtrans.gui")


def setup_logging() -> Path:
    """Log to ``<user data>/logs/imgtrans-gui.log`` (rotated at 1 MB, 3 kept); returns the file."""
    folder = user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "imgtrans-gui.log"
    root = logging.getLogger()
    if not any(getattr(h, "_imgtrans_gui", False) for h in root.handlers):
        # INFO goes to the file; handlers already there (the CLI's stderr one) keep their threshold
        before = root.getEffectiveLevel()
        if before > logging.INFO:
            for h in root.handlers:  # e.g. the command line's stderr handler
                if type(h) is logging.StreamHandler and h.level == logging.NOTSET:
                    h.setLevel(before)
            root.setLevel(logging.INFO)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"))
        handler._imgtrans_gui = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return path


def _install_excepthook(log_file: Path) -> None:
    """An unexpected exception in a slot is logged and shown, and the window keeps running."""

    def hook(exc_type, exc, tb) -> None:
        log.error("unexpected error\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        from PySide6.QtWidgets import QApplication, QMessageBox

        if QApplication.instance() is not None:
            QMessageBox.critical(None, "imgtrans: unexpected error",
                                 f"{exc_type.__name__}: {exc}\n\nThe details are in the log file:\n{log_file}")

    sys.excepthook = hook


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="imgtrans gui", description="Open the imgtrans window.")
    parser.add_argument("paths", nargs="*", help="images or folders to put in the queue")
    return parser.parse_args(argv)


def create_app():
    """The QApplication (reused if one exists), names, icon, logging; returns ``(app, log_file)``."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from imgtrans.gui.settings import APPLICATION, ORGANIZATION
    from imgtrans.gui.window import app_icon

    log_file = setup_logging()
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "imgtrans"])
    app.setApplicationDisplayName("imgtrans")
    app.setDesktopFileName("imgtrans")
    app.setWindowIcon(app_icon())
    _install_excepthook(log_file)
    return app, log_file


def display_problem(env=None, platform: str | None = None) -> str | None:
    """Why no window can open here (a Linux session without a display: Qt would abort), or None."""
    import os

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set, e.g. over SSH). "
            "Convert from the command line instead: imgtrans convert PHOTOS -o OUT --model sr-x2 "
            "(imgtrans --help), or start the window inside a desktop session.")


def _xcb_hint(env=None) -> str | None:
    """A note when Qt's X11 plugin will likely fail for a missing system library (libxcb-cursor0,
    which Qt 6.5+ needs and many minimal systems lack), or None."""
    import ctypes.util
    import os

    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        return None
    if ctypes.util.find_library("xcb-cursor") is not None:
        return None
    return ("note: the X11 library libxcb-cursor was not found; if the window does not open, install it "
            "(Debian/Ubuntu: sudo apt install libxcb-cursor0) or convert with 'imgtrans convert'")


def main(argv: list[str] | None = None) -> int:
    """Open the window (queueing ``argv``'s paths) and run until it closes; returns the exit code."""
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    try:
        import PySide6  # noqa: F401
    except ImportError:
        print("imgtrans: the desktop app needs PySide6: pip install 'imgtrans[gui]'", file=sys.stderr)
        return 2
    problem = display_problem()
    if problem:
        print(f"imgtrans: {problem}", file=sys.stderr)
        return 2
    hint = _xcb_hint()
    if hint:
        print(f"imgtrans: {hint}", file=sys.stderr)
    from imgtrans.gui import tasks
    from imgtrans.gui.window import MainWindow

    previous_hook = sys.excepthook
    app, log_file = create_app()
    log.info("starting imgtrans window (log %s)", log_file)
    window = MainWindow(log_file=str(log_file))
    window.show()
    if args.paths:
        window.add_paths([Path(p) for p in args.paths])
    try:
        code = app.exec()
    finally:
        sys.excepthook = previous_hook
    tasks.wait_all()
    log.info("window closed")
    return int(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
