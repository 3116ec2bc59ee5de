"""The re-balancing losses of the one-stage baselines: LDAM with deferred re-weighting (Cao et al.,
NeurIPS 2019), a baseline the seed cites, and Balanced Softmax (Ren et al., NeurIPS 2020).

LDAM subtracts a class-dependent margin m_c = C / n_c^(1/4) (largest margin `max_margin`) from the
true-class logit before a scaled softmax; DRW switches on class-balanced weights
(1 - beta) / (1 - beta^n_c) late in training
(after `drw_start_fraction` of the optimizer steps).

Balanced Softmax trains the softmax of the logits plus log n_c (the training class counts): the loss of
the label-shifted softmax exp(z_y + log n_y) / sum_j exp(z_j + log n_j), which is the logit-adjusted loss
with tau = 1 (Menon et al.). At test time the model's own logits are used, unshifted, so its predictions
suit a class-balanced test set.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class LDAMLoss(torch.nn.Module):
    def __init__(self, class_counts, max_margin: float = 0.5, scale: float = 30.0):
        super().__init__()
        m = 1.0 / np.power(np.maximum(class_counts, 1), 0.25)
        self.register_buffer("margins", torch.tensor(m * (max_margin / m.max()), dtype=torch.float32))
        self.register_buffer("weight", torch.ones(len(class_counts)))
        self.scale = scale

    def forward(self, logits, target):
        margin = self.margins.to(logits.device)[target]
        adjusted = logits.clone()
        adjusted[torch.arange(len(target)), target] -= margin
        return F.cross_entropy(self.scale * adjusted, target, weight=self.weight.to(logits.device))

    def set_step(self, step: int, total: int, class_counts, start_fraction: float, beta: float, warmup: int = 0):
        """Deferred re-weighting: plain weights until `start_fraction` of the steps (never inside the
        warm-up), class-balanced weights (1 - beta) / (1 - beta^n_c), normalised to sum to C, after."""
        if step >= max(warmup, int(start_fraction * total)):
            n = np.asarray(class_counts, dtype=np.float64)
            w = (1 - beta) / (1 - np.power(beta, n))
            self.weight = torch.tensor(w / w.sum() * len(n), dtype=torch.float32)
        else:
            self.weight = torch.ones(len(class_counts))


class BalancedSoftmaxLoss(torch.nn.Module):
    """Cross-entropy of logits + log n_c (Ren et al. 2020); a class with no chip counts as one."""

    def __init__(self, class_counts):
        super().__init__()
        counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
        self.register_buffer("log_counts", torch.tensor(np.log(counts), dtype=torch.float32))

    def forward(self, logits, target):
        return F.cross_entropy(logits + self.log_counts.to(logits.device), target)
