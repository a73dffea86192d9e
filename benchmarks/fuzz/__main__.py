"""The fuzz benchmark's command line (``python benchmarks/fuzz_inputs.py`` or ``python -m
benchmarks.fuzz``): generate the inputs, run the batches, print the figures and every problem."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fuzz import __doc__ as PACKAGE_DOC
from benchmarks.fuzz.builders import FAIL, IGNORED, Case
from benchmarks.fuzz.categories import CATEGORIES, generate
from benchmarks.fuzz.filesystem import make_perms_tree
from benchmarks.fuzz.oracle import RunReport
from benchmarks.fuzz.run import rmtree, run_batch, tiny_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=PACKAGE_DOC.split("\n\n")[0])
    ap.add_argument("--subset", action="store_true", help="only the fixed-seed subset the test suite runs")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    ap.add_argument("--models", default="denoise,sr,style",
                    help="models for the one-batch run (comma list of denoise,sr,style)")
    ap.add_argument("--no-categories", action="store_true", help="skip the per-category batches")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="imgtrans-fuzz-"))
    root = (args.keep or work / "inputs").resolve()
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    cases = generate(root, args.seed, args.subset)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(cases)} hostile inputs in {len(CATEGORIES)} categories under {root} ({gen_s:.1f} s)")
    for cat in CATEGORIES:
        print(f"  {cat:<10} {sum(c.category == cat for c in cases):4d}")
    models = {k: tiny_model(work / f"{k}.safetensors", k) for k in args.models.split(",")}
    extra = ["-r"] + (["--max-pixels", "4000000"] if args.subset else [])
    reports: list[RunReport] = []
    for kind, model in models.items():
        reports.append(_show(run_batch(f"all/{kind}", cases, [root], work / f"out-all-{kind}", model, extra)))
    if not args.no_categories:
        reports += _category_batches(cases, root, work, models[next(iter(models))], extra)
    if os.geteuid() == 0 and shutil.which("setpriv"):
        reports.append(_show(_perms_batch(work, models[next(iter(models))], args.seed)))
    else:
        print("perms/nobody: skipped (needs root and setpriv to drop privileges)")
    figures = _print_figures(cases, reports)
    if args.json:
        args.json.write_text(json.dumps({**figures, "reports": [
            {"name": r.name, "tried": r.tried, "converted": r.converted, "reported": r.reported, "exit": r.exit_code,
             "seconds": round(r.seconds, 1), "problems": r.problems, "unexpected": r.unexpected, "noise": r.noise}
            for r in reports]}, indent=2))
    if args.keep is None:
        rmtree(work)
    return 0 if figures["crashes"] == figures["tracebacks"] == figures["problems"] == figures["unexpected"] == 0 else 1


def _show(rep: RunReport) -> RunReport:
    print(rep.line(), flush=True)
    return rep


def _category_batches(cases: list[Case], root: Path, work: Path, model: Path, extra: list[str]) -> list[RunReport]:
    """One batch per category, then one with the special files named on the command line."""
    reports = []
    for cat in CATEGORIES:
        sub = [c for c in cases if c.category == cat]
        reports.append(_show(run_batch(f"cat/{cat}", sub, [root / cat], work / f"out-cat-{cat}", model, extra,
                                       hash_root=root)))
    # explicit file arguments (not folders): special files named on the command line
    explicit = [c for c in cases if c.category in ("links", "special", "notimage", "empty") and c.expect != IGNORED
                and c.path.parent.name in ("links", "special", "notimage", "empty")]
    missing = Case(root / "does-not-exist.png", "explicit", FAIL, "missing file named on the command line")
    reports.append(_show(run_batch("explicit", explicit + [missing], [c.path for c in explicit] + [missing.path],
                                   work / "out-explicit", model, [], hash_root=root)))
    return reports


def _perms_batch(work: Path, model: Path, seed: int) -> RunReport:
    """The permission cases, run as the unprivileged user ``nobody`` (root reads every file)."""
    proot = work / "perms-in"
    pcases = make_perms_tree(proot, seed)
    pout = work / "perms-out"
    pout.mkdir()
    for p in (work, proot, proot / "perms", pout):
        os.chmod(p, 0o777)
    pmodel = work / "perms-model.safetensors"
    shutil.copy(model, pmodel)
    os.chmod(pmodel, 0o644)
    (work / "home").mkdir(exist_ok=True)
    os.chmod(work / "home", 0o777)
    return run_batch("perms/nobody", pcases, [proot / "perms"], pout, pmodel, ["-r"], hash_root=proot, user="65534",
                     env={"IMGTRANS_HOME": str(work / "home")})


def _print_figures(cases: list[Case], reports: list[RunReport]) -> dict:
    """Print the totals and every problem; return the totals."""
    total_tried = sum(r.tried for r in reports)
    crashes = sum(r.crash for r in reports)
    tracebacks = sum(r.tracebacks for r in reports)
    lost = sum(sum("LOST" in p for p in r.problems) for r in reports)
    problems = sum(len(r.problems) for r in reports)
    unexpected = sum(len(r.unexpected) for r in reports)
    print()
    print(f"inputs generated: {len(cases)}; file checks over all runs: {total_tried}; runs: {len(reports)}")
    print(f"crashes: {crashes}; tracebacks: {tracebacks}; files lost (neither converted nor reported): {lost}; "
          f"other problems: {problems - lost}; outcome different from expected: {unexpected}")
    for r in reports:
        for p in r.problems:
            print(f"  PROBLEM [{r.name}] {p}")
        for u in r.unexpected:
            print(f"  UNEXPECTED [{r.name}] {u}")
    noise = sorted({n for r in reports for n in r.noise})
    if noise:
        print("stderr lines that are not the CLI's own:")
        for n in noise[:30]:
            print(f"  {n}")
    ignored = sorted({i for r in reports for i in r.ignored})
    if ignored:
        print("left out silently by design:")
        for i in ignored:
            print(f"  {i}")
    return {"inputs": len(cases), "checks": total_tried, "runs": len(reports), "crashes": crashes,
            "tracebacks": tracebacks, "lost": lost, "problems": problems, "unexpected": unexpected}


if __name__ == "__main__":
    sys.exit(main())
