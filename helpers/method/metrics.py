"""Scores on the class-balanced test set, all from scikit-learn."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, recall_score


def summary(y_true, y_pred, num_classes: int = 10) -> dict:
    """Balanced top-1 (mean per-class recall), overall top-1, per-class accuracy, predicted-class shares."""
    labels = list(range(num_classes))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    predicted = np.bincount(y_pred, minlength=num_classes) / max(len(y_pred), 1)
    return {
        "balanced_top1": float(balanced_accuracy_score(y_true, y_pred)),
        "top1": float(accuracy_score(y_true, y_pred)),
        "per_class": recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0).tolist(),
        "predicted_share": predicted.tolist(),
        # Total variation distance of the predicted-class distribution from uniform (0 = exactly uniform).
        "distance_from_uniform": float(0.5 * np.abs(predicted - 1 / num_classes).sum()),
    }


def confusion(y_true, y_pred, num_classes: int = 10, normalize: str | None = "true"):
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)), normalize=normalize)


# Shot groups by training images per class, as in Kang et al.'s classifier-balancing code.
MANY_SHOT, FEW_SHOT = 100, 20


def shot_group(count: int) -> str:
    """'many' (over 100 training images), 'few' (under 20) or 'medium'."""
    return "many" if count > MANY_SHOT else ("few" if count < FEW_SHOT else "medium")


def shot_groups(per_class_accuracy, train_counts) -> dict:
    """Mean per-class accuracy within each shot group (NaN for an empty group)."""
    acc, counts = np.asarray(per_class_accuracy, dtype=float), np.asarray(train_counts)
    groups = np.array([shot_group(int(n)) for n in counts])
    return {g: float(acc[groups == g].mean()) if (groups == g).any() else float("nan") for g in ("many", "medium", "few")}
