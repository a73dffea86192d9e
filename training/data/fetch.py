#!/usr/bin/env python3
"""Fetch real training images for imgtrans from Debian packages (stdlib only).

    python training/data/fetch.py SET [SET ...] [--dest DIR] [--force] [--keep-debs] [--pd-only]
    python training/data/fetch.py all
    python training/data/fetch.py --list

SET is one of: space-photos, space-photos-lowres, paintings, vangogh, ukiyoe, puzzle-photos, skimage, all.
vangogh and ukiyoe put puzzle pieces together with Pillow: run those with the project's venv python.

Each set is downloaded with ``apt-get download PKG`` (no root needed for that; as root a
missing package list is fixed by running ``apt-get update`` once), unpacked with
``dpkg-deb -x`` into a temporary folder, and the selected images are copied byte-for-byte
(no re-encoding) into ``DEST/<set>/`` together with:

* ``LICENSE.txt``     licence summary (per file where the Debian copyright file says so),
                      package name and version;
* ``copyright-<pkg>.txt``  the package's Debian copyright file, verbatim;
* ``manifest.json``   one record per image: source package/version/path, licence,
                      copyright holder, width, height, bytes, sha256;
* ``splits.json``     deterministic disjoint train/val/test split (see split.py);
* ``.complete.json``  marker with the file count: a later run finds it and does nothing.

DEST defaults to ``$IMGTRANS_DATA`` or ``~/.cache/imgtrans/data``. Downloaded .deb files
go to ``DEST/.debs/`` and are deleted after unpacking unless ``--keep-debs``.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import split as _split  # (training/data/split.py, stdlib only)

FETCH_VERSION = 1
MARKER = ".complete.json"
PD_LICENCES = {"public-domain", "public domain", "cc0", "cc0-1.0"}


# --------------------------------------------------------------------------- sets

@dataclass
class Source:
    package: str
    root: str                 # path inside the .deb that DEP-5 paths are relative to
    dirs: tuple               # folders under root to take images from (not recursive)
    exts: tuple = (".jpg", ".jpeg", ".png")
    min_side: int = 0         # drop images whose shorter side is below this
    strip: str = ""           # suffix removed from the stem (e.g. "@2x") so sets pair up
    licence: str = "dep5"     # "dep5" | "gpl-wesnoth" | "kde-desktop"
    rcc: str = ""             # a Qt resource file under root: dirs are folders inside it (read_rcc)
    rcc_prefix: str = ""      # leading part of the paths inside rcc that the copyright file omits
    name_re: str = ""         # only file names that match this regular expression (whole name)
    puzzles: str = ""         # dirs hold GCompris puzzle boards: assemble those whose title matches this


@dataclass
class DataSet:
    name: str
    what: str
    sources: tuple = ()
    licence_summary: str = ""
    expected: str = ""
    kind: str = "deb"         # "deb" | "skimage"
    extra_notes: list = field(default_factory=list)


ES_HI = "usr/share/games/endless-sky/plugins/endless-sky-high-dpi"
ES_LO = "usr/share/games/endless-sky"
WES = "usr/share/games/wesnoth/1.16"
GC = "usr/share/gcompris-qt"

SETS: dict[str, DataSet] = {
    "space-photos": DataSet(
        name="space-photos",
        what="Real photographs used as Endless Sky's planet-landing backdrops: landscapes "
             "(canyons, coasts, mountains, cities, snow, lava), NASA launch/ISS/Earthrise photos. "
             "1440x720 JPEG. Only images/land/ is taken: ships, outfits, planets (RGBA sprites), "
             "UI, effects and the mixed photo/render images/scene/ are left out.",
        sources=(Source("endless-sky-high-dpi", ES_HI, ("images/land",), (".jpg",), 600, "@2x"),),
        licence_summary="per file (Debian copyright, DEP-5): mostly public-domain (NASA, USGS, "
                        "unsplash.com, morguefile.com), some CC-BY-SA-3.0 / CC-BY-SA-4.0 (named "
                        "photographers: bwerner, myrabella, dmottl, mfield, *-sfiera, *-harro, ...)",
        expected="273 images, 1440x720 (one 1439x720), ~70 MB",
    ),
    "space-photos-lowres": DataSet(
        name="space-photos-lowres",
        what="The same pictures as space-photos at 720x360 (endless-sky-data), same file names.",
        sources=(Source("endless-sky-data", ES_LO, ("images/land",), (".jpg",), 300),),
        licence_summary="per file, as space-photos",
        expected="273 images, 720x360, ~20 MB",
    ),
    "paintings": DataSet(
        name="paintings",
        what="Painted story art of Battle for Wesnoth: core landscape backgrounds (1280x960 / "
             "1300x970), The Rise of Wesnoth's story paintings (1920x1080) and the story paintings of "
             "five more campaigns (Heir to the Throne, Descent into Darkness, Liberty, The South Guard, "
             "A Tale of Two Brothers; 600-1024 px). Units, portraits, terrain tiles, icons, maps, logos and "
             "the in-game map views of Secrets of the Ancients are left out, and Delfador's Memoirs, whose "
             "one story picture is a copy of Heir to the Throne's.",
        sources=(
            Source("wesnoth-1.16-data", WES, ("data/core/images/story",), (".jpg",), 700,
                   licence="gpl-wesnoth"),
            Source("wesnoth-1.16-trow", WES,
                   ("data/campaigns/The_Rise_Of_Wesnoth/images/story",), (".jpg",), 700,
                   licence="gpl-wesnoth"),
            *(Source(f"wesnoth-1.16-{pkg}", WES, (f"data/campaigns/{folder}/images/story",), (".jpg", ".png"), 380,
                     licence="gpl-wesnoth")
              for pkg, folder in (("httt", "Heir_To_The_Throne"), ("did", "Descent_Into_Darkness"),
                                  ("l", "Liberty"), ("tsg", "The_South_Guard"), ("ttb", "Two_Brothers"))),
        ),
        licence_summary="GPL-2+ (all Wesnoth art; Debian copyright file of the packages)",
        expected="61 images (18 core 1280x960..1300x970, 19 TRoW 1920x1080, 24 from five campaigns "
                 "600x600..1024x768), ~16 MB",
    ),
    "vangogh": DataSet(
        name="vangogh",
        what="Nine paintings by Vincent van Gogh (The Church at Auvers, Cafe Terrace at Night, The "
             "Night Cafe, Portrait of Pere Tanguy, The Langlois Bridge, Village Street in Auvers, and three "
             "more), 376-668 x 469-500 px, from GCompris's data package: eight WebP files of its 'find the "
             "details' activity (the whole painting it shows behind the pieces, Qt resource file "
             "details.rcc), and one PNG put together from the pieces of its painting puzzle (paintings.rcc). "
             "The castle and monument photos of that activity are left out.",
        sources=(Source("gcompris-qt-data", GC, ("gcompris/src/activities/details/resource/image",),
                        (".webp",), 350, "_background", rcc="rcc/details.rcc", rcc_prefix="gcompris/",
                        name_re=r"(?i)(.*gogh.*|eglise_dauvers-sur-oise|portraitofperetanguy)_background\.webp"),
                 Source("gcompris-qt-data", GC, ("gcompris/src/activities/paintings/resource/board",),
                        (".qml",), 300, rcc="rcc/paintings.rcc", rcc_prefix="gcompris/",
                        puzzles=r"Vincent Van Gogh,.*")),
        licence_summary="GPL-3 / GPL-3+ (GCompris's Debian copyright file: src/activities/details/resource/"
                        "image/*, Bruno Coudoin and others; paintings/resource/image/*, WebMuseum); the "
                        "paintings themselves are in the public domain",
        expected="9 images, 376x500..668x500 WebP and one 600x469 PNG, ~1.3 MB; needs Pillow (the project's "
                 "venv python) for the puzzle",
    ),
    "ukiyoe": DataSet(
        name="ukiyoe",
        what="Nine Japanese woodblock prints (ukiyo-e) by Katsushika Hokusai and Utagawa Hiroshige: The Great "
             "Wave off Kanagawa, Ejiri in Suruga Province, Kazusa Sea Route, Sunset over the Ryogoku Bridge, the "
             "Benzaiten Shrine at Inokashira in Snow, Poppies, Horse-mackerel and Prawn, Oiran and Kamuro, Woman "
             "holding a fan; 306-702 x 449-499 px PNG, each put together from the pieces of GCompris's painting "
             "puzzle (Qt resource file paintings.rcc, board positions from the puzzle's QML).",
        sources=(Source("gcompris-qt-data", GC, ("gcompris/src/activities/paintings/resource/board",),
                        (".qml",), 300, rcc="rcc/paintings.rcc", rcc_prefix="gcompris/",
                        puzzles=r"(Katsushika Hokusai?|Utagawa Hiroshige),.*"),),
        licence_summary="GPL-3+ (GCompris's Debian copyright file: src/activities/paintings/resource/image/*, "
                        "from the WebMuseum); the prints themselves are in the public domain",
        expected="9 images, 306x449..702x499 PNG, ~4.2 MB; needs Pillow (the project's venv python)",
    ),
    "puzzle-photos": DataSet(
        name="puzzle-photos",
        what="KDE Palapeli's puzzle photos (bridge, citrus fruits, honey bee, castle, chameleon), "
             "~1000-1600 px JPEG. Small but everyday-photo content.",
        sources=(Source("palapeli-data", "usr/share/palapeli", ("collection",), (".jpg",), 500,
                        licence="kde-desktop"),),
        licence_summary="per file from each puzzle's .desktop: 3 Public Domain (bridge, citrus "
                        "fruits, honey bee), 2 GNU FDL (castle, chameleon)",
        expected="5 images, ~1.5 MB",
    ),
    "skimage": DataSet(
        name="skimage",
        kind="skimage",
        what="scikit-image's bundled lossless sample photos (astronaut, chelsea, coffee, rocket, "
             "hubble deep field; grayscale camera, coins, brick/grass/gravel textures). Uses an "
             "importable scikit-image, else `pip download scikit-image` (wheel, no install).",
        licence_summary="per file (scikit-image data docstrings): public domain or CC0",
        expected="10 images, 300..1000 px, ~4 MB",
    ),
}

# scikit-image sample files we take, with the licence stated in skimage/data/_fetchers.py
# (checked against scikit-image 0.26.0). Motorcycle (Middlebury, no licence stated),
# logos, text pages and synthetic images are left out on purpose.
SKIMAGE_FILES = {
    "astronaut.png": ("public-domain", "NASA (Eileen Collins), NASA Great Images database"),
    "chelsea.png": ("CC0", "Stefan van der Walt"),
    "coffee.png": ("CC0", "Rachel Michetti"),
    "rocket.jpg": ("public-domain", "SpaceX, released into the public domain"),
    "hubble_deep_field.jpg": ("public-domain", "NASA / HubbleSite"),
    "camera.png": ("CC0", "Lav Varshney"),
    "coins.png": ("no known copyright restrictions", "Brooklyn Museum collection"),
    "brick.png": ("CC0", "CC0Textures (Bricks25)"),
    "grass.png": ("CC0", "CC0Textures (Grass)"),
    "gravel.png": ("CC0", "CC0Textures (Gravel04)"),
}

WESNOTH_GPL = (
    "GPL-2+",
    "Battle for Wesnoth contributors (story art by e.g. Emilien Rotival (LordBob) and others, "
    "see data/core/about.cfg in the game)",
    "Debian copyright file: 'This program is free software; you can redistribute it and/or "
    "modify it under the terms of the GNU General Public License version 2 or at your option "
    "any later version.' (applies to the whole game, art included)",
)


# --------------------------------------------------------------------------- image headers

def image_size(path: Path):
    """(width, height) of a PNG, JPEG or WebP from its header, or None (stdlib only)."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(head[12:])
        if not head.startswith(b"\xff\xd8"):
            return None
        f.seek(2)
        while True:
            b = f.read(1)
            while b and b != b"\xff":
                b = f.read(1)
            while b == b"\xff":
                b = f.read(1)
            if not b:
                return None
            marker = b[0]
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
                continue
            if marker == 0xD9:
                return None
            seglen = struct.unpack(">H", f.read(2))[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                _prec, h, w = struct.unpack(">BHH", f.read(5))
                return (w, h)
            f.seek(seglen - 2, 1)


def _webp_size(chunk: bytes):
    """(width, height) from the first chunk of a WebP file (after "RIFF....WEBP")."""
    kind = chunk[:4]
    if kind == b"VP8 " and chunk[11:14] == b"\x9d\x01\x2a":  # lossy: frame tag, start code, 14-bit sizes
        w, h = struct.unpack("<HH", chunk[14:18])
        return (w & 0x3FFF, h & 0x3FFF)
    if kind == b"VP8L" and chunk[8:9] == b"\x2f":  # lossless: signature, then 14+14 bits of size - 1
        bits = int.from_bytes(chunk[9:13], "little")
        return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X":  # extended: 24-bit canvas size - 1
        return (int.from_bytes(chunk[12:15], "little") + 1, int.from_bytes(chunk[15:18], "little") + 1)
    return None


def read_rcc(data: bytes) -> dict:
    """The files of a compiled Qt resource file (rcc format 1-3) as {path: bytes} (stdlib only).

    Layout: a "qres" header (version, then the offsets of the node tree, the file data and the
    names), a tree of 14-byte nodes (22 from version 2, which add a modification time), names
    as length + hash + UTF-16BE, and each file's data as a 4-byte length and the bytes, which
    are zlib-compressed (after a 4-byte uncompressed length) when the node's flag 1 is set.
    """
    if data[:4] != b"qres":
        raise FetchError("not a Qt resource file (no 'qres' header)")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    if version not in (1, 2, 3):
        raise FetchError(f"Qt resource format {version} is not supported")
    node_size = 14 if version == 1 else 22

    def name_at(off: int) -> str:
        n = struct.unpack(">H", data[names + off: names + off + 2])[0]
        return data[names + off + 6: names + off + 6 + 2 * n].decode("utf-16-be")

    files, stack = {}, [(0, "")]
    while stack:
        index, folder = stack.pop()
        base = tree + index * node_size
        name_off, flags = struct.unpack(">IH", data[base: base + 6])
        path = f"{folder}{name_at(name_off)}" if index else ""
        if flags & 2:  # directory: child count, first child index
            count, first = struct.unpack(">II", data[base + 6: base + 14])
            stack.extend((c, f"{path}/" if index else "") for c in range(first, first + count))
            continue
        off = payload + struct.unpack(">I", data[base + 10: base + 14])[0]
        size = struct.unpack(">I", data[off: off + 4])[0]
        blob = data[off + 4: off + 4 + size]
        if flags & 4:
            raise FetchError(f"{path}: zstd-compressed resource (not readable with the stdlib)")
        files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob
    return files


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- DEP-5 copyright

def parse_dep5(text: str):
    """Paragraphs of a machine-readable debian/copyright as dicts (field -> str)."""
    paras = []
    for block in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, val = line.partition(":")
                key = key.strip()
                fields[key] = val.strip()
        if fields:
            paras.append(fields)
    return paras


def _dep5_glob(pattern: str):
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


class Dep5:
    """Per-file licence lookup in a DEP-5 (machine-readable) debian/copyright.

    The DEP-5 rule is "the last Files paragraph that matches wins". Endless Sky's file has
    overlapping globs, though: ``images/land/mountain1*`` (unsplash, public-domain) also
    matches ``mountain16-striker.jpg`` / ``mountain17-harro.jpg`` which an earlier paragraph
    (``images/land/*-striker*``, ``*-harro*``) gives to a named photographer under
    CC-BY-SA-4.0. So, conservatively: when several *specific* patterns (not a bare ``dir/*``
    or ``*``) match one file and disagree, the non-public-domain licence is used and the
    record says so.
    """

    def __init__(self, text: str):
        self.files = []
        for p in parse_dep5(text):
            if "Files" in p and "License" in p:
                raw = p["Files"].split()
                self.files.append(([(_dep5_glob(x), x) for x in raw], p))

    @staticmethod
    def _record(p: dict) -> dict:
        lic, _, expl = p["License"].partition("\n")
        note = " ".join((expl + " " + p.get("Comment", "")).split())
        return {"licence": lic.strip(), "copyright": " ".join(p.get("Copyright", "").split()),
                "note": note, "stanza": " ".join(p["Files"].split())[:200]}

    def lookup(self, relpath: str) -> dict:
        matches = []  # (paragraph, pattern text), in file order
        for pats, p in self.files:
            hit = [raw for rx, raw in pats if rx.match(relpath)]
            if hit:
                matches.append((p, hit[0]))
        if not matches:
            return {"licence": "unknown", "copyright": "", "note": "no Files stanza matched"}
        chosen = matches[-1][0]
        specific = [(p, raw) for p, raw in matches if raw != "*" and not raw.endswith("/*")]
        lics = {self._record(p)["licence"] for p, _ in specific}
        if len(lics) > 1:
            strict = [p for p, _ in specific if not is_pd(self._record(p)["licence"])]
            if strict:
                chosen = strict[-1]
                rec = self._record(chosen)
                others = "; ".join(f"{raw} -> {self._record(p)['licence']}" for p, raw in specific)
                rec["note"] = (rec["note"] + " " if rec["note"] else "") + (
                    f"[ambiguous in the copyright file ({others}); the stricter licence is used]")
                return rec
        return self._record(chosen)


def read_desktop(path: Path) -> dict:
    out = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            k, sep, v = line.partition("=")
            if sep and "[" not in k:
                out[k.strip()] = v.strip()
    return out


def is_pd(licence: str) -> bool:
    return licence.strip().lower() in PD_LICENCES


# --------------------------------------------------------------------------- apt / dpkg

class FetchError(RuntimeError):
    pass


_apt_updated = False


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def apt_download(pkg: str, debdir: Path) -> Path:
    """Download PKG's .deb into debdir (reusing one already there)."""
    global _apt_updated
    debdir.mkdir(parents=True, exist_ok=True)
    have = sorted(debdir.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
    if have:
        return have[-1]
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise FetchError("apt-get and dpkg-deb are needed (a Debian/Ubuntu system)")
    cmd = ["apt-get"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # apt drops to the _apt user, which cannot write into root's folders: stay root.
        cmd += ["-o", "APT::Sandbox::User=root"]
    cmd += ["download", pkg]
    for attempt in (1, 2):
        print(f"  apt-get download {pkg} ...", flush=True)
        r = _run(cmd, cwd=debdir)
        have = sorted(debdir.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
        if r.returncode == 0 and have:
            return have[-1]
        if attempt == 1 and not _apt_updated:
            _apt_updated = True
            print(f"  download failed ({(r.stderr or r.stdout).strip().splitlines()[-1:]}); "
                  "running apt-get update once", flush=True)
            u = _run(["apt-get", "update"])
            if u.returncode != 0:
                hint = "" if os.geteuid() == 0 else " (not root: run `sudo apt-get update` first)"
                raise FetchError(f"apt-get update failed{hint}:\n{u.stderr.strip()[-800:]}")
            continue
        break
    raise FetchError(f"apt-get download {pkg} failed:\n{(r.stderr or r.stdout).strip()[-800:]}")


def deb_version(deb: Path) -> str:
    r = _run(["dpkg-deb", "-f", str(deb), "Version"])
    if r.returncode != 0:
        raise FetchError(f"dpkg-deb -f {deb} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def deb_unpack(deb: Path, into: Path) -> None:
    r = _run(["dpkg-deb", "-x", str(deb), str(into)])
    if r.returncode != 0:
        raise FetchError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()}")


# --------------------------------------------------------------------------- building a set

def _copy_record(src: Path, dst_dir: Path, name: str, rec: dict, used: set) -> dict:
    if name in used:
        stem, ext = os.path.splitext(name)
        name = f"{rec['source_package'].split('-')[-1]}_{stem}{ext}"
    used.add(name)
    dst = dst_dir / name
    shutil.copyfile(src, dst)
    w, h = image_size(dst) or (0, 0)
    rec.update(file=name, width=w, height=h, bytes=dst.stat().st_size, sha256=sha256_file(dst))
    return rec


def build_deb_set(ds: DataSet, stage: Path, debdir: Path, work: Path, keep_debs: bool):
    records, packages, used = [], {}, set()
    for src in ds.sources:
        deb = apt_download(src.package, debdir)
        version = deb_version(deb)
        packages[src.package] = version
        with tempfile.TemporaryDirectory(prefix=f"unpack-{src.package}-", dir=work) as tmp:
            tmp = Path(tmp)
            print(f"  dpkg-deb -x {deb.name}", flush=True)
            deb_unpack(deb, tmp)
            cfile = tmp / "usr/share/doc" / src.package / "copyright"
            ctext = cfile.read_text(encoding="utf-8", errors="replace") if cfile.is_file() else ""
            (stage / f"copyright-{src.package}.txt").write_text(ctext, encoding="utf-8")
            dep5 = Dep5(ctext) if src.licence == "dep5" else None
            root, where = tmp / src.root, f"/{src.root}/"
            if src.rcc:  # a Qt resource file inside the package: unpacked like the package itself
                root, where = unpack_rcc(root / src.rcc, tmp / ".rcc", src), f"/{src.root}/{src.rcc}:"
            if src.puzzles:
                records += _assemble_puzzles(src, root, where, version, dep5, stage, used)
            for d in () if src.puzzles else src.dirs:
                folder = root / d
                if not folder.is_dir():
                    raise FetchError(f"{src.package}: {where}{d} not found in the package")
                for p in sorted(folder.iterdir()):
                    if not p.is_file() or p.suffix.lower() not in src.exts:
                        continue
                    if src.name_re and not re.fullmatch(src.name_re, p.name):
                        continue
                    size = image_size(p)
                    if size is None or min(size) < src.min_side:
                        continue
                    rel = f"{d}/{p.name}"
                    name = p.name
                    if src.strip:
                        stem, ext = os.path.splitext(name)
                        if stem.endswith(src.strip):
                            name = stem[: -len(src.strip)] + ext
                    rec = {"source_package": src.package, "package_version": version,
                           "source_path": f"{where}{rel}"}
                    if dep5 is not None:
                        rec.update(dep5.lookup(rel.removeprefix(src.rcc_prefix)))
                    elif src.licence == "gpl-wesnoth":
                        rec.update(licence=WESNOTH_GPL[0], copyright=WESNOTH_GPL[1], note="")
                    elif src.licence == "kde-desktop":
                        meta = read_desktop(p.with_suffix(".desktop"))
                        rec.update(licence=meta.get("X-KDE-PluginInfo-License", "unknown"),
                                   copyright=meta.get("X-KDE-PluginInfo-Author", ""),
                                   note=" - ".join(x for x in (meta.get("Name", ""),
                                                               meta.get("Comment", "")) if x))
                    records.append(_copy_record(p, stage, name, rec, used))
        if not keep_debs:
            deb.unlink(missing_ok=True)
    return records, packages


def unpack_rcc(rcc: Path, into: Path, src: Source) -> Path:
    """Write the files of the Qt resource file rcc under into (paths as inside it); returns into."""
    if not rcc.is_file():
        raise FetchError(f"{src.package}: {src.root}/{src.rcc} not found in the package")
    for rel, data in read_rcc(rcc.read_bytes()).items():
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        (into / rel).write_bytes(data)
    return into


_BOARD_TITLE = re.compile(r'instruction:\s*qsTr\("([^"]*)"\)')
_BOARD_SIZE = re.compile(r'"type"\s*:\s*"SHAPE_BACKGROUND_IMAGE",\s*"width"\s*:\s*(\d+),\s*"height"\s*:\s*(\d+)')
_BOARD_PIECE = re.compile(r'"pixmapfile"\s*:\s*"(image/[^"]+)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"')


def _assemble_puzzles(src: Source, root: Path, where: str, version: str, dep5, stage: Path, used: set) -> list:
    """One PNG per GCompris puzzle board (in src.dirs) whose title matches src.puzzles.

    A board (babymatch QML) names a background size and, per piece, its image and the position of its
    centre as fractions of that size; the pieces are cut from one picture with no overlap. They are
    pasted back, the picture is cropped to the pieces, and the few pixels that no piece covers (0.2 %
    along the cuts) are filled from their neighbours. Needs Pillow and NumPy, so run fetch.py with the
    project's venv python for these sets.
    """
    try:
        import numpy as np
        from PIL import Image, ImageFilter
    except ImportError as e:
        raise FetchError(f"assembling GCompris puzzles needs Pillow and NumPy ({e}): run fetch.py with "
                         "the project's venv python (.venv/bin/python)") from None
    records = []
    for d in src.dirs:
        boards = sorted((root / d).glob("*.qml"))
        if not boards:
            raise FetchError(f"{src.package}: no puzzle boards in {where}{d}")
        for b in boards:
            text = b.read_text(encoding="utf-8")
            title, size = _BOARD_TITLE.search(text), _BOARD_SIZE.search(text)
            pieces = _BOARD_PIECE.findall(text)
            if not (title and size and pieces) or not re.fullmatch(src.puzzles, title.group(1)):
                continue
            w, h = int(size.group(1)), int(size.group(2))
            canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            folder = d.rpartition("/")[0]
            for rel, fx, fy in pieces:
                piece = Image.open(root / folder / rel).convert("RGBA")
                canvas.alpha_composite(piece, (round(float(fx) * w - piece.width / 2),
                                               round(float(fy) * h - piece.height / 2)))
            canvas = canvas.crop(canvas.getbbox())
            rgba = np.asarray(canvas).astype(np.float32)
            alpha = rgba[..., 3:] / 255.0
            rgb = Image.fromarray((rgba[..., :3] * alpha).round().astype(np.uint8))
            weight = Image.fromarray((alpha[..., 0] * 255).astype(np.uint8))
            blur = ImageFilter.BoxBlur(2)
            near = np.asarray(rgb.filter(blur)).astype(np.float32)
            near_w = np.asarray(weight.filter(blur)).astype(np.float32)[..., None] / 255.0
            filled = np.where(alpha > 0, rgba[..., :3], near / np.maximum(near_w, 1e-3))
            picture = Image.fromarray(filled.clip(0, 255).round().astype(np.uint8), "RGB")
            if min(picture.size) < src.min_side:
                continue
            name = re.sub(r"[_-]([a-e]\d|\d+)\.\w+$", "", pieces[0][0].rpartition("/")[2]) + ".png"
            tmp = stage / f".tmp-{name}"
            picture.save(tmp, optimize=True)
            rec = {"source_package": src.package, "package_version": version,
                   "source_path": f"{where}{d}/{b.name}",
                   "title": title.group(1), "assembled_from": len(pieces),
                   "uncovered_pixels_filled": int((alpha == 0).sum())}
            if dep5 is not None:
                rec.update(dep5.lookup(f"{folder}/{pieces[0][0]}".removeprefix(src.rcc_prefix)))
            records.append(_copy_record(tmp, stage, name, rec, used))
            tmp.unlink()
    return records


def _skimage_source(work: Path, debdir: Path):
    """(dict name -> bytes reader, version, where) for scikit-image's data folder."""
    spec = importlib.util.find_spec("skimage")
    if spec and spec.origin:
        d = Path(spec.origin).parent / "data"
        try:
            version = importlib.metadata.version("scikit-image")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return {n: (d / n).read_bytes for n in SKIMAGE_FILES if (d / n).is_file()}, version, str(d)
    wheels = debdir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    have = sorted(wheels.glob("scikit_image-*.whl"))
    if not have:
        print("  scikit-image is not importable: pip download scikit-image (wheel only, no install)",
              flush=True)
        r = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "-q", "-d", str(wheels), "scikit-image"])
        have = sorted(wheels.glob("scikit_image-*.whl"))
        if r.returncode != 0 or not have:
            raise FetchError("scikit-image is not importable and `pip download scikit-image` "
                             f"failed:\n{(r.stderr or r.stdout).strip()[-600:]}")
    whl = have[-1]
    version = whl.name.split("-")[1]
    z = zipfile.ZipFile(whl)
    names = set(z.namelist())
    readers = {n: (lambda m=f"skimage/data/{n}": z.read(m))
               for n in SKIMAGE_FILES if f"skimage/data/{n}" in names}
    return readers, version, whl.name


def build_skimage_set(ds: DataSet, stage: Path, debdir: Path, work: Path, keep_debs: bool):
    readers, version, _where = _skimage_source(work, debdir)
    records, used = [], set()
    for n, read in sorted(readers.items()):
        tmp = stage / f".tmp-{n}"
        tmp.write_bytes(read())
        lic, who = SKIMAGE_FILES[n]
        rec = {"source_package": "scikit-image (PyPI)", "package_version": version,
               "source_path": f"skimage/data/{n}", "licence": lic, "copyright": who,
               "note": "licence as stated in skimage/data/_fetchers.py"}
        records.append(_copy_record(tmp, stage, n, rec, used))
        tmp.unlink()
    if not keep_debs:
        shutil.rmtree(debdir / "wheels", ignore_errors=True)
    return records, {"scikit-image": version}


# --------------------------------------------------------------------------- licence file

def write_licence(ds: DataSet, stage: Path, records: list, packages: dict, pd_only: bool,
                  title: str):
    by = {}
    for r in records:
        by.setdefault((r["licence"], r["copyright"], r.get("note", "")), []).append(r["file"])
    lines = [
        f"imgtrans data set: {title}",
        "=" * (19 + len(title)),
        "",
        ds.what,
        "",
        "Source: " + ", ".join(f"{p} {v}" for p, v in packages.items())
        + ("  (Debian package, `apt-get download`)" if ds.kind == "deb" else ""),
        f"Files: {len(records)} images" + ("  (public-domain/CC0 files only: --pd-only)" if pd_only else ""),
        f"Licence summary: {ds.licence_summary}",
        "",
        "Licence counts:",
    ]
    for lic, n in Counter(r["licence"] for r in records).most_common():
        lines.append(f"  {n:4d}  {lic}")
    how = {"deb": "per file as the Debian copyright file says (DEP-5 Files paragraphs) where it "
                  "is machine-readable, else the package-wide licence",
           "skimage": "per file as scikit-image's data docstrings say"}[ds.kind]
    lines += ["", f"Per licence and copyright holder ({how}):", ""]
    for (lic, who, note), files in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        lines.append(f"* {lic} -- {who or 'n/a'} ({len(files)} files)")
        if note:
            lines.append(f"  note: {note}")
        lines.append("  files: " + ", ".join(sorted(files)))
        lines.append("")
    if ds.kind == "deb":
        lines += ["The full Debian copyright file of each package is copied next to this file as "
                  "copyright-<package>.txt (licence texts included).", ""]
    if any(r["licence"].lower().startswith(("cc-by-sa", "gpl", "fdl", "gnu-fdl")) for r in records):
        lines += ["Copyleft: images under CC-BY-SA / GPL / GFDL may be used for training here, but "
                  "redistributing them (or derived images) requires attribution and the same licence. "
                  "Do not bundle them in the repository; use --pd-only for a public-domain/CC0 subset.", ""]
    if any("morgue" in r.get("note", "").lower() or "unsplash" in r.get("note", "").lower()
           for r in records):
        lines += ["Caveat: files that Endless Sky marks public-domain because they came from "
                  "morguefile.com or unsplash.com rely on those sites' terms at the time; the "
                  "government works (NASA, USGS) are the unambiguous public-domain ones.", ""]
    (stage / "LICENSE.txt").write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- driver

def default_dest() -> Path:
    env = os.environ.get("IMGTRANS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "imgtrans" / "data"


def is_complete(folder: Path) -> dict | None:
    m = folder / MARKER
    if not m.is_file():
        return None
    try:
        info = json.loads(m.read_text(encoding="utf-8"))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = [r["file"] for r in manifest["files"]]
    if info.get("count") != len(files) or not all((folder / f).is_file() for f in files):
        return None
    return info


def summarise(folder: Path, records: list) -> str:
    sizes = Counter((r["width"], r["height"]) for r in records)
    top = ", ".join(f"{w}x{h}:{n}" for (w, h), n in sizes.most_common(3))
    mb = sum(r["bytes"] for r in records) / 1e6
    lic = ", ".join(f"{k}:{v}" for k, v in Counter(r["licence"] for r in records).most_common())
    return f"{len(records)} images, {mb:.1f} MB, sizes {top}; licences {lic}"


def definition_key(ds: DataSet) -> str:
    """A short hash of what a set takes (its sources: packages, folders, filters), kept in the set's
    marker, so a set whose selection changed is fetched again. Markers written before it existed
    have none and are checked by their package list only."""
    return hashlib.sha256(repr(ds.sources).encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def _dest_lock(dest: Path):
    """Hold an exclusive lock on DEST/.fetch.lock: fetches into one DEST take turns. Two recipes side
    by side fetch the same set (the second then finds it complete instead of deleting the folder the
    first has just put in place) or two sets that share DEST/.work and a downloaded .deb (vangogh and
    ukiyoe both come from gcompris-qt-data; each fetch deletes both when it ends)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".fetch.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_set(name: str, dest: Path, force=False, keep_debs=False, pd_only=False,
              ratios=_split.DEFAULT_RATIOS, seed=_split.DEFAULT_SEED) -> Path:
    out_name = name + ("-pd" if pd_only else "")
    with _dest_lock(dest):
        return _fetch_set(name, out_name, dest, force, keep_debs, pd_only, ratios, seed)


def _fetch_set(name: str, out_name: str, dest: Path, force, keep_debs, pd_only, ratios, seed) -> Path:
    ds = SETS[name]
    folder = dest / out_name
    info = None if force else is_complete(folder)
    wanted = {src.package for src in ds.sources}
    if info is not None and ds.kind == "deb" and set(info.get("packages", {})) != wanted:
        print(f"{out_name}: the set now takes images from {', '.join(sorted(wanted))}; rebuilding", flush=True)
        info = None
    elif info is not None and info.get("definition", definition_key(ds)) != definition_key(ds):
        print(f"{out_name}: the set's definition changed since it was fetched; rebuilding", flush=True)
        info = None
    if info is not None:
        if not (folder / _split.SPLITS_FILE).is_file():
            _split.make_splits(folder, ratios, seed)
        print(f"{out_name}: already present ({info['count']} images) in {folder}")
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    work = dest / ".work"
    work.mkdir(exist_ok=True)
    debdir = dest / ".debs"
    stage = Path(tempfile.mkdtemp(prefix=f".{out_name}.partial-", dir=dest))
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp makes it 0700
    try:
        print(f"{out_name}: fetching into {folder}", flush=True)
        builder = build_skimage_set if ds.kind == "skimage" else build_deb_set
        records, packages = builder(ds, stage, debdir, work, keep_debs)
        if pd_only:
            for r in [r for r in records if not is_pd(r["licence"])]:
                (stage / r["file"]).unlink()
                records.remove(r)
        if not records:
            raise FetchError(f"{name}: no images selected")
        write_licence(ds, stage, records, packages, pd_only, out_name)
        manifest = {"set": out_name, "fetch_version": FETCH_VERSION, "packages": packages,
                    "what": ds.what, "files": records}
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        _split.make_splits(stage, ratios, seed, files=[r["file"] for r in records])
        (stage / MARKER).write_text(json.dumps({
            "set": out_name, "count": len(records), "packages": packages,
            "bytes": sum(r["bytes"] for r in records), "fetch_version": FETCH_VERSION,
            "definition": definition_key(ds)}) + "\n",
            encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(stage, folder)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{out_name}: {summarise(folder, records)}")
    return folder


def print_list() -> None:
    for ds in SETS.values():
        pk = ", ".join(s.package for s in ds.sources) or "scikit-image (PyPI wheel)"
        print(f"{ds.name}\n  packages: {pk}\n  expected: {ds.expected}\n"
              f"  licence:  {ds.licence_summary}\n  what:     {ds.what}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Fetch imgtrans training image sets from Debian packages.",
        epilog="Sets: " + ", ".join(SETS) + ", all. Output: DEST/<set>/ (see training/data/README.md).")
    ap.add_argument("sets", nargs="*", metavar="SET")
    ap.add_argument("--dest", type=Path, default=None,
                    help="data folder (default: $IMGTRANS_DATA or ~/.cache/imgtrans/data)")
    ap.add_argument("--list", action="store_true", help="print the sets and their licences")
    ap.add_argument("--force", action="store_true", help="rebuild even if already present")
    ap.add_argument("--keep-debs", action="store_true", help="keep downloaded .deb files in DEST/.debs")
    ap.add_argument("--pd-only", action="store_true",
                    help="only public-domain/CC0 files, into DEST/<set>-pd/")
    ap.add_argument("--ratios", nargs=3, type=float, default=_split.DEFAULT_RATIOS,
                    metavar=("TRAIN", "VAL", "TEST"), help="split ratios (default 0.8 0.1 0.1)")
    ap.add_argument("--seed", default=_split.DEFAULT_SEED, help="split hash seed")
    args = ap.parse_args(argv)
    if args.list:
        print_list()
        return 0
    if not args.sets:
        ap.error("name a SET (or --list)")
    names = list(SETS) if "all" in args.sets else args.sets
    bad = [n for n in names if n not in SETS]
    if bad:
        ap.error(f"unknown set(s) {bad}; choose from {', '.join(SETS)}, all")
    dest = (args.dest or default_dest()).expanduser().resolve()
    rc = 0
    for n in names:
        try:
            fetch_set(n, dest, args.force, args.keep_debs, args.pd_only, tuple(args.ratios), args.seed)
        except FetchError as e:
            optional = n == "skimage" and "all" in args.sets
            print(f"{n}: {'skipped' if optional else 'FAILED'}: {e}", file=sys.stderr)
            rc = rc if optional else 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
