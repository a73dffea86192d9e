"""``python -m imgtrans``: same as the ``imgtrans`` command."""

from imgtrans.cli import main

raise SystemExit(main())
