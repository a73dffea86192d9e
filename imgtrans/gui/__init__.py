"""The desktop window (PySide6). A thin layer over :mod:`imgtrans.engine`: it queues files, collects
options, runs :func:`imgtrans.engine.convert` in a worker thread and shows the events.

Nothing outside this package imports Qt, and nothing in here runs a model or decodes a full-size
image in the GUI thread. Entry point: :func:`imgtrans.gui.app.main`.

Modules: ``app`` (entry point, logging), ``window`` (main window, menus, the batch),
``queue_panel`` + ``queue_model`` (the file queue), ``preview_panel`` + ``compare_view`` +
``preview`` (before/after view, quick preview), ``options_panel`` + ``settings`` (choices, QSettings),
``progress_panel``, ``worker`` (batch thread), ``imaging`` (thumbnails and display images, in worker
threads), ``tasks`` (thread pools, GC and thread-priority helpers), ``models_tab`` (model management, through
:mod:`imgtrans.model_import`), ``train_tab`` + ``loss_plot`` + ``path_rows`` (training), ``about``,
``widgets`` (message bar, drop overlay), ``qtcompat`` (binding work-arounds).
"""
