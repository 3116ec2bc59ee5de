"""Data loading that gives the same batches whatever the number of workers, and after a resume.

Each epoch's order (a shuffle, or class-balanced draws for cRT/LWS) is drawn in the main process
from a seed of (run seed, stage, epoch). Every item travels with its own seed, and its random
augmentation is drawn from that seed alone (`SeededItems`), so it does not matter which worker
decodes it, how many workers there are, or whether the stage was interrupted and resumed. The
workers can therefore be persistent for the whole stage (on a GPU they keep the card fed).

In a data-parallel run (helpers/method/distributed.py) every rank draws the same order and takes every
world_size-th item of it from its rank on (a split by stride), so global batch k holds the items that
batch k of one process holds, each with the same seed.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .samplers import class_balanced_weights


class EpochSampler(Sampler):
    """Yields (index, item seed) pairs; `set_epoch(seed)` draws the next epoch's order.

    `weights` (one per item) switches from a shuffle without replacement to weighted draws with
    replacement (class-balanced sampling). With `world_size` > 1 it yields rank `rank`'s share: the
    items of the epoch's full global batches (of `batch_size`), every world_size-th from `rank` on.
    """

    def __init__(self, n: int, weights=None, num_samples: int | None = None, rank: int = 0, world_size: int = 1,
                 batch_size: int = 1):
        self.n, self.weights = n, None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.num_samples = num_samples or n
        self.seed = 0
        self.rank, self.world_size = rank, world_size
        drawn = self.num_samples if self.weights is not None else self.n
        self.used = drawn if drawn <= batch_size else drawn // batch_size * batch_size   # the full global batches

    def set_epoch(self, seed: int) -> None:
        self.seed = int(seed)

    def __len__(self):
        if self.world_size > 1:
            return len(range(self.rank, self.used, self.world_size))
        return self.num_samples if self.weights is not None else self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        item_seeds = torch.randint(0, 2**62, (len(order),), generator=g)
        if self.world_size > 1:
            pairs = list(zip(order.tolist(), item_seeds.tolist()))[:self.used]
            return iter(pairs[self.rank::self.world_size])
        return iter(zip(order.tolist(), item_seeds.tolist()))


class SeededItems(Dataset):
    """`dataset[i]` with its random transform drawn from the item's own seed (the caller's RNG is untouched)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys):
        """A whole batch at once (DataLoader calls this): the caller's RNG state is saved once per batch."""
        state = torch.get_rng_state()
        try:
            out = []
            for index, seed in keys:
                torch.default_generator.manual_seed(seed)     # the CPU generator only: cheap
                out.append(self.dataset[index])
            return out
        finally:
            torch.set_rng_state(state)


def make_loader(dataset, batch_size: int, num_workers: int = 0, pin_memory: bool = False,
                balanced: bool = False, rank: int = 0, world_size: int = 1) -> tuple[DataLoader, EpochSampler]:
    """One loader for a whole stage; call `sampler.set_epoch(seed)` before each epoch.

    Batches are full (drop_last) unless the set is smaller than one batch, so BatchNorm never
    sees a batch of one. `batch_size` is the global batch: with `world_size` > 1 processes this rank's
    loader gives its batch_size / world_size share of each.
    """
    weights = class_balanced_weights(dataset) if balanced else None
    sampler = EpochSampler(len(dataset), weights, rank=rank, world_size=world_size, batch_size=batch_size)
    loader = DataLoader(SeededItems(dataset), batch_size=batch_size // world_size, sampler=sampler,
                        drop_last=len(dataset) > batch_size, num_workers=num_workers,
                        pin_memory=pin_memory, persistent_workers=num_workers > 0,
                        # its own generator: making an iterator never draws from the global RNG (which
                        # Shake-Shake uses), so a resumed stage draws exactly what an uninterrupted one does
                        generator=torch.Generator().manual_seed(0))
    return loader, sampler


def steps_per_epoch(dataset_size: int, batch_size: int) -> int:
    return max(1, dataset_size // batch_size) if dataset_size > batch_size else 1
