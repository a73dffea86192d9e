#!/usr/bin/env python3
"""Fuzz the real ``imgtrans convert`` CLI with hostile inputs and check that nothing is lost: the
command line of :mod:`benchmarks.fuzz` (see its docstring for what is generated and checked).

    .venv/bin/python benchmarks/fuzz_inputs.py               # full set (~650 inputs), all batches
    .venv/bin/python benchmarks/fuzz_inputs.py --subset      # the fixed-seed subset the tests use
    .venv/bin/python benchmarks/fuzz_inputs.py --keep DIR    # keep the generated files in DIR
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.fuzz.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
