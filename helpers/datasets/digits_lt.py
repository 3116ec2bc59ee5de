"""`digits-lt`: real images without a download, made long-tailed.

scikit-learn ships 1,797 handwritten 8x8 digits.  A class-balanced test (and val) split is held
out first; the rest is made long-tailed with the exponential profile of the LDAM-DRW CIFAR-LT
protocol: class i keeps n_max * imbalance**(-i/9) images, so class 0 is the head.  Chips are
upsampled to 32 px and written as PNG in the same folder layout as every other data set.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ..settings.config import SettingsError

CLASS_NAMES = [str(i) for i in range(10)]
VERSION = 1


def long_tail_counts(n_max: int, imbalance: float) -> list[int]:
    return [max(1, int(n_max * imbalance ** (-i / 9))) for i in range(10)]


def generate(root: Path, val_per_class: int, test_per_class: int, imbalance: float, seed: int = 0) -> Path:
    from sklearn.datasets import load_digits

    root = Path(root)
    spec = {"generator": "digits-lt", "version": VERSION, "val_per_class": val_per_class,
            "test_per_class": test_per_class, "imbalance": imbalance, "seed": seed}
    if (root / "spec.json").exists() and json.loads((root / "spec.json").read_text()) == spec:
        return root
    digits = load_digits()
    rng = np.random.default_rng(seed)
    per_class = {c: rng.permutation(np.flatnonzero(digits.target == c)) for c in range(10)}
    smallest = min(len(v) for v in per_class.values())
    held = val_per_class + test_per_class
    if held >= smallest:
        raise SettingsError(f"digits-lt has only {smallest} images in its smallest class; "
                            f"val_per_class + test_per_class must be below that, got {held}")
    n_max = smallest - held
    counts = long_tail_counts(n_max, imbalance)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for c in range(10):
        idx = per_class[c]
        splits = {"test": idx[:test_per_class], "val": idx[test_per_class:held], "train": idx[held:held + counts[c]]}
        for split, ids in splits.items():
            folder = tmp / split / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in ids:
                img = (digits.images[i] / 16 * 255).astype(np.uint8)
                Image.fromarray(img).resize((32, 32), Image.BILINEAR).save(folder / f"{split}_{c}_{i:04d}.png")
    (tmp / "spec.json").write_text(json.dumps(spec, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root
