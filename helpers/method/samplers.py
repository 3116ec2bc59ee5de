"""The three training sets of the three-stage method, plus the class-balanced sampling weights of cRT and LWS.

(1) the full long-tailed set: the training ChipSet itself;
(2) the class-0-removed set: classes 1-9 relabelled 0-8 (a 9-way head), mapped back by `to_original`;
(3) the class-balanced set: N images per class by random selection; a class with fewer than N
    images is filled with repeated draws of its images, which the training augmentation turns
    into augmented copies.  Reproducible from a seed.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..settings.config import SettingsError
from ..datasets.data import DataError

WITHOUT_CLASS0 = {c: c - 1 for c in range(1, 10)}   # original label -> stage-2 label


class Relabelled(Dataset):
    """A view of `base` at `indices`, with labels passed through `label_map` (original -> new)."""

    def __init__(self, base, indices, label_map: dict | None = None, copies: np.ndarray | None = None):
        self.base, self.indices, self.label_map = base, np.asarray(indices, dtype=np.int64), label_map
        original = base.targets.numpy()[self.indices]
        self.targets = torch.as_tensor(original if label_map is None else [label_map[t] for t in original])
        self.copies = np.zeros(len(self.indices), bool) if copies is None else copies

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        x, _ = self.base[int(self.indices[i])]
        return x, int(self.targets[i])


def without_class0(train) -> Relabelled:
    """Stage 2's set: every image of classes 1-9, labels 1-9 -> 0-8."""
    idx = np.flatnonzero(train.targets.numpy() != 0)
    return Relabelled(train, idx, WITHOUT_CLASS0)


def to_original(stage2_predictions):
    """Map stage-2 (9-way) predictions 0-8 back to the original classes 1-9."""
    return np.asarray(stage2_predictions) + 1


def balanced(train, per_class: int, seed: int, num_classes: int = 10) -> Relabelled:
    """Stage 3's set: `per_class` images of every class, drawn at random (with repeats only where needed)."""
    if per_class <= 0:
        raise SettingsError(f"images per class (stage3_per_class) must be > 0, got {per_class}")
    rng = np.random.default_rng(seed)
    labels = train.targets.numpy()
    chosen, copies = [], []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            raise DataError(f"class {c} has no training images; a balanced set needs every class 0-{num_classes - 1}")
        if len(idx) >= per_class:
            pick, extra = rng.choice(idx, per_class, replace=False), 0
        else:
            extra = per_class - len(idx)
            pick = np.concatenate([idx, rng.choice(idx, extra, replace=True)])
        chosen.append(pick)
        copies.append(np.arange(per_class) >= per_class - extra)
    order = rng.permutation(per_class * num_classes)
    return Relabelled(train, np.concatenate(chosen)[order], None, np.concatenate(copies)[order])


def class_balanced_weights(dataset) -> np.ndarray:
    """cRT's and LWS's sampling weights: every class equally likely, then an image uniformly within it
    (helpers.method.loader draws each epoch's batches with them)."""
    labels = dataset.targets.numpy()
    return 1.0 / np.bincount(labels)[labels]
