"""The statistics behind the verdicts: a paired difference over seeds with its t-interval and p
(scipy.stats), how many seeds would resolve an inconclusive one, Holm's correction when one table
states several verdicts, and a two-level bootstrap over seeds and test images."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired(x, y, confidence: float = 0.95) -> dict:
    """Mean of x - y over pairs, its t-interval and the two-sided p of the paired t-test (NaN under 2 pairs
    or with no spread at all)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n, d = len(x), x - y
    out = {"gap": float(d.mean()) if n else float("nan"), "lo": float("nan"), "hi": float("nan"),
           "p": float("nan"), "pairs": n}
    if n >= 2 and d.std(ddof=1) > 0:
        test = stats.ttest_rel(x, y)
        ci = test.confidence_interval(confidence)
        out.update(lo=float(ci.low), hi=float(ci.high), p=float(test.pvalue))
    return out


def seeds_to_resolve(gap: float, lo: float, hi: float, seeds: int, confidence: float = 0.95,
                     most: int = 1000) -> int | None:
    """How many paired seeds would put a t-interval of this gap clear of 0, if the gap and the per-seed
    spread of the differences stayed as measured: the fewest n with t(n-1) * sd / sqrt(n) < |gap|, the
    sd read back from the measured interval (its half-width is t(seeds-1) * sd / sqrt(seeds)). A planning
    figure, not a promise: the next seeds move both. None when no n up to `most` would do (or no gap)."""
    if seeds < 2 or not all(map(math.isfinite, (gap, lo, hi))) or gap == 0:
        return None
    level = 1 - (1 - confidence) / 2
    sd = (hi - lo) / 2 * math.sqrt(seeds) / stats.t.ppf(level, seeds - 1)
    if sd == 0:
        return seeds
    for n in range(2, most + 1):
        if stats.t.ppf(level, n - 1) * sd / math.sqrt(n) < abs(gap):
            return n
    return None


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p values (NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    m, adjusted, running = len(order), np.full(len(p), np.nan), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def balanced_accuracy(correct, labels) -> np.ndarray:
    """Mean over the classes present of the per-class share correct; `correct` is (..., images)."""
    correct, labels = np.asarray(correct, dtype=float), np.asarray(labels)
    classes = np.unique(labels)
    return np.mean([correct[..., labels == c].mean(-1) for c in classes], axis=0)


def bootstrap_paired(correct_a, correct_b, labels, resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """A two-level bootstrap of the balanced-accuracy gap a - b, paired.

    `correct_a`, `correct_b`: seeds x images, 1 where that seed's model of method a (b) got that test
    image right; `labels`: the true class of each image (the same test images for every seed). Each
    replicate draws the seeds with replacement, then the images with replacement within each class
    (class-stratified, so every class keeps its count), and scores both methods on the *same* draw.
    Returns the gap on the data, the percentile interval, the two-sided bootstrap p (twice the smaller
    tail share at 0) and the replicates' count.
    """
    a, b, labels = np.asarray(correct_a, float), np.asarray(correct_b, float), np.asarray(labels)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(labels):
        raise ValueError("correct_a and correct_b must both be seeds x images, with one label per image")
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    d, seeds = a - b, a.shape[0]
    gaps = np.zeros(resamples)
    # A replicate as counts: how often each seed (W, replicates x seeds) and each image of a class (M) was
    # drawn; its gap is then the mean over the drawn seeds and the classes of the class's mean over the
    # drawn images, sum_c (W @ d_c * M_c).sum() / n_c / (seeds * classes), in blocks of replicates.
    for start in range(0, resamples, 500):
        r = min(500, resamples - start)
        w = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=r).astype(float)
        for idx in by_class:
            m = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=r)
            gaps[start:start + r] += ((w @ d[:, idx]) * m).sum(1) / len(idx)
    gaps /= seeds * len(by_class)
    tail = (1 - confidence) / 2
    p = min(1.0, 2 * min((gaps <= 0).mean(), (gaps >= 0).mean()))
    return {"gap": float((balanced_accuracy(a, labels) - balanced_accuracy(b, labels)).mean()),
            "lo": float(np.quantile(gaps, tail)), "hi": float(np.quantile(gaps, 1 - tail)), "p": float(p),
            "resamples": resamples}
