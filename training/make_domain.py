#!/usr/bin/env python3
"""Make a training domain folder from a fetched set by file-name prefixes (stdlib only).

    python training/make_domain.py --src ~/.cache/imgtrans/data/space-photos \
        --out ~/.cache/imgtrans/data/domains/arid --prefix desert dune badlands canyon

The folder holds symbolic links to the chosen images and a ``splits.json`` that is the parent's
split restricted to them, so a domain never moves a file from the parent's test split into
training. Running it again rebuilds the folder.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="fetched set folder (has splits.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--prefix", nargs="+", required=True, help="file-name prefixes (letters before the first digit)")
    args = ap.parse_args()

    splits = json.loads((args.src / "splits.json").read_text())
    wanted = {p.lower() for p in args.prefix}
    chosen = sorted(
        name for part in ("train", "val", "test") for name in splits[part]
        if re.sub(r"[\d].*$", "", Path(name).stem.lower()).rstrip("-_") in wanted
    )
    if not chosen:
        raise SystemExit(f"no files in {args.src} start with {sorted(wanted)}")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for name in chosen:
        (args.out / name).symlink_to((args.src / name).resolve())
    sub = {part: [n for n in splits[part] if n in set(chosen)] for part in ("train", "val", "test")}
    sub.update({"counts": {k: len(v) for k, v in sub.items()}, "parent": str(args.src), "prefixes": sorted(wanted)})
    (args.out / "splits.json").write_text(json.dumps(sub, indent=1))
    licence = args.src / "LICENSE.txt"
    if licence.exists():
        shutil.copy(licence, args.out / "LICENSE.txt")
    print(f"{args.out}: {len(chosen)} images {sub['counts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
