"""Section 3: training throughput of Shake-Shake, raw (batches already in memory) against end to end
through the real pipeline (helpers.datasets.data.load_data + a DataLoader exactly as helpers.method.training.train_stage
builds it), measured interleaved, with the time the loop waits for data split out; plus a prototype of
the proposed fix (the same augmentation done once per batch in the dataset's __getitems__)."""
from __future__ import annotations

import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from helpers.method.model import shake_shake_26_2x32d

from .common import log, tp_stats


def batched_augment(images_u8: torch.Tensor, size: int, pad: int, mean: float, std: float) -> torch.Tensor:
    """Batch version of helpers.datasets.augment.train_transform (reflect-padded random crop, random h-flip, normalise)."""
    b = len(images_u8)
    x = F.pad(images_u8.float().div_(255), (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    dx = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    ar = torch.arange(size)
    rows, cols = dy + ar.view(1, -1, 1), dx + ar.view(1, 1, -1)
    flip = torch.rand(b, 1, 1) < 0.5
    cols = torch.where(flip, dx + (size - 1 - ar).view(1, 1, -1), cols)
    x = x[torch.arange(b).view(-1, 1, 1), 0, rows, cols].unsqueeze(1)
    return x.sub_(mean).div_(std)


class BatchAugmentedChips(torch.utils.data.Dataset):
    """The proposed fix, prototyped here: the same chips, but the DataLoader's batched fetch (`__getitems__`,
    which torch's DataLoader calls with a whole batch of indices) augments the batch in one go with
    `batched_augment` instead of running the v2 transforms image by image.  Items go back to the default collate."""

    def __init__(self, chips, size: int, pad: int, mean: float, std: float):
        self.chips, self.size, self.pad, self.mean, self.std = chips, size, pad, mean, std

    def __len__(self):
        return len(self.chips)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices)
        x = batched_augment(self.chips.images[idx], self.size, self.pad, self.mean, self.std)
        return list(zip(x.unbind(0), self.chips.targets[idx].tolist()))


def bench_train(size: int, bundle, settings, P) -> dict:
    batch = P["train_batch"] or settings.batch_size
    train_set = bundle.train
    pad = max(1, settings.image_size // 8)         # as in helpers.datasets.augment.train_transform
    fixed_set = BatchAugmentedChips(train_set, settings.image_size, pad, bundle.mean, bundle.std)
    channels_last = settings.channels_last          # train_stage uses channels_last on the CPU when this is set
    mf = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = shake_shake_26_2x32d(1, 10).to(memory_format=mf)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=settings.stage1_lr, momentum=settings.momentum,
                          weight_decay=settings.weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, 10**6) / 10**6)))

    def make_loader(dataset, seed):  # as in helpers.method.training.train_stage (CPU, no sampler)
        return DataLoader(dataset, batch_size=batch, drop_last=False, shuffle=True,
                          generator=torch.Generator().manual_seed(seed), num_workers=settings.num_workers,
                          pin_memory=False, persistent_workers=False)

    def step(x, y):  # the body of train_stage's inner loop
        x = x.to("cpu", non_blocking=True, memory_format=mf)
        y = y.to("cpu", non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise RuntimeError("loss diverged")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
        (logits.argmax(1) == y).sum().item()

    it = iter(make_loader(train_set, 12345))
    raw_batches = [next(it) for _ in range(2)]                 # real, augmented batches already in memory
    raw_batches = [(x.contiguous(memory_format=mf), y) for x, y in raw_batches]
    for i in range(P["train_warmup"]):
        step(*raw_batches[i % 2])

    class Feed:  # an endless stream of batches from one DataLoader, a new epoch (and shuffle) when it runs out
        def __init__(self, dataset):
            self.dataset, self.epoch = dataset, 0
            t0 = time.perf_counter()
            self.it = iter(make_loader(dataset, 0))
            self.create_s = time.perf_counter() - t0

        def next(self):
            try:
                return next(self.it)
            except StopIteration:
                self.epoch += 1
                self.it = iter(make_loader(self.dataset, self.epoch))
                return next(self.it)

    feeds = {"e2e": Feed(train_set), "e2e_batched": Feed(fixed_set)}
    times = {"raw": [], "e2e": [], "e2e_batched": []}
    waits = {"e2e": [], "e2e_batched": []}
    arms = list(times)
    for r in range(P["train_rounds"]):
        order = arms[r % 3:] + arms[:r % 3]
        for kind in (order if r % 2 == 0 else order[::-1]):
            if kind == "raw":
                x, y = raw_batches[r % 2]
                t0 = time.perf_counter()
                step(x, y)
                times["raw"].append(time.perf_counter() - t0)
            else:
                t0 = time.perf_counter()
                x, y = feeds[kind].next()
                t1 = time.perf_counter()
                step(x, y)
                times[kind].append(time.perf_counter() - t0)
                waits[kind].append(t1 - t0)
        log(f"[3] {size}px round {r + 1}/{P['train_rounds']}: raw {1e3 * times['raw'][-1]:.0f} ms, end-to-end "
            f"{1e3 * times['e2e'][-1]:.0f} ms (data wait {1e3 * waits['e2e'][-1]:.1f}), with batched augmentation "
            f"{1e3 * times['e2e_batched'][-1]:.0f} ms (data wait {1e3 * waits['e2e_batched'][-1]:.2f})")

    # the data pipelines alone (no model): DataLoader with per-item v2 transforms, at the benchmark's thread count
    # and at 1 thread, and with the batched augmentation
    def loader_alone(dataset) -> float:
        it = iter(make_loader(dataset, 1))
        t = []
        for _ in range(P["loader_batches"]):
            t0 = time.perf_counter()
            try:
                next(it)
            except StopIteration:
                it = iter(make_loader(dataset, 2))
                next(it)
            t.append(time.perf_counter() - t0)
        return statistics.median(t)

    threads = torch.get_num_threads()
    alone = {"per_item": loader_alone(train_set), "batched": loader_alone(fixed_set)}
    torch.set_num_threads(1)
    try:
        alone["per_item_1_thread"] = loader_alone(train_set)
    finally:
        torch.set_num_threads(threads)

    raw = times["raw"]
    raw_med = statistics.median(raw)
    res = {"image_size": size, "batch": batch, "train_images": len(train_set), "channels_last": channels_last,
           "num_workers": settings.num_workers, "rounds": P["train_rounds"], "raw": tp_stats(raw, batch),
           "loader_iter_create_ms": 1e3 * feeds["e2e"].create_s, "raw_times_s": raw}
    for kind in ("e2e", "e2e_batched"):
        t, w = times[kind], waits[kind]
        res[kind] = {**tp_stats(t, batch), "step_compute_median_ms": 1e3 * statistics.median(a - b for a, b in zip(t, w)),
                     "data_wait_median_ms": 1e3 * statistics.median(w), "data_wait_share": sum(w) / sum(t),
                     "ratio_median": raw_med / statistics.median(t), "ratio_mean": statistics.fmean(raw) / statistics.fmean(t),
                     "ratio_paired_median": statistics.median(a / b for a, b in zip(raw, t)),
                     "ratio_from_data_wait": 1 - sum(w) / sum(t), "times_s": t, "wait_times_s": w}
    res["loader_alone"] = {k: {"ms_per_batch": 1e3 * v, "us_per_image": 1e6 * v / batch,
                               "projected_ratio": raw_med / (raw_med + v)} for k, v in alone.items()}
    e, b = res["e2e"], res["e2e_batched"]
    log(f"[3] {size}px: end-to-end/raw = {100 * e['ratio_median']:.1f}% (median; data wait {100 * e['data_wait_share']:.1f}% "
        f"of the loop), with batched augmentation {100 * b['ratio_median']:.1f}% (data wait {100 * b['data_wait_share']:.2f}%); "
        f"loader alone {1e3 * alone['per_item']:.1f} ms/batch ({1e3 * alone['per_item_1_thread']:.1f} at 1 thread), "
        f"batched {1e3 * alone['batched']:.2f} ms/batch")
    return res

