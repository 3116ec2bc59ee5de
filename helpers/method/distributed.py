"""Data-parallel training: one stage on N processes (torchrun), trained as one process would train it.

    torchrun --nproc-per-node 4 -m helpers.train --run runs/mine --method three-stage     (helpers/evidence/train.py)

torchrun starts N copies of the command and sets RANK, WORLD_SIZE and LOCAL_RANK; `init` joins them
into one process group (NCCL on CUDA, gloo on the CPU) and `helpers.method.training.train_stage`
then asks `active()` for it. In one process `active()` is None and the loop is exactly the
single-process one, bit for bit. What changes with N processes, and why the result is the same training:

* `batch_size` is the global batch; each rank takes batch_size / N of it (it must divide).  Each
  epoch's order is drawn once from (seed, stage, epoch), as in one process, and split across the ranks
  by stride (helpers/method/loader.py), so global batch k holds the same images as in one process;
  every image keeps its own augmentation seed.  The gradients are averaged over the ranks
  (DistributedDataParallel), which is the gradient of the global batch's mean loss.
* The learning rate follows the global batch, not the number of processes: the stage learning
  rates are for `batch_size` as it is, so N processes take the same steps with the same rates as one.
  A larger global batch can scale them by the linear rule (`lr_reference_batch`, training.py).
* Shake-Shake's random coefficients on rank r come from the global generator, seeded at every epoch
  from (seed, stage, epoch, r) (`rank_seed`): repeatable, different on every rank. Rank 0's seed is the
  one process's, crc32("seed/stage/epoch"), so whatever is drawn outside the mixes (the next stage's new
  classifier row) comes from the one process's stream where the mixes drew nothing.
* `sync_batchnorm` (default on): BatchNorm normalises with the statistics of the global batch, as the
  one-process run does; off, each rank normalises with those of its own batch / N images, which for a
  batch of 128 on 8 GPUs is 16 images: noisier statistics, another regularisation, other numbers.
  The price is one small collective per BatchNorm layer and step.  torch's SyncBatchNorm runs only on
  accelerators; on the CPU (gloo) `CPUSyncBatchNorm` below computes the same statistics.
* Only rank 0 writes (checkpoints, metrics, figures); the others wait for it after every epoch, so
  every rank resumes from the same checkpoint, and a finished folder is what one process leaves.
"""
from __future__ import annotations

import os
import zlib

import torch
import torch.distributed as dist
from torch import nn

from ..settings.config import SettingsError

_GROUP = None


def rank_seed(seed: int, stage: str, epoch: int, rank: int) -> int:
    """The seed of rank `rank`'s generator (Shake-Shake's coefficients) in an epoch of a data-parallel stage;
    rank 0's is the one process's (helpers.method.training.epoch_seed)."""
    return zlib.crc32(f"{seed}/{stage}/{epoch}".encode() + (f"/rank{rank}".encode() if rank else b""))


class _AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over the ranks; its gradient is the sum of the ranks' gradients (every rank used it)."""

    @staticmethod
    def forward(ctx, x):
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = grad.clone()
        dist.all_reduce(out)
        return out


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d that normalises with the mean and variance of the global batch, over every rank.

    The same arithmetic as torch's SyncBatchNorm, for CPU tensors (gloo): two differentiable all-reduces
    (the sum, then the sum of squared deviations: two passes, as accurate as one process's), whose backward
    sums the gradients over the ranks. Running statistics are updated as BatchNorm2d does (unbiased variance).
    """

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        xf, dims = (x.float() if x.dtype in (torch.float16, torch.bfloat16) else x), [0, 2, 3]
        local = torch.cat([xf.sum(dims), xf.new_tensor([x.numel() // x.size(1)])])
        total = all_reduce(local)
        count = total[-1].detach()
        mean = total[:-1] / count
        centred = xf - mean.view(1, -1, 1, 1)
        var = all_reduce((centred * centred).sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.item()
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count.item() - 1, 1), alpha=m)
        return y.to(x.dtype)


class Group:
    """This process's place in a data-parallel run: its rank among `world_size`, the backend, rank 0 the writer."""

    def __init__(self, rank: int, world_size: int, local_rank: int, backend: str):
        self.rank, self.world_size, self.local_rank, self.backend = rank, world_size, local_rank, backend
        self.main = rank == 0

    def device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def rank_seed(self, seed: int, stage: str, epoch: int) -> int:
        return rank_seed(seed, stage, epoch, self.rank)

    def shard(self, batch_size: int) -> dict:
        """make_loader's arguments for this rank; the global batch must split evenly (one-line error)."""
        if batch_size % self.world_size:
            raise SettingsError(f"batch_size {batch_size} (the global batch) does not split evenly over "
                                f"{self.world_size} processes; use a multiple of {self.world_size}")
        return {"rank": self.rank, "world_size": self.world_size}

    def wrap(self, model: nn.Module, sync_batchnorm: bool) -> nn.Module:
        """`model` in DistributedDataParallel, its BatchNorm layers synchronised if asked (`unwrap` undoes it)."""
        if sync_batchnorm:
            for m in model.modules():
                if type(m) is nn.BatchNorm2d:      # swapped in place: same parameters, buffers and state-dict keys
                    m.__class__ = nn.SyncBatchNorm if self.backend == "nccl" else CPUSyncBatchNorm
                    m.process_group = None
        ids = [torch.cuda.current_device()] if self.backend == "nccl" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    @staticmethod
    def unwrap(model: nn.Module) -> None:
        """Plain BatchNorm2d layers again, so the model is the one a single process would have."""
        for m in model.modules():
            if isinstance(m, (nn.SyncBatchNorm, CPUSyncBatchNorm)):
                m.__class__ = nn.BatchNorm2d
                m.__dict__.pop("process_group", None)

    def sum(self, *values) -> list:
        """Each value summed over the ranks (the epoch's images, loss and correct answers)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device())
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        dist.barrier(device_ids=[torch.cuda.current_device()]) if self.backend == "nccl" else dist.barrier()

    def provenance(self, settings) -> dict:
        """What a checkpoint records of how it was trained (not compared on resume)."""
        return {"world_size": self.world_size, "backend": self.backend, "sync_batchnorm": settings.sync_batchnorm}


def launched() -> bool:
    """Was this process started by torchrun with more than one process?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> Group | None:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU); None when there is one process."""
    global _GROUP
    if not launched():
        return None
    if _GROUP is None:
        if device.type not in ("cuda", "cpu"):
            raise SettingsError(f"data-parallel training runs on CUDA (NCCL) or the CPU (gloo), not on {device.type}; "
                                f"use -p device cpu, or one process")
        if device.index is not None:
            raise SettingsError(f"device {str(device)!r} names one GPU, but every torchrun process takes the GPU of its "
                                f"LOCAL_RANK; use -p device cuda (or auto)")
        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group(backend)
        _GROUP = Group(rank, world, local, backend)
    return _GROUP


def active() -> Group | None:
    """The process group of a data-parallel run, or None (one process: nothing changes)."""
    return _GROUP


def shutdown() -> None:
    global _GROUP
    if _GROUP is not None and dist.is_initialized():
        dist.destroy_process_group()
    _GROUP = None
