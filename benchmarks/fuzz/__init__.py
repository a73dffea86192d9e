"""Fuzz the real ``imgtrans convert`` CLI with hostile inputs and check that nothing is lost.

Generates several hundred hostile files (truncated / bit-flipped / header-mangled PNG, JPEG, WebP,
TIFF, GIF and BMP; empty files; wrong extensions; text and other non-images named like images; 1x1,
1xN and 100000x1 images; decompression bombs; CMYK/LAB/16-bit/palette/LA/1-bit/float modes; broken
ICC profiles and EXIF blocks; animated GIF/WebP/APNG; symlink loops, dangling links, FIFOs, sockets,
directories named like images, unreadable files; odd file names and colliding names), runs the CLI
over all of them in one batch and then once per category, and checks for each run:

* no crash (exit code 0 or 1, never a signal or a hang) and no Python traceback on stderr;
* every input is either converted (its planned output exists and decodes completely) or named on a
  ``failed: PATH: reason`` / ``skipped: PATH: reason`` line with a reason, never both, never neither;
* inputs that must convert (valid images) do, inputs that cannot convert (not images, bombs) do not;
* the summary line's counts match the per-file lines and the outputs, and the exit code matches;
* no input was modified, no temporary or unexpected file was left in the output folder, no two
  inputs share an output;
* stderr holds nothing but the CLI's own lines (library noise is listed).

Usage::

    .venv/bin/python benchmarks/fuzz_inputs.py               # full set (~650 inputs), all batches
    .venv/bin/python benchmarks/fuzz_inputs.py --subset      # the fixed-seed subset the tests use
    .venv/bin/python benchmarks/fuzz_inputs.py --keep DIR    # keep the generated files in DIR

(or ``python -m benchmarks.fuzz`` with the same options). Exit status 0 when every check passed.
``tests/test_reliability.py`` imports this package and runs the fixed-seed subset; other
benchmarks (``crash_safety.py``, ``disk_full.py``, ``engine_cancel.py``) reuse its builders and
:func:`~benchmarks.fuzz.run.tiny_model`.

Modules: :mod:`~benchmarks.fuzz.builders` (hostile bytes and the :class:`Builder`),
:mod:`~benchmarks.fuzz.categories` and :mod:`~benchmarks.fuzz.filesystem` (the cases),
:mod:`~benchmarks.fuzz.run` (the CLI in a subprocess), :mod:`~benchmarks.fuzz.oracle` (the checks),
:mod:`~benchmarks.fuzz.__main__` (the command line).

Unreadable permissions: the tool normally runs as root here, and root ignores ``chmod 000``. The
``perms`` category therefore (a) keeps ``chmod 000`` files in the main batch (root reads them: they
must convert), and (b) when running as root and ``setpriv`` exists, runs a separate batch as the
unprivileged user ``nobody`` over a folder with ``chmod 000`` files and a ``chmod 000`` sub-folder,
where they really are unreadable and must be reported. FIFOs, sockets, directories named ``x.png``
and links to ``/dev/zero`` stand in for other unreadable inputs in every batch.
"""

from benchmarks.fuzz.builders import ANY, FAIL, IGNORED, OK, Case, good_bytes, picture
from benchmarks.fuzz.categories import CATEGORIES, generate
from benchmarks.fuzz.filesystem import make_perms_tree
from benchmarks.fuzz.oracle import SUMMARY, RunReport, check_run, decodes, plan_for
from benchmarks.fuzz.run import CliResult, hash_tree, rmtree, run_batch, run_cli, tiny_model

__all__ = ["ANY", "CATEGORIES", "FAIL", "IGNORED", "OK", "SUMMARY", "Case", "CliResult", "RunReport", "check_run",
           "decodes", "generate", "good_bytes", "hash_tree", "make_perms_tree", "picture", "plan_for", "rmtree",
           "run_batch", "run_cli", "tiny_model"]
