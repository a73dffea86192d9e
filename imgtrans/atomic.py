"""Atomic writes: a result file or folder is either complete at its path or not there at all.

Every writer of a result in imgtrans goes through here: images and the shard summaries
(:mod:`imgtrans.imageio`), weight files (:func:`imgtrans.weights.save_model`, model import), ONNX
graphs and the backend calibration (:mod:`imgtrans.backends`), training checkpoints and run files
(:mod:`imgtrans.training`).

A file is written to a temporary sibling ``.<name>.<8 random chars>.part`` in the destination folder
(so the rename never crosses file systems), fsynced, given the mode of the file it replaces (or the
mode a new file gets under the umask), renamed over the target with :func:`os.replace`, and the
folder is fsynced so that the rename itself survives a power cut. On any failure the temporary file
is removed and an existing file at the path is untouched.

The writer holds an exclusive ``flock`` on its temporary file until the rename; the kernel drops it
when the process dies (even by SIGKILL), so the next writer into a folder removes the temporary
files that killed writers left (:func:`sweep_stale_temp_files`).

A folder (a checkpoint) is built in a temporary sibling ``.tmp-<name>-<random>`` and renamed into
place; an existing folder is set aside as ``.old-<name>`` for the swap and removed after it
(:func:`replacing_folder`, :func:`recover_folders`).

Failures are :class:`AtomicWriteError`, an :class:`OSError` whose ``str()`` is one human-readable
line ("disk full") and whose ``errno`` is the cause's. Standard library only: every layer may
import this module.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "AtomicWriteError",
    "os_error_reason",
    "recover_folders",
    "replacing",
    "replacing_folder",
    "sweep_stale_temp_files",
    "write_bytes",
    "write_synced",
]

_log = logging.getLogger(__name__)

_REASONS = {
    _errno.ENOENT: "file or directory not found",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "permission denied",
    _errno.ENOSPC: "disk full",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EROFS: "read-only file system",
    _errno.EISDIR: "is a directory",
    _errno.ENOTDIR: "a parent of the path is not a directory",
    _errno.ENAMETOOLONG: "file name too long",
    _errno.EIO: "input/output error",
}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def os_error_reason(exc: OSError, fallback: Callable[[BaseException], str] = _one_line) -> str:
    """A short human reason for an OSError ("disk full", "permission denied", ...): its errno's, else
    its strerror, else ``fallback(exc)`` (its text on one line)."""
    if isinstance(exc, AtomicWriteError):
        return exc.reason
    return _REASONS.get(exc.errno, exc.strerror or fallback(exc))  # type: ignore[arg-type]


class AtomicWriteError(OSError):
    """A file or folder could not be written; ``str(e)`` is the one-line reason.

    ``errno`` is the OS error number of the cause (``errno.ENOSPC``: disk full), else None, so a
    caller can tell a full disk, which fails every later write too, from a problem with one file.
    ``path`` is the target (not the temporary file).
    """

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None, errno: int | None = None) -> None:
        super().__init__(errno, reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self):  # picklable with its own arguments (OSError's default passes (errno, strerror))
        return (type(self), (self.reason, self.path, self.errno))


def _failure(exc: OSError, path: Path) -> AtomicWriteError:
    if isinstance(exc, AtomicWriteError):
        return exc
    return AtomicWriteError(os_error_reason(exc), path, exc.errno)


def _new_file_mode(path: Path) -> int:
    """The mode of the file at ``path``, or else the mode a new file gets under the umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: str) -> None:
    """fsync the file at ``path`` (opened again: whoever filled it may have used its own handle)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------- stale temporary files

# Temp files are ``.<name>.<8 random chars>.part`` (tempfile.mkstemp) next to the target. Only
# those of images and of the JSON files the batch writes beside them are swept: a folder of
# outputs is where a killed batch leaves them and where the next run writes again.
_PART_RE = re.compile(r"^\..+\.(?:png|jpg|jpeg|webp|tif|tiff|bmp|json)\.[a-z0-9_]{8}\.part$", re.IGNORECASE)
_SWEPT_DIRS: set[str] = set()
_SWEEP_LOCK = threading.Lock()
_STALE_AFTER_S = 1.0  # a temp file is only swept when unlocked and not modified for this long


def _try_lock(fd: int) -> bool:
    """Take a non-blocking exclusive flock on *fd*; False if another process holds it (or no flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, no sweeping
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep_stale_temp_files(folder: str | os.PathLike[str]) -> None:
    """Remove the temp files that killed writers left in *folder* (see _sweep_stale_parts).

    Every atomic write does this by itself on its first write into a folder; a batch that may write
    nothing into a folder (every output already exists) can call this at its start so no stale
    ``.part`` file outlives a re-run.
    """
    _sweep_stale_parts(Path(folder))


def _sweep_stale_parts(parent: Path) -> None:
    """Remove temp files that a killed writer left in *parent* (once per folder per process).

    A writer holds an exclusive flock on its temp file until the rename, and the kernel drops the
    lock when the process dies (even by SIGKILL), so a temp file whose lock can be taken belongs to
    nobody alive and is removed. Only names of the ``.<name>.<ext>.<random>.part`` form with an
    image (or JSON) extension are touched. No-op without flock (Windows).
    """
    key = os.path.realpath(parent)
    with _SWEEP_LOCK:  # held for the whole sweep: this process's writers wait, then create their temp files
        if key in _SWEPT_DIRS:
            return
        _SWEPT_DIRS.add(key)
        try:
            entries = [e for e in os.scandir(parent) if _PART_RE.match(e.name)]
        except OSError:
            return
        now = time.time()
        for entry in entries:
            try:
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                # Another live process may have created its temp file a moment ago and not locked
                # it yet: only files untouched for a while are candidates.
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > _STALE_AFTER_S and _try_lock(fd):
                    os.unlink(entry.path)
                    _log.info("removed %s, left by an interrupted write", entry.path)
            except OSError:
                pass
            finally:
                os.close(fd)


# ----------------------------------------------------------------------------------- one file


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], *, durable: bool = True, make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to fill; on a clean exit it replaces
    ``path`` atomically, on an exception it is removed (and ``path`` left as it was).

    ``durable`` (default): the file and the rename are fsynced; without it (a cache that is rebuilt
    when it is cut short) neither is. ``make_parents`` creates the destination folder; without it a
    missing folder is an error. The temporary file exists (empty, locked) when the block starts;
    whatever fills it must write it in place (open it for writing, not replace it).

    Raises:
        AtomicWriteError: when the file cannot be created, synced or renamed, and for any OSError the
            block raises (its ``errno`` kept). Other exceptions from the block pass unchanged.
    """
    path = Path(path)
    parent = path.parent
    if make_parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _failure(e, path) from None
    if path.is_dir():
        raise AtomicWriteError("output path is a directory", path)
    if not parent.is_dir():
        raise AtomicWriteError(f"output directory does not exist: {parent}", path)
    mode = _new_file_mode(path)
    _sweep_stale_parts(parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".part", dir=parent)
    except OSError as e:
        raise _failure(e, path) from None
    try:
        _try_lock(fd)  # until the rename, so a sweeper elsewhere knows the writer is alive
        yield Path(tmp)
        if durable:
            _fsync_file(tmp)
        os.chmod(tmp, mode)  # mkstemp makes 0600; an output is an ordinary file
        os.replace(tmp, path)  # while still holding the lock (POSIX allows renaming an open file)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _failure(e, path) from None
        raise
    finally:
        os.close(fd)
    if durable:
        _fsync_dir(parent)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True,
                make_parents: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`replacing`); returns ``Path(path)``.
    Raises :class:`AtomicWriteError`."""
    with replacing(path, durable=durable, make_parents=make_parents) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_synced(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and fsync it: for the files of a folder being built in
    :func:`replacing_folder` (the folder's rename is what makes them appear)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------------- one folder


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder ``.tmp-<name>-<random>`` beside ``path`` (parents are
    created) for the caller to fill; on a clean exit it takes the place of ``path``, on an exception
    it is removed and ``path`` is left as it was.

    An existing ``path`` is renamed to ``.old-<name>`` for the swap and removed after it: a crash in
    between leaves the complete old folder there, which :func:`recover_folders` puts back.
    ``durable``: the new folder and its parent are fsynced (the files in it are the caller's to
    sync, see :func:`write_synced`). OSErrors become :class:`AtomicWriteError` (``errno`` kept).
    """
    path = Path(path)
    parent = path.parent
    tmp: Path | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=parent))
        yield tmp
        if durable:
            _fsync_dir(tmp)
        if path.exists():
            old = parent / f".old-{path.name}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        if durable:
            _fsync_dir(parent)
    except BaseException as e:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise _failure(e, path) from None
        raise


def recover_folders(parent: str | os.PathLike[str]) -> None:
    """Tidy what interrupted :func:`replacing_folder` calls left in ``parent``: a folder set aside
    (``.old-<name>``) goes back to its name when nothing took its place (else it is removed), and
    temporary folders (``.tmp-*``, incomplete by construction) are removed."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for old in parent.glob(".old-*"):
        target = parent / old.name[len(".old-") :]
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(old, target)
    for tmp in parent.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
