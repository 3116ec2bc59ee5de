"""Tuned choices never see the chips that rank the methods: validation halves, tau-norm's and logit
adjustment's tau on the tuning half, and post-hoc logit adjustment on a hand-worked 2-class example."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers.datasets.data import load_data
from helpers.evidence import experiments, logit_adjustment, rebalancing
from helpers.method import validation_halves
from helpers.method import runs


def test_the_halves_split_every_class_and_do_not_overlap():
    labels = np.repeat(np.arange(10), [4, 4, 3, 3, 2, 2, 1, 1, 5, 6])
    tune, rank = validation_halves.halves(labels, seed=0)
    assert not set(tune) & set(rank) and sorted([*tune, *rank]) == list(range(len(labels)))
    for c in range(10):
        n = int((labels == c).sum())
        assert (labels[tune] == c).sum() == n // 2 and (labels[rank] == c).sum() == n - n // 2   # a single chip ranks
    assert (validation_halves.halves(labels, 0)[0] == tune).all()                            # repeatable


def test_logit_adjustment_on_a_two_class_example():
    prior_log = logit_adjustment.log_prior([9, 1])                   # pi = 0.9, 0.1
    assert prior_log.tolist() == pytest.approx([math.log(0.9), math.log(0.1)])
    logits = torch.tensor([[2.0, 1.5]])
    # tau 0: the plain model says class 0; tau 1: 2 - log 0.9 = 2.105 against 1.5 - log 0.1 = 3.803, class 1
    assert logit_adjustment.adjusted(logits, prior_log, 0.0).argmax(1).item() == 0
    assert logit_adjustment.adjusted(logits, prior_log, 1.0).tolist() == [pytest.approx([2.10536, 3.80259], abs=1e-4)]
    assert logit_adjustment.probabilities(logits, prior_log, 1.0).argmax(1).item() == 1
    # the smallest tau that gets both chips right: chip 2 needs 0.5 + tau x 2.197 > 0, chip 1 needs tau > 0.228
    two = torch.tensor([[2.0, 1.5], [0.0, -0.5]])
    tau, scores = logit_adjustment.choose_tau(two, np.array([1, 1]), prior_log, grid=(0.0, 0.25, 0.5))
    assert tau == 0.25 and scores[0.0] == 0.0 and scores[0.25] == 1.0


@pytest.mark.slow
def test_tau_is_chosen_on_the_tuning_half_only(tmp_path, sar_data_dir, tiny_settings, monkeypatch):
    settings = tiny_settings(data="digits-lt", stage1_steps=4, stage2_steps=2, stage3a_steps=2, batch_size=16)
    run_dir, settings = runs.open_run(tmp_path / "run", "smoke", **{k: v for k, v in settings.to_dict().items()
                                                                    if k not in ("seeds",)})
    bundle = load_data(settings)
    experiments.train_plain(bundle, settings, run_dir, progress=False)
    tune, rank = validation_halves.halves(bundle.val.targets.numpy(), settings.data_seed)
    seen = {}
    real_tau, real_la = rebalancing.choose_tau, logit_adjustment.choose_tau

    def tau_spy(feats, labels, weight, *a, **k):
        seen["tau"] = (feats.shape[1], list(labels))
        return real_tau(feats, labels, weight, *a, **k)

    def la_spy(logits, labels, prior_log, *a, **k):
        seen["la"] = (logits.shape[1], list(labels))
        return real_la(logits, labels, prior_log, *a, **k)

    monkeypatch.setattr(rebalancing, "choose_tau", tau_spy)
    monkeypatch.setattr(logit_adjustment, "choose_tau", la_spy)
    table = experiments.evaluate_methods(bundle, settings, run_dir, ["tau-norm", "logit adjustment"])
    y = bundle.val.targets.numpy()
    for name in ("tau", "la"):
        n, labels = seen[name]
        assert n == len(tune) and labels == y[tune].tolist(), f"{name}: chosen on other chips than the tuning half"
    assert set(table["val_half"]) == {"ranking"} and table["la_tau"].notna().iloc[1]
