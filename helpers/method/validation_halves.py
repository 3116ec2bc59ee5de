"""Validation in two halves: one tunes, the other ranks.

A choice tuned on the chips that then rank the methods favours the tuned method: tau-norm's tau, chosen
on all of validation, also made its validation score in-sample, and so it was picked as claim (1)'s
rival where it was the weakest on test.  So validation is split, class by class, into a *tuning* half
(every tuned choice: tau-norm's tau, logit adjustment's tau) and a *ranking* half (the validation score
every table shows, the under-trained guard, and the choice of the best two-stage method).  Test is
never used for either.
"""
from __future__ import annotations

import numpy as np


def halves(labels, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(tuning indices, ranking indices): each class's validation chips shuffled by `seed`, the first
    half (rounded down) tunes and the rest ranks, so a class with a single chip is in the ranking half."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 16])
    tune, rank = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        tune += idx[: len(idx) // 2].tolist()
        rank += idx[len(idx) // 2:].tolist()
    return np.sort(np.array(tune, dtype=int)), np.sort(np.array(rank, dtype=int))
