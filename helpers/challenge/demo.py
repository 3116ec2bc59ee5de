"""A demo prediction set for built-in data: the run's labelled test chips (and its OOD test chips, where
the data has them) copied as an unlabeled flat folder, with the answers in a key beside it.

    <run>/demo_test_images/SAR_<id>.png     ids in a shuffled order
    <run>/demo_test_key.csv                 image_id,class_id,ood   (class_id -1 on an OOD chip)

The key has the columns of a PBVS 2023-2025 reference, so `python -m helpers.score` scores a demo
submission as the challenge scores a real one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets import archive

DEMO_FOLDER = "demo_test_images"
DEMO_KEY = "demo_test_key.csv"


def demo_chips(run_dir, settings, bundle=None) -> Path:
    """Write the demo folder and its key (see the module docstring); return the folder."""
    if bundle is None:
        from ..datasets.data import load_data
        bundle = load_data(settings)
    folder = Path(run_dir) / DEMO_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    prefix = archive.PREFIXES[settings.modality]
    chips = [(p, int(c), 0) for p, c in zip(bundle.test.paths, bundle.test.targets)]
    if bundle.has_ood:
        chips += [(p, -1, 1) for p in bundle.ood_test.paths]
    order = np.random.default_rng(settings.data_seed).permutation(len(chips))
    rows = []
    for image_id, i in enumerate(order, start=1):
        source, label, flag = chips[i]
        shutil.copyfile(source, folder / f"{prefix}{image_id}{Path(source).suffix}")
        rows.append({"image_id": image_id, "class_id": label, "ood": flag})
    pd.DataFrame(rows).to_csv(Path(run_dir) / DEMO_KEY, index=False)
    return folder


def score_against_key(results: pd.DataFrame, key_csv) -> dict:
    """Scores of a submission's in-distribution rows against a key (helpers.method.metrics.summary)."""
    from ..method.metrics import summary
    key = pd.read_csv(key_csv)
    if "ood" in key.columns:
        key = key[key["ood"] == 0]
    merged = key.merge(results, on="image_id", suffixes=("_true", "_pred"), validate="one_to_one")
    return summary(merged["class_id_true"], merged["class_id_pred"])
