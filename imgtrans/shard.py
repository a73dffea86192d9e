"""Which part of a batch this process converts: ``--shard I/N`` or the launcher's environment.

Standard library only (no torch), so a shard with nothing to do answers at once.

**Assignment.** Each input goes to shard ``jump(blake2b(rel), N)``: ``rel`` is the input's path
relative to the input (folder or file) it was found under, as POSIX text, hashed with BLAKE2b to 64
bits, and ``jump`` is Lamping & Veach's jump consistent hash (O(log N), no table). So:

* every input belongs to exactly one shard, whatever the launch order, the host or the absolute path
  the folder is mounted at (``/mnt/scans`` and ``../scans`` give the same shards);
* a file's shard depends only on its own path and N: adding files to the folder moves **no** existing
  file, and going from N to N+1 shards moves only about 1/(N+1) of them (to the new shard);
* processes need no coordination. A file that appears while the shards start can be seen by some
  processes and not others, and still never be converted twice or missed by its owner (a re-run
  picks up what arrived late).

**Why not balanced by pixel count.** The issue asks for balance by pixel count "when the sizes are
known cheaply". They never are cheap enough here, and buying them breaks the guarantees above:

* any balancing (greedy by pixels, two choices, bounded loads) makes a file's shard depend on the
  other files' sizes, so adding one large file can move many existing ones, and two processes that
  list the folder a moment apart can disagree and leave a file to nobody: a silent loss, which
  "nothing lost" rules out;
* the pixel count needs a header read per file in *every* process: N x files opens on the shared
  file system before the first image is converted (8 x 200,000 opens for the studio case), which is
  where such a job is already limited. File sizes from ``stat`` are free but say little about pixels
  (a JPEG holds 5-20x more pixels per byte than a PNG).

What hashing costs instead: shards differ by chance, by about c / sqrt(n) of the mean for n inputs per
shard whose pixel counts have a coefficient of variation c. ``benchmarks/shard_balance.py`` (8 shards,
sizes of 0.3-24 MP, c = 1.1): the busiest shard has 1.55x the mean work at 100 files, 1.18x at 1,000,
1.03x at 20,000 and 1.01x at 200,000, where greedy pixel balancing reaches 1.00 but moves 50-88 % of
the existing files between shards when 1 % more files are added (hashing: none). So the imbalance
matters only for runs that are short anyway; there, fewer processes (or ``--shard`` over fewer
parts) waste less. Reading a header cost 63-317 us per file here against 2-12 us to hash a path,
in every process, before any conversion.

**Launchers** (:func:`from_env`), used when ``--shard`` is not given:

* torchrun: ``RANK``/``WORLD_SIZE`` (``LOCAL_RANK`` picks the GPU);
* a Slurm job array: ``SLURM_ARRAY_TASK_ID`` - ``SLURM_ARRAY_TASK_MIN`` (divided by
  ``SLURM_ARRAY_TASK_STEP``) of ``SLURM_ARRAY_TASK_COUNT``;
* an ``srun`` step: ``SLURM_PROCID`` of ``SLURM_STEP_NUM_TASKS`` (else ``SLURM_NTASKS``), only inside a
  step (``SLURM_STEP_ID`` set): a batch script itself also sees ``SLURM_PROCID=0`` and the job's
  ``SLURM_NTASKS``, and a plain ``imgtrans convert`` there must convert everything, not 1/NTASKS;
* an array task that runs torchrun or srun: the two combine (array task a of A, rank r of R: shard
  a*R + r of A*R).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

_MASK64 = (1 << 64) - 1


class ShardError(ValueError):
    """A ``--shard`` value or launcher environment that names no valid shard (a usage error)."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based). ``source``: where it came from (``--shard``, ``torchrun``,
    ``slurm-array``, ``srun``, ``slurm-array+torchrun``...); ``local_rank``: the process's index on its
    node (picks ``cuda:LOCAL_RANK``), None when the launcher does not say; ``local_world``: processes on
    this node (splits the CPU threads), None when unknown."""

    index: int = 0
    count: int = 1
    source: str = ""
    local_rank: int | None = None
    local_world: int | None = None

    @property
    def active(self) -> bool:
        """Whether this process runs as a shard (and writes a shard summary)."""
        return bool(self.source)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, rel: str | PurePath) -> bool:
        return shard_of(rel, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"I/N"`` (0 <= I < N) -> :class:`Shard`; raises :class:`ShardError` with a one-line reason."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not found:
        raise ShardError(f"--shard expects I/N (shard I of N, counted from 0), e.g. 0/4; got {text!r}")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or index >= count:
        raise ShardError(f"--shard {index}/{count}: I must be 0 to N-1 (N >= 1)")
    return Shard(index, count, "--shard")


def shard_key(rel: str | PurePath) -> int:
    """64-bit stable hash of an input's path relative to its input root (POSIX separators, so a
    Windows and a Linux node agree)."""
    text = rel.as_posix() if isinstance(rel, PurePath) else str(rel).replace("\\", "/")
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def jump_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: ``key`` (64-bit) -> bucket in ``[0, buckets)``; from
    n to n+1 buckets only ~1/(n+1) of the keys move, all to the new bucket."""
    b, j = -1, 0
    key &= _MASK64
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK64
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def shard_of(rel: str | PurePath, count: int) -> int:
    """The shard (0..count-1) that converts the input at ``rel`` (relative to its input root)."""
    return 0 if count <= 1 else jump_hash(shard_key(rel), count)


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ShardError(f"{name}={value!r} is not a whole number") from None


