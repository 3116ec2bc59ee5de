"""The two-level bootstrap of helpers/evidence/statistics.py against distributions worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.evidence import statistics


def test_balanced_accuracy_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    assert statistics.balanced_accuracy([[1, 0, 1, 1, 0]], labels) == pytest.approx([(0.5 + 2 / 3) / 2])


def test_a_sure_gap_has_a_point_interval():
    labels = np.array([0, 1, 2])
    r = statistics.bootstrap_paired(np.ones((3, 3)), np.zeros((3, 3)), labels, resamples=200, seed=1)
    assert (r["gap"], r["lo"], r["hi"], r["p"]) == (1.0, 1.0, 1.0, 0.0)


def test_the_same_resample_scores_both_methods():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, (4, 12))
    r = statistics.bootstrap_paired(a, a.copy(), np.repeat([0, 1, 2], 4), resamples=300, seed=0)
    assert (r["gap"], r["lo"], r["hi"], r["p"]) == (0.0, 0.0, 0.0, 1.0)   # any unpaired draw would spread it


@pytest.mark.parametrize("a, b", [
    # images: one class of 2 images, one seed; a gets image 0 right, b neither. A draw of 2 images with
    # replacement holds image 0 twice (gap 1, p 1/4), once (gap 1/2, p 1/2) or never (gap 0, p 1/4).
    ([[1, 0]], [[0, 0]]),
    # seeds: two seeds, one image; seed 0 a right and b wrong (gap 1), seed 1 both right (gap 0). A draw of
    # 2 seeds gives the same three cases with the same chances.
    ([[1], [1]], [[0], [1]]),
])
def test_each_level_against_its_hand_worked_distribution(a, b):
    labels = np.zeros(len(a[0]), dtype=int)
    r = statistics.bootstrap_paired(a, b, labels, resamples=4000, seed=0)
    assert r["gap"] == pytest.approx(0.5)
    assert (r["lo"], r["hi"]) == (0.0, 1.0)          # the 2.5 % and 97.5 % points of {0: 1/4, 1/2: 1/2, 1: 1/4}
    assert r["p"] == pytest.approx(0.5, abs=0.04)    # twice the 1/4 tail at 0 (4000 draws: sd 0.014)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="seeds x images"):
        statistics.bootstrap_paired([[1, 0]], [[1, 0, 1]], [0, 0])
