"""What every benchmark section shares: the log line, repeat counts, batches of test chips."""
from __future__ import annotations

import math
import statistics
import time

import torch

from helpers.evidence.speed import stats

# Repeat counts.  Models (section 2) and speed-up variants (section 4) are timed round-robin with
# helpers.evidence.speed: each round runs every candidate (latency: `lat_chunk` batch-1 calls; throughput: one
# batch), at least `*_rounds` rounds, more (up to 8x) until the slowest candidate has had `*_budget_s`
# seconds, but no more than 2 rounds once it has had `cap_s` (a heavily loaded machine).
# Throughput batch: `tp_batch` up to 32 px, `tp_batch_large` above (at 56 px a batch of 256
# through the small-stem ResNet-50 takes about a minute on 2 cores).  Training (section 3):
# `train_rounds` rounds of one step each of raw, end to end, and end to end with the batched
# augmentation, their order rotating.
FULL = dict(lat_warmup=5, lat_rounds=4, lat_chunk=5, lat_budget_s=1.5,
            tp_batch=256, tp_batch_large=64, tp_warmup=1, tp_rounds=3, tp_budget_s=6.0, cap_s=20.0,
            calib_batches=2, calib_batch=64,
            train_batch=None, train_warmup=2, train_rounds=10, loader_batches=20)
QUICK = dict(lat_warmup=1, lat_rounds=1, lat_chunk=2, lat_budget_s=0.0,
             tp_batch=4, tp_batch_large=4, tp_warmup=1, tp_rounds=1, tp_budget_s=0.0, cap_s=0.0,
             calib_batches=1, calib_batch=8,
             train_batch=16, train_warmup=1, train_rounds=1, loader_batches=2)

HELPS = 1.05      # a speed-up of at least 5% counts as "helps", below 0.95 as "hurts"

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f}s] {msg}", flush=True)


def latency_timing(P) -> dict:
    """helpers.evidence.speed.round_robin's arguments for batch-1 latency."""
    return dict(rounds=P["lat_rounds"], number=P["lat_chunk"], warmup=P["lat_warmup"], budget_s=P["lat_budget_s"],
                cap_s=P["cap_s"])


def throughput_timing(P, warmup=None) -> dict:
    """helpers.evidence.speed.round_robin's arguments for whole batches."""
    return dict(rounds=P["tp_rounds"], number=1, warmup=P["tp_warmup"] if warmup is None else warmup,
                budget_s=P["tp_budget_s"], cap_s=P["cap_s"])


def tp_stats(times: list[float], batch: int) -> dict:
    st = stats(times)
    return {"batch": batch, "batches": len(times), "images_per_s": batch / statistics.median(times),
            "images_per_s_mean": batch * len(times) / sum(times), "median_batch_ms": st["median_ms"]}


def tp_batch_for(size: int, P) -> int:
    return P["tp_batch"] if size <= 32 else P["tp_batch_large"]


def take(x: torch.Tensor, n: int) -> torch.Tensor:
    """n images from x (repeated if x has fewer)."""
    reps = math.ceil(n / len(x))
    return x.repeat(reps, 1, 1, 1)[:n].contiguous() if reps > 1 else x[:n].contiguous()

