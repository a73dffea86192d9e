"""The oracle: what one CLI run over a batch of cases must show (see :mod:`benchmarks.fuzz` for
the list) and :func:`check_run`, which checks a finished run against it and returns a
:class:`RunReport`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image as PILImage

from benchmarks.fuzz.builders import FAIL, IGNORED, OK, Case

if TYPE_CHECKING:
    from benchmarks.fuzz.run import CliResult


def _has_surrogates(s: str) -> bool:
    return any(0xDC80 <= ord(c) <= 0xDCFF for c in s)


def _printed_variants(path: Path) -> list[str]:
    """How the CLI may print ``path`` on stderr (undecodable bytes become backslash escapes)."""
    s = str(path)
    if not _has_surrogates(s):
        return [s]
    return [s.encode("utf-8", "backslashreplace").decode("ascii", "replace"),
            s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")]


def decodes(path: Path) -> str | None:
    """None if ``path`` is a complete, decodable image, else why not."""
    try:
        with PILImage.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return "empty image"
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


SUMMARY = re.compile(r"^imgtrans: (\d+) converted, (\d+) skipped, (\d+) failed in [\d.]+ s; outputs in ", re.M)
_OWN_LINE = re.compile(r"^(imgtrans: |failed: |skipped: |failures:$|  |WARNING imgtrans[.\w]*: )")


@dataclass
class RunReport:
    name: str
    tried: int = 0
    converted: int = 0
    reported: int = 0
    failed_lines: int = 0
    skipped_lines: int = 0
    exit_code: int | None = None
    seconds: float = 0.0
    crash: bool = False
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # outcome differs from the case's expectation

    @property
    def ok(self) -> bool:
        return not self.crash and not self.tracebacks and not self.problems and not self.unexpected

    def line(self) -> str:
        return (f"{self.name:<12} tried {self.tried:4d}  converted {self.converted:4d}  reported {self.reported:4d}  "
                f"exit {self.exit_code}  crash {int(self.crash)}  tracebacks {self.tracebacks}  problems "
                f"{len(self.problems)}  unexpected {len(self.unexpected)}  noise {len(self.noise)}  "
                f"{self.seconds:.1f} s")


def plan_for(inputs: list[str | Path], out: Path, options: dict) -> dict[str, Path]:
    """``str(input) -> planned output`` as the engine plans it."""
    from imgtrans.engine import ConvertOptions, plan_jobs

    jobs, _ = plan_jobs([str(i) for i in inputs], ConvertOptions(output_dir=out, **options))
    return {str(j.src): j.dst for j in jobs}


def check_run(name: str, cases: list[Case], inputs: list[str | Path], out: Path, res: CliResult,
              plan: dict[str, Path], before: dict[str, str], after: dict[str, str],
              out_existing: set[str] = frozenset()) -> RunReport:
    """Check one CLI run against its cases (see the package docstring for what is checked)."""
    rep = RunReport(name, tried=len(cases), exit_code=res.returncode, seconds=res.seconds)
    _check_exit(rep, res)
    _check_stderr_lines(rep, cases, res.stderr)
    _check_cases(rep, cases, res.stderr, plan, out_existing)
    if res.returncode is not None:
        _check_summary(rep, res, out, out_existing)
    _check_output_folder(rep, out, plan, out_existing)
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        rep.problems.append(f"inputs modified: {changed[:5]}")
    return rep


def _check_exit(rep: RunReport, res: CliResult) -> None:
    """No hang, no signal, exit 0 or 1, no traceback on stderr."""
    err = res.stderr
    if res.returncode is None:
        rep.crash = True
        rep.problems.append("hang: the CLI did not finish before the timeout")
    elif res.returncode not in (0, 1):
        rep.crash = True
        rep.problems.append(f"exit code {res.returncode} (expected 0 or 1)")
    rep.tracebacks = err.count("Traceback (most recent call last)")
    if rep.tracebacks:
        rep.problems.append("traceback on stderr:\n" + err[err.find("Traceback") :][:1500])


def _check_stderr_lines(rep: RunReport, cases: list[Case], err: str) -> None:
    """Count the per-file lines; list every stderr line that is not the CLI's own as noise."""
    # C libraries (libtiff) write to the same stderr, unbuffered, from the I/O threads, so their
    # text can land in the middle of one of the CLI's lines: count the CLI's markers anywhere.
    failed_re = re.findall(r"failed: (?=/|batch|<)", err)
    skipped_re = re.findall(r"skipped: (?=/|<)", err)
    rep.failed_lines, rep.skipped_lines = len(failed_re), len(skipped_re)
    scrubbed = err
    for c in sorted(cases, key=lambda c: -len(str(c.path))):
        for v in _printed_variants(c.path):
            scrubbed = scrubbed.replace(v, "<PATH>")
    for line in scrubbed.splitlines():
        if line.strip() and not _OWN_LINE.match(line):
            rep.noise.append(line[:200])


