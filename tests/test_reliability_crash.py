"""Crash safety (issue 8): SIGKILL the real CLI mid-batch, re-run it, nothing is lost.

A small version of ``benchmarks/crash_safety.py`` (which lands at least 10 SIGKILLs and 2 SIGINTs on a
100-image batch): 16 images, at least 3 SIGKILLs, each at a random moment or the instant a temp file
appears (a write in flight), and one SIGINT, which must exit 130 and leave no temp file; then a final
run, which must exit 0 with nothing failed. Every input must end with exactly one output of the right
size that decodes and is within 1.5/255 of an uninterrupted reference conversion (at least 14 of the
16 pixel-identical), no temp or stray file may remain, no input may change.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.mark.skipif(not hasattr(os, "killpg") or sys.platform == "win32", reason="POSIX signals")
def test_sigkill_mid_batch_then_resume_loses_nothing(tmp_path):
    from benchmarks import crash_safety

    res = crash_safety.run(n_images=16, kills=3, sigints=1, seed=5, work=tmp_path, verbose=False, timeout=240)
    log = "\n".join(f"{k.mode} after {k.after_s:.2f}s: {k.outputs_before}->{k.outputs_after} parts={k.parts_left} "
                    f"exit={k.exit_code}" for k in res.kills)
    assert not res.problems, "\n".join(res.problems) + "\n" + log
    assert res.sigkills >= 3, log
    assert res.exact_outputs >= 14  # pixel-identical to the reference (the rest within 1/255)
    assert "0 failed" in res.final_summary
