"""Inputs that are odd on the file system rather than in their bytes: symlink loops and dangling
links, FIFOs, sockets and directories named like images, odd and colliding file names, and the
permission cases run as an unprivileged user (:func:`make_perms_tree`)."""


from __future__ import annotations

import os
import socket
from pathlib import Path

from benchmarks.fuzz.builders import FAIL, IGNORED, OK, Builder, Case, good_bytes


def cat_links(b: Builder) -> None:
    d = b.folder("links")
    target = b.add("links", "target.png", good_bytes(b.rng, "png"), OK)
    p = b.add("links", "zz_link_to_target.png", None, FAIL,
              "symlink to a file already in the batch (converted once, the link reported as the same file)")
    p.symlink_to(target.name)
    p = b.add("links", "link_to_outside.png", None, OK, "symlink to an image outside the batch")
    outside = b.root.parent / (b.root.name + "_outside.png")
    outside.write_bytes(good_bytes(b.rng, "png"))
    p.symlink_to(outside)
    p = b.add("links", "dangling.png", None, FAIL, "dangling symlink")
    p.symlink_to("does-not-exist.png")
    a = b.add("links", "loop_a.png", None, FAIL, "symlink loop a -> b -> a")
    bb = b.add("links", "loop_b.png", None, FAIL, "symlink loop b -> a -> b")
    a.symlink_to("loop_b.png")
    bb.symlink_to("loop_a.png")
    p = b.add("links", "self_loop.jpg", None, FAIL, "symlink to itself")
    p.symlink_to("self_loop.jpg")
    p = b.add("links", "dev_zero.png", None, FAIL, "symlink to /dev/zero")
    p.symlink_to("/dev/zero")
    p = b.add("links", "dev_urandom.jpg", None, FAIL, "symlink to /dev/urandom")
    p.symlink_to("/dev/urandom")
    sub = d / "sub"
    sub.mkdir()
    q = sub / "inner.png"
    q.write_bytes(good_bytes(b.rng, "png"))
    b.names.add(q)
    b.cases.append(Case(q, "links", OK, "file inside a looped folder"))
    p = b.add("links", "sub/loop_up", None, FAIL, "directory symlink loop sub/loop_up -> ..")
    p.symlink_to("..")
    p = b.add("links", "sub/loop_self", None, FAIL, "directory symlink to its own folder")
    p.symlink_to(".")


def cat_special(b: Builder) -> None:
    p = b.add("special", "fifo.png", None, FAIL, "FIFO named .png (opening it would block)")
    os.mkfifo(p)
    p = b.add("special", "socket.jpg", None, FAIL, "unix socket named .jpg")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(p))
    except OSError:  # path too long for AF_UNIX: skip this one
        b.cases.pop()
        b.names.discard(p)
    finally:
        s.close()
    d = b.add("special", "dir_named.png", None, IGNORED, "a directory named .png (walked into with -r)")
    d.mkdir()
    inner = d / "inside.png"
    inner.write_bytes(good_bytes(b.rng, "png"))
    b.names.add(inner)
    b.cases.append(Case(inner, "special", OK, "image inside a directory named .png"))
    p = b.add("special", "mode000.png", good_bytes(b.rng, "png"), OK, "chmod 000 (root can still read it)")
    p.chmod(0)
    p = b.add("special", "mode000.txt", b"text", FAIL, "chmod 000 non-image")
    p.chmod(0)
    p = b.add("special", ".hidden.png", good_bytes(b.rng, "png"), IGNORED, "hidden file (dot name) inside a folder")


def cat_names(b: Builder) -> None:
    rng = b.rng
    names = [
        "spaces in name.png", "ünïcödé.png", "日本語の写真.jpg", "emoji_😀🎉.png", "rtl_\u202egnp.png",
        "zero\u200bwidth.png",
        "e\u0301_nfd.png", "\u00e9_nfc.png", "newline\nname.png", "tab\tname.png", "-leading-dash.png", "..png",
        "...png",
        "back\\slash.png", "quote'\"name.png", "semi;colon$(x).png", "star*?.png", "UPPER.PNG", "MiXeD.JpEg",
        "x" * 240 + ".png",
        "trailing space .png", "percent%s%n.png", "ansi\x1b[31mred.png", "cr\rname.png", "bell\x07.png",
    ]
    for name in (names if not b.subset else names[::5] + ["newline\nname.png"]):
        ext = name.rsplit(".", 1)[1].lower()
        ext = {"jpeg": "jpg"}.get(ext, ext)
        hidden = name.startswith(".")
        b.add("names", name, good_bytes(rng, ext), IGNORED if hidden else OK,
              ("hidden (dot) name " if hidden else "") + repr(name))
    # invalid UTF-8 in a file name (bytes path)
    raw = os.fsencode(b.folder("names")) + b"/bad_utf8_\xff\xfe.png"
    with open(raw, "wb") as fh:
        fh.write(good_bytes(rng, "png"))
    p = Path(os.fsdecode(raw))
    b.names.add(p)
    b.cases.append(Case(p, "names", OK, "invalid UTF-8 bytes in the name"))
    # names that collide once the extension changes or case is folded
    colliding = ["a.png", "a.jpg", "a.webp", "A.PNG", "a_png.png", "b.tif", "b.tiff", "c.jpeg", "c.jpg", "c.JPG"]
    for name in colliding[: b.n(10, 6)]:
        ext = {"jpeg": "jpg", "tif": "tiff"}.get(name.rsplit(".", 1)[1].lower(), name.rsplit(".", 1)[1].lower())
        b.add("collide", name, good_bytes(rng, ext), OK, "colliding output names")


def make_perms_tree(root: Path, seed: int = 0) -> list[Case]:
    """Files really unreadable for a non-root user (run the batch as ``nobody``)."""
    b = Builder(root, seed, True)
    ok = b.add("perms", "readable.png", good_bytes(b.rng, "png"), OK)
    p = b.add("perms", "mode000.png", good_bytes(b.rng, "png"), FAIL, "chmod 000: permission denied")
    p.chmod(0)
    p = b.add("perms", "mode200.jpg", good_bytes(b.rng, "jpg"), FAIL, "write-only: permission denied")
    p.chmod(0o200)
    sub = b.folder("perms") / "locked"
    sub.mkdir()
    inner = sub / "inside.png"
    inner.write_bytes(good_bytes(b.rng, "png"))
    b.cases.append(Case(sub, "perms", FAIL, "chmod 000 folder: cannot list"))
    sub.chmod(0)
    noexec = b.folder("perms") / "noexec"
    noexec.mkdir()
    inner2 = noexec / "inside.png"
    inner2.write_bytes(good_bytes(b.rng, "png"))
    b.cases.append(Case(inner2, "perms", FAIL, "file in a folder without search permission"))
    noexec.chmod(0o644)
    del ok
    return b.cases