def _check_cases(rep: RunReport, cases: list[Case], err: str, plan: dict[str, Path], out_existing: set[str]) -> None:
    """Each case converted (its output decodes, and is its own) or named with a reason, never
    both, never neither; and what its expectation says."""
    outputs_seen: dict[Path, str] = {}
    for c in cases:
        variants = _printed_variants(c.path)
        named_failed = any(f"failed: {v}: " in err for v in variants)
        named_skipped = any(f"skipped: {v}: " in err for v in variants)
        reason = ""
        for v in variants:
            m = re.search(re.escape(f"{v}: ") + r"(.*)", err)
            if m:
                reason = m.group(1)
                break
        dst = plan.get(str(c.path))
        converted = False
        if dst is not None and str(dst) not in out_existing and os.path.lexists(dst):
            why = decodes(dst)
            if why is not None:
                rep.problems.append(f"{c.path}: output {dst} does not decode ({why})")
            converted = True
            if dst in outputs_seen:
                rep.problems.append(f"{c.path}: shares its output {dst} with {outputs_seen[dst]}")
            outputs_seen[dst] = str(c.path)
        reported = named_failed or named_skipped
        if reported and not reason.strip():
            rep.problems.append(f"{c.path}: reported without a reason")
        if converted and named_failed:
            rep.problems.append(f"{c.path}: both converted and reported failed")
        if converted:
            rep.converted += 1
        elif reported:
            rep.reported += 1
        if c.expect == IGNORED:
            if not converted and not reported:
                rep.ignored.append(f"{c.path.name!r}: {c.note}")
            continue
        if not converted and not reported:
            rep.problems.append(f"{c.path}: LOST - neither converted nor reported ({c.note})")
        elif c.expect == OK and not converted:
            rep.unexpected.append(f"{c.path.relative_to(c.path.parents[1]) if len(c.path.parents) > 1 else c.path}: "
                                  f"expected to convert, got: {reason[:160]} ({c.note})")
        elif c.expect == FAIL and converted:
            rep.unexpected.append(f"{c.path.name!r}: expected a refusal, was converted ({c.note})")


def _check_summary(rep: RunReport, res: CliResult, out: Path, out_existing: set[str]) -> None:
    """The summary line's counts match the per-file lines and the new outputs; the exit code matches."""
    m = SUMMARY.search(res.stderr)
    if not m:
        rep.problems.append("no summary line")
    else:
        n_conv, n_skip, n_fail = map(int, m.groups())
        produced = {str(p) for p in out.rglob("*") if p.is_file() and str(p) not in out_existing}
        if n_fail != rep.failed_lines:
            rep.problems.append(f"summary says {n_fail} failed, stderr has {rep.failed_lines} 'failed:' lines")
        if n_skip != rep.skipped_lines:
            rep.problems.append(f"summary says {n_skip} skipped, stderr has {rep.skipped_lines} 'skipped:' lines")
        if n_conv != len(produced):
            rep.problems.append(f"summary says {n_conv} converted, the output folder has {len(produced)} new files")
        want = 1 if n_fail else 0
        if res.returncode != want:
            rep.problems.append(f"exit code {res.returncode} but {n_fail} failed (expected {want})")
        failures_list = res.stderr[res.stderr.find("\nfailures:\n") :] if "\nfailures:\n" in res.stderr else ""
        if n_fail and failures_list.count("\n  ") < n_fail:
            rep.problems.append("the final 'failures:' list is shorter than the failed count")


def _check_output_folder(rep: RunReport, out: Path, plan: dict[str, Path], out_existing: set[str]) -> None:
    """Nothing but planned outputs in the output folder, no temp files, nothing outside it."""
    planned = {str(p) for p in plan.values()}
    for p in out.rglob("*"):
        if p.is_file() and str(p) not in out_existing and str(p) not in planned:
            rep.problems.append(f"unexpected file in the output folder: {p}")
        if p.name.endswith(".part"):
            rep.problems.append(f"temporary file left behind: {p}")
    out_real = out.resolve()
    for p in out.rglob("*"):
        if out_real not in p.resolve().parents and p.resolve() != out_real:
            rep.problems.append(f"output outside the output folder: {p}")
