"""Out-of-distribution (OOD) scores: how sure the classifier is that a chip is one of the 10 classes.

PBVS 2023-2025 (MAVIC-C) score a submission by 0.75 x accuracy + 0.25 x the AUROC of telling the
10 classes' chips (in-distribution, ID) from targets of none of them (OOD), with the `score` column
as an *in-distribution confidence*: higher means more likely one of the 10.  Three post-hoc scores of
a trained classifier, each on the run's test-time views (V x N x C logits):

* `msp`        maximum softmax probability (Hendrycks & Gimpel, 2017) of the view-averaged softmax,
               the probabilities the class prediction itself uses;
* `max_logit`  the largest view-averaged logit (Hendrycks et al., 2022, "MaxLogit");
* `energy`     logsumexp of the view-averaged logits, i.e. minus the free energy (Liu et al., 2020).

AUROC and the false-positive rate at 95 % true-positive rate come from scikit-learn, ID as the
positive class.  `choose` picks the score with the best validation AUROC where an OOD validation set
exists; without one, `max_logit` is the default (DEFAULT).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

SCORES = ("msp", "max_logit", "energy")
DEFAULT = "max_logit"
NAMES = {"msp": "maximum softmax probability", "max_logit": "maximum logit", "energy": "energy (logsumexp)"}


def _views(logits) -> torch.Tensor:
    logits = torch.as_tensor(logits, dtype=torch.float32)
    return logits.unsqueeze(0) if logits.dim() == 2 else logits


def score(logits, name: str) -> np.ndarray:
    """The in-distribution confidence of every chip (N), from logits of shape N x C or V x N x C."""
    views = _views(logits)
    if name == "msp":
        out = F.softmax(views, dim=-1).mean(0).max(dim=1).values
    elif name == "max_logit":
        out = views.mean(0).max(dim=1).values
    elif name == "energy":
        out = torch.logsumexp(views.mean(0), dim=1)
    else:
        raise ValueError(f"OOD score must be one of {', '.join(SCORES)}, got {name!r}")
    return out.numpy().astype(np.float64)


def auroc(id_scores, ood_scores) -> float:
    """Area under the ROC curve of telling ID (positive) from OOD chips by the score; 0.5 is chance."""
    y, s = _labelled(id_scores, ood_scores)
    return float(roc_auc_score(y, s))


def fpr_at_95_tpr(id_scores, ood_scores) -> float:
    """The share of OOD chips scored as ID at the threshold that keeps 95 % of the ID chips."""
    y, s = _labelled(id_scores, ood_scores)
    fpr, tpr, _ = roc_curve(y, s)
    return float(fpr[np.searchsorted(tpr, 0.95, side="left")])


def _labelled(id_scores, ood_scores):
    id_scores, ood_scores = np.asarray(id_scores, float), np.asarray(ood_scores, float)
    if not len(id_scores) or not len(ood_scores):
        raise ValueError("AUROC needs both in-distribution and OOD chips")
    return np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))], np.r_[id_scores, ood_scores]


def table(id_logits, ood_logits) -> dict:
    """{score name: {"auroc": ..., "fpr95": ...}} for every score."""
    out = {}
    for name in SCORES:
        i, o = score(id_logits, name), score(ood_logits, name)
        out[name] = {"auroc": auroc(i, o), "fpr95": fpr_at_95_tpr(i, o)}
    return out


def choose(setting: str, val_id_logits=None, val_ood_logits=None) -> tuple[str, str]:
    """(score name, why) for the `ood_score` setting: itself, or for "auto" the best validation AUROC
    (the earlier of SCORES on a tie) where an OOD validation set exists, else DEFAULT."""
    if setting != "auto":
        return setting, "set by ood_score"
    if val_ood_logits is None or _views(val_ood_logits).shape[1] == 0:
        return DEFAULT, "no OOD validation set: the default"
    aurocs = {n: v["auroc"] for n, v in table(val_id_logits, val_ood_logits).items()}
    best = max(aurocs.values())
    name = next(n for n in SCORES if aurocs[n] == best)
    return name, f"best validation AUROC ({best:.3f})"


def challenge_total(accuracy: float, auroc_value: float) -> float:
    """The PBVS 2023-2025 total: 0.75 x accuracy + 0.25 x OOD AUROC."""
    return 0.75 * accuracy + 0.25 * auroc_value
