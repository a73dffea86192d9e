"""Entry point of the desktop bundle (packaging/imgtrans.spec): the ``imgtrans`` command.

``imgtrans`` with no arguments opens the desktop app; ``imgtrans convert/models/info/gui`` as usual."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # training data-loader workers, should a spawn context ever be used
    from imgtrans.cli import main

    raise SystemExit(main())
