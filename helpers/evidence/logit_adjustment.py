"""Post-hoc logit adjustment (Menon et al., ICLR 2021) of the plain-CE model, a rival in claim (1)'s family.

No training: the plain cross-entropy model's logits are shifted by the training class prior,
    predict argmax_y  f_y(x) - tau * log pi_y,
so that a rare class (small pi_y) gains and the head loses; tau = 1 is the Bayes-optimal correction for
a balanced test set when the model's softmax estimates the training distribution.  Like tau-norm it
keeps the plain-CE representation and re-balances only the decision: the two-stage family of the fact
sheet's claim.  tau comes from TAU_GRID, chosen on the *tuning* half of validation (the ranking half
then ranks the methods, helpers/evidence/experiments.py), never on test.  With TTA the shift is applied
to every view's logits, whose softmax is then averaged, as for every other method.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..method import metrics, predictions

TAU_GRID = tuple(round(0.25 * i, 2) for i in range(9))      # 0, 0.25, ..., 2.0


def log_prior(train_counts) -> torch.Tensor:
    """log pi_y of the training classes (a class with no chip counts as one, so the log stays finite)."""
    counts = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    return torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)


def adjusted(view_logits: torch.Tensor, prior_log: torch.Tensor, tau: float) -> torch.Tensor:
    """The logits minus tau x log prior (views x N x C or N x C)."""
    return view_logits.float() - tau * prior_log


def probabilities(view_logits: torch.Tensor, prior_log: torch.Tensor, tau: float) -> torch.Tensor:
    logits = adjusted(view_logits, prior_log, tau)
    logits = logits.unsqueeze(0) if logits.dim() == 2 else logits
    return F.softmax(logits, dim=-1).mean(0)


def choose_tau(view_logits, labels, prior_log, grid=TAU_GRID) -> tuple[float, dict]:
    """The tau of `grid` with the best balanced top-1 on (view_logits, labels); the smallest on a tie."""
    scores = {tau: metrics.summary(labels, probabilities(view_logits, prior_log, tau).argmax(1).numpy())["balanced_top1"]
              for tau in grid}
    best = max(scores.values())
    return min(t for t, v in scores.items() if v == best), scores


def la_predictions(bundle, settings, run_dir, k: int, family: str, tune) -> tuple:
    """(val probabilities, test probabilities, chosen tau) of the adjusted plain-CE model; tau chosen on
    the validation chips `tune` (indices)."""
    prior_log = log_prior(bundle.class_counts("train"))
    logits = lambda ds: predictions.view_logits(run_dir, "plain", ds, settings, k, family, bundle.hflip)
    val = logits(bundle.val)
    tau, _ = choose_tau(val[:, tune], bundle.val.targets.numpy()[tune], prior_log)
    return probabilities(val, prior_log, tau), probabilities(logits(bundle.test), prior_log, tau), tau
