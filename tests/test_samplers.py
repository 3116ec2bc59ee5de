"""The three training sets: full, class-0-removed (relabelled), class-balanced; and cRT's sampler."""
import numpy as np
import pytest
import torch

from conftest import assert_one_line, chips
from helpers.settings.config import SettingsError
from helpers.datasets.data import DataError
from helpers.method.loader import EpochSampler
from helpers.method.samplers import WITHOUT_CLASS0, balanced, class_balanced_weights, to_original, without_class0

COUNTS = [40, 10, 6, 5, 3, 3, 2, 2, 2, 2]


@pytest.fixture(scope="module")
def train():
    return chips(COUNTS)


def test_full_set_counts(train):
    assert np.bincount(train.targets.numpy(), minlength=10).tolist() == COUNTS
    x, y = train[0]
    assert x.shape == (1, 16, 16) and x.dtype == torch.float32 and isinstance(y, int)


def test_without_class0(train):
    s2 = without_class0(train)
    assert len(s2) == sum(COUNTS[1:])
    assert np.bincount(s2.targets.numpy(), minlength=9).tolist() == COUNTS[1:]
    assert set(s2.targets.tolist()) == set(range(9))
    original = train.targets.numpy()[s2.indices]
    assert (original != 0).all()                                   # no class-0 image leaks in
    assert (to_original(s2.targets.numpy()) == original).all()      # and the mapping goes back
    assert WITHOUT_CLASS0 == {c: c - 1 for c in range(1, 10)}
    x, y = s2[0]
    assert y == int(s2.targets[0]) and x.shape == (1, 16, 16)


def test_to_original():
    assert to_original([0, 8, 3]).tolist() == [1, 9, 4]


def test_balanced_exact_counts_and_copies(train):
    per_class = 5
    b = balanced(train, per_class, seed=0)
    assert len(b) == 10 * per_class
    assert np.bincount(b.targets.numpy(), minlength=10).tolist() == [per_class] * 10
    labels = b.targets.numpy()
    for c, n in enumerate(COUNTS):
        idx = b.indices[labels == c]
        copies = b.copies[labels == c]
        if n >= per_class:
            assert copies.sum() == 0 and len(set(idx)) == per_class     # drawn without repeats
        else:
            assert copies.sum() == per_class - n                        # only the shortfall is copies
            assert set(idx) == set(np.flatnonzero(train.targets.numpy() == c))   # every image of the class used
    assert (train.targets.numpy()[b.indices] == labels).all()


def test_balanced_is_reproducible_from_its_seed(train):
    a, b, c = balanced(train, 5, seed=3), balanced(train, 5, seed=3), balanced(train, 5, seed=4)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.copies, b.copies)
    assert not np.array_equal(a.indices, c.indices)


def test_balanced_bad_inputs(train):
    with pytest.raises(SettingsError, match=r"images per class \(stage3_per_class\) must be > 0, got 0") as e:
        balanced(train, 0, seed=0)
    assert_one_line(e)
    missing = chips([3] * 9 + [0])
    with pytest.raises(DataError, match="class 9 has no training images"):
        balanced(missing, 2, seed=0)


def class_balanced_sampler(train, seed, num_samples=None):
    """The class-balanced draws of one epoch, as helpers.method.loader makes them for cRT and LWS."""
    sampler = EpochSampler(len(train), class_balanced_weights(train), num_samples)
    sampler.set_epoch(seed)
    return sampler


def test_class_balanced_sampler_is_roughly_uniform(train):
    sampler = class_balanced_sampler(train, seed=0, num_samples=20000)
    drawn = train.targets.numpy()[[i for i, _ in sampler]]
    shares = np.bincount(drawn, minlength=10) / len(drawn)
    assert np.abs(shares - 0.1).max() < 0.015
    # Default length is the data set's; same seed, same draw.
    assert len(class_balanced_sampler(train, seed=1)) == len(train)
    assert list(class_balanced_sampler(train, seed=1)) == list(class_balanced_sampler(train, seed=1))
