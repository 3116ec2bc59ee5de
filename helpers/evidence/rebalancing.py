"""Kang et al.'s decoupled two-stage methods (ICLR 2020), on the plain-CE backbone as the paper defines them.

The representation is the plain cross-entropy model trained with the full budget; only the
classifier is re-balanced:
* cRT: a freshly initialised classifier re-trained with class-balanced sampling, backbone weights frozen,
  its BatchNorm statistics re-estimated under that sampling, because Kang et al.'s `run_networks.py` puts
  every network in train mode every epoch (the variant "cRT, frozen BN" keeps plain CE's statistics);
* tau-normalisation: no training; each class's weight vector w_c becomes w_c / ||w_c||^tau (the bias
  is dropped, as in the authors' code), tau chosen on the *tuning* half of validation
  (helpers/method/validation_halves.py), never on test, never on the half that ranks the methods;
* LWS: the trained classifier kept, a learned scale f_c per class logit, class-balanced sampling, BatchNorm
  as cRT (and the variant "LWS, frozen BN").
cRT and LWS get the same classifier-only budget as the three-stage path's stage 3b, and their learning
rate comes from the same grid, chosen on the same tuning half (helpers/method/classifier_lr.py).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..method import classifier_lr, metrics, predictions
from ..method.checkpoints import load_stage_model
from ..method.training import model_rng, train_stage

TAU_GRID = tuple(round(0.1 * i, 1) for i in range(21))     # 0.0, 0.1, ..., 2.0


def train_crt(bundle, settings, run_dir, steps: int, progress=True, stage: str = "crt", bn: str = "train"):
    """cRT: a fresh classifier on the frozen plain-CE backbone, class-balanced batches; `bn="train"` re-estimates
    the BatchNorm statistics under them (Kang et al.'s code), `bn="frozen"` keeps plain CE's (the variant)."""
    plain = load_stage_model(run_dir, "plain", num_classes=10, normed_classifier=False, weight_scaling=False)

    def one(folder, lr):
        model = copy.deepcopy(plain)
        with model_rng(settings.seed, "crt"):       # the same fresh head for every candidate and both variants
            model.reset_classifier()
        train_stage(model, bundle.train, stage=folder, run_dir=run_dir, settings=settings, steps=steps, lr=lr,
                    trainable="classifier", balanced=True, bn=bn, val_set=bundle.val, progress=progress)
    classifier_lr.train_tuned(bundle, settings, run_dir, stage, one, progress)


def train_lws(bundle, settings, run_dir, steps: int, progress=True, stage: str = "lws", bn: str = "train"):
    """LWS: plain CE's classifier kept, a learned scale per class logit, class-balanced batches (`bn` as cRT)."""
    plain = load_stage_model(run_dir, "plain", num_classes=10, normed_classifier=False, weight_scaling=False)

    def one(folder, lr):
        model = copy.deepcopy(plain)
        with model_rng(settings.seed, "lws"):
            scales = model.add_weight_scaling()
        train_stage(model, bundle.train, stage=folder, run_dir=run_dir, settings=settings, steps=steps, lr=lr,
                    trainable="classifier", balanced=True, params=scales, bn=bn, val_set=bundle.val, progress=progress)
    classifier_lr.train_tuned(bundle, settings, run_dir, stage, one, progress)


def tau_normalise(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """w_c / ||w_c||_2^tau for every class row c."""
    return weight / weight.norm(dim=1, keepdim=True).pow(tau)


def tau_probabilities(view_feats: torch.Tensor, weight: torch.Tensor, tau: float) -> torch.Tensor:
    """Softmax of the tau-normalised (bias-free) classifier, averaged over the TTA views (views x N x D)."""
    return F.softmax(view_feats @ tau_normalise(weight, tau).T, dim=-1).mean(0)


def choose_tau(val_feats: torch.Tensor, val_labels, weight: torch.Tensor, grid=TAU_GRID) -> tuple[float, dict]:
    """The tau of `grid` with the best validation balanced top-1 (the smallest such tau on a tie)."""
    scores = {tau: metrics.summary(val_labels, tau_probabilities(val_feats, weight, tau).argmax(1).numpy())["balanced_top1"]
              for tau in grid}
    best = max(scores.values())
    return min(t for t, v in scores.items() if v == best), scores


def tau_norm_predictions(bundle, settings, run_dir, k: int, family: str = "levels", tune=None):
    """(val probabilities, test probabilities, chosen tau, score per tau on the tuning chips) of
    tau-normalisation; tau is chosen on the validation chips `tune` (indices; None: all of them)."""
    model = load_stage_model(run_dir, "plain", num_classes=10, normed_classifier=False, weight_scaling=False)
    weight = model.fc.weight.detach().float().cpu()
    views = lambda ds: predictions.view_features(run_dir, "plain", ds, settings, k, family, bundle.hflip)
    val = views(bundle.val)
    tune = slice(None) if tune is None else tune
    tau, scores = choose_tau(val[:, tune], bundle.val.targets.numpy()[tune], weight)
    test = views(bundle.test)
    return tau_probabilities(val, weight, tau), tau_probabilities(test, weight, tau), tau, scores
