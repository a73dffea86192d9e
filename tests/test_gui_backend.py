"""GUI side of issue 7: the backend choice is offered, remembered and passed on; the window shows fast."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


def _window(qtbot):
    from imgtrans.gui.window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_backend_choice_persists_and_reaches_the_engine(qtbot):
    from imgtrans.gui import tasks

    w = _window(qtbot)
    o = w.options
    assert [o.backend_combo.itemData(i) for i in range(o.backend_combo.count())] == ["auto", "eager", "compile", "onnx"]
    assert o.convert_options().backend == "auto"
    o.backend_combo.setCurrentIndex(o.backend_combo.findData("eager"))
    w.close()
    w2 = _window(qtbot)
    assert w2.options.backend_combo.currentData() == "eager"
    assert w2.options.convert_options().backend == "eager"
    w2.close()
    tasks.wait_all()


def test_window_shows_fast_without_importing_torch(tmp_path):
    """Fresh process, offscreen: from interpreter start to the window shown (and one pass of the
    event loop) in under 3 s, and torch not imported by then (it loads in a worker afterwards)."""
    script = textwrap.dedent("""
        import sys, time
        t0 = time.perf_counter()
        from imgtrans.gui.app import create_app
        from imgtrans.gui.window import MainWindow
        app, log_file = create_app()
        w = MainWindow(log_file=str(log_file))
        w.show()
        app.processEvents()
        print(time.perf_counter() - t0, "torch" in sys.modules)
        w.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMGTRANS_HOME=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    seconds, torch_loaded = res.stdout.split()[-2:]
    assert torch_loaded == "False"
    assert float(seconds) < 3.0
