"""Scores on the class-balanced test set, from scikit-learn; a class with no test chip is never scored 0."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score


def summary(y_true, y_pred, num_classes: int = 10) -> dict:
    """Balanced top-1 (mean per-class recall), overall top-1, per-class accuracy, predicted-class shares.

    A class with no test chip is not measured: its accuracy is NaN (never a zero), the balanced top-1
    is the mean over the measured classes, and `classes_measured` says how many there are; when it is
    under `num_classes`, `balanced_label` names the score "balanced top-1 over k of 10 classes".
    """
    labels = list(range(num_classes))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    predicted = np.bincount(y_pred, minlength=num_classes) / max(len(y_pred), 1)
    present = np.bincount(y_true, minlength=num_classes)[:num_classes] > 0
    per_class = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0).astype(float)
    per_class[~present] = np.nan
    k = int(present.sum())
    return {
        "balanced_top1": float(np.mean(per_class[present])) if k else float("nan"),
        "top1": float(accuracy_score(y_true, y_pred)),
        "per_class": per_class.tolist(),
        "classes_measured": k,
        "balanced_label": balanced_label(k, num_classes),
        "predicted_share": predicted.tolist(),
        # Total variation distance of the predicted-class distribution from uniform (0 = exactly uniform).
        "distance_from_uniform": float(0.5 * np.abs(predicted - 1 / num_classes).sum()),
    }


def balanced_label(k: int, num_classes: int = 10) -> str:
    """How a table names the balanced top-1 measured on `k` classes."""
    return "balanced top-1" if k >= num_classes else f"balanced top-1 over {k} of {num_classes} classes"


def not_measured(table):
    """A per-class table for display: NaN (a class with no test chip) shown as "not measured"."""
    return table.astype(object).where(table.notna(), "not measured")


def confusion(y_true, y_pred, num_classes: int = 10, normalize: str | None = "true"):
    """The confusion matrix (rows: true classes); normalised by row, a class with no test chip is a row of NaN."""
    counts = confusion_matrix(y_true, y_pred, labels=list(range(num_classes))).astype(float)
    if normalize != "true":
        return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)), normalize=normalize)
    rows = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, counts / rows, np.nan)


# Shot groups by training images per class, as in Kang et al.'s classifier-balancing code.
MANY_SHOT, FEW_SHOT = 100, 20


def shot_group(count: int) -> str:
    """'many' (over 100 training images), 'few' (under 20) or 'medium'."""
    return "many" if count > MANY_SHOT else ("few" if count < FEW_SHOT else "medium")


def shot_groups(per_class_accuracy, train_counts) -> dict:
    """Mean accuracy of the measured classes (not NaN) within each shot group (NaN when none is measured)."""
    acc, counts = np.asarray(per_class_accuracy, dtype=float), np.asarray(train_counts)
    groups = np.array([shot_group(int(n)) for n in counts])
    out = {}
    for g in ("many", "medium", "few"):
        measured = (groups == g) & ~np.isnan(acc)
        out[g] = float(acc[measured].mean()) if measured.any() else float("nan")
    return out


def shot_group_sizes(per_class_accuracy, train_counts) -> dict:
    """For each shot group, "measured of all" classes, e.g. {"few": "2 of 5"}."""
    acc, counts = np.asarray(per_class_accuracy, dtype=float), np.asarray(train_counts)
    groups = np.array([shot_group(int(n)) for n in counts])
    return {g: f"{int(((groups == g) & ~np.isnan(acc)).sum())} of {int((groups == g).sum())}"
            for g in ("many", "medium", "few")}