def _array(env: Mapping[str, str]) -> tuple[int, int] | None:
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    count = _int(env, "SLURM_ARRAY_TASK_COUNT")
    low = _int(env, "SLURM_ARRAY_TASK_MIN")
    if count is None or low is None:
        raise ShardError("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_COUNT "
                         "(Slurm older than 18.08?); give --shard I/N instead")
    step = _int(env, "SLURM_ARRAY_TASK_STEP") or 1
    index = (task - low) // step
    if (task - low) % step or not 0 <= index < count:
        raise ShardError(f"Slurm array task {task} is not one of {count} evenly spaced tasks from {low} "
                         f"(an --array list like 1,5,9 cannot be mapped to shards); use --array=0-{count - 1} "
                         "or give --shard I/N")
    return index, count


def _ranks(env: Mapping[str, str]) -> tuple[str, int, int, int | None, int | None] | None:
    """``(launcher, rank, world, local rank, local world)`` from torchrun, else from an srun step."""
    world = _int(env, "WORLD_SIZE")
    if world is not None and env.get("RANK", "").strip():
        rank = _int(env, "RANK")
        if world < 1 or not 0 <= rank < world:
            raise ShardError(f"RANK={rank} WORLD_SIZE={world}: RANK must be 0 to WORLD_SIZE-1")
        return "torchrun", rank, world, _int(env, "LOCAL_RANK"), _int(env, "LOCAL_WORLD_SIZE")
    if env.get("SLURM_STEP_ID", env.get("SLURM_STEPID", "")).strip() and env.get("SLURM_PROCID", "").strip():
        rank = _int(env, "SLURM_PROCID")
        world = _int(env, "SLURM_STEP_NUM_TASKS") or _int(env, "SLURM_NTASKS") or 1
        if not 0 <= rank < world:
            raise ShardError(f"SLURM_PROCID={rank} with {world} tasks: the task id is out of range")
        per_node = (env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "").split("(")[0]
        local_world = int(per_node) if per_node.isdigit() else None
        return "srun", rank, world, _int(env, "SLURM_LOCALID"), local_world
    return None


def from_env(env: Mapping[str, str] | None = None) -> Shard:
    """The shard the launcher gave this process (see the module docstring); ``Shard()`` (inactive,
    0 of 1) outside any launcher. Raises :class:`ShardError` on variables that contradict each other."""
    env = os.environ if env is None else env
    array = _array(env)
    ranks = _ranks(env)
    if array is None and ranks is None:
        return Shard()
    if ranks is None:
        return Shard(array[0], array[1], "slurm-array")
    launcher, rank, world, local_rank, local_world = ranks
    if array is None:
        return Shard(rank, world, launcher, local_rank, local_world)
    return Shard(array[0] * world + rank, array[1] * world, f"slurm-array+{launcher}", local_rank, local_world)


def relative_key(path: Path, roots: list[Path]) -> PurePath:
    """The shard key of a path that is not a job (a file reported as skipped at planning): its path
    relative to the first input root that holds it, else its name, so every process reports it
    exactly once, from the same shard."""
    for root in roots:
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        if rel.parts:  # not the input file itself
            return rel
    return PurePath(path.name)
