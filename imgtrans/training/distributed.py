"""Where training runs: device, mixed precision, and torchrun processes.

Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) each process joins the group (NCCL on
CUDA, gloo on the CPU), trains on its contiguous slice of every global batch, and gradients are
averaged by ``DistributedDataParallel``. Only rank 0 writes logs, samples and checkpoints.
Without torchrun everything here is a no-op (world size 1).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is available here (use --device cpu)")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (AVX512-BF16 or AMX), via oneDNN."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Amp:
    """Automatic mixed precision (weights, optimizer state and losses stay fp32).

    ``mode``: ``auto`` (on CUDA bf16 where supported, else fp16; on the CPU fp32), ``bf16``, ``fp16``
    or ``off``. On the CPU only ``bf16`` is taken, and only where the CPU has native bf16 (there it is
    faster: ``benchmarks/README.md``, "Training speed"); elsewhere it would be slower, so the CPU
    stays fp32 and :attr:`note` says why. fp16 uses a gradient scaler shared by
    all optimizers of a step: ``backward`` each loss, ``step`` each optimizer, then one ``update``
    per iteration.
    """

    def __init__(self, device: torch.device, mode: str = "auto"):
        self.device = device
        self.dtype: torch.dtype | None = None
        self.note = ""
        if device.type == "cuda" and mode != "off":
            if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
                self.dtype = torch.float16
            else:
                self.dtype = torch.bfloat16
        elif device.type == "cpu" and mode == "bf16":
            if cpu_has_native_bf16():
                self.dtype = torch.bfloat16
            else:
                self.note = "--amp bf16: this CPU has no native bf16 (AVX512-BF16/AMX), training in fp32"
        elif device.type == "cpu" and mode == "fp16":
            self.note = "--amp fp16 is for CUDA; the CPU trains in fp32 (or bf16 with --amp bf16)"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    @property
    def label(self) -> str:
        return {None: "fp32", torch.float16: "fp16 autocast", torch.bfloat16: "bf16 autocast"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()


@dataclass
class Env:
    """The process's place in the job. ``rank 0`` of ``world 1`` when not under torchrun."""

    device: torch.device
    amp: Amp
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """``DistributedDataParallel(module)`` in a multi-process job, else ``module``."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, output_device=ids[0] if ids else None)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate every process's ``(b,...)`` tensor along dim 0, in rank order (no gradient)."""
        if not self.distributed:
            return t
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, 0)

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This process's contiguous slice of a global ``(B,...)`` tensor."""
        if not self.distributed:
            return t
        b = t.shape[0] // self.world
        return t[self.rank * b : (self.rank + 1) * b]

    def mean_and_flag(self, values: torch.Tensor, flag: bool) -> tuple[torch.Tensor, bool]:
        """Average ``values`` over processes and OR a flag (e.g. "stop now") in one all-reduce."""
        if not self.distributed:
            return values, flag
        buf = torch.cat([values.detach().float().to(self.device), torch.tensor([float(flag)], device=self.device)])
        dist.all_reduce(buf)
        return buf[:-1] / self.world, bool(buf[-1] > 0)

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every process."""
        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.broadcast(t, 0)
        return bool(t[0] > 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device: str = "auto", amp: str = "auto") -> Env:
    """Join the torchrun job if there is one; pick the device and AMP mode."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick the fastest kernels
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return Env(device=dev, amp=Amp(dev, amp), rank=rank, world=world, local_rank=local_rank)


def teardown(env: Env) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
