"""The statistics behind the verdicts: a paired difference over seeds with its t-interval and p
(scipy.stats), and Holm's correction when one table states several verdicts."""
from __future__ import annotations

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
