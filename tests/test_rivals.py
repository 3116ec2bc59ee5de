"""The rivals as their papers and code define them: cRT and LWS with BatchNorm in train mode (Kang et al.'s
code) and as frozen-BN variants, Balanced Softmax's loss, the classifier learning rate chosen alike for every
classifier-only stage on validation's tuning half, and the sweep's convergence rule and headline verdict."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.datasets.data import load_data
from helpers.evidence import experiments, rebalancing, sweep, verdicts
from helpers.method import classifier_lr, runs, validation_halves
from helpers.method.checkpoints import load_stage_model
from helpers.method.losses import BalancedSoftmaxLoss

STATS = ("running_mean", "running_var", "num_batches_tracked")


def test_balanced_softmax_is_cross_entropy_of_logits_plus_log_counts():
    loss = BalancedSoftmaxLoss([3, 1])
    logits = torch.zeros(1, 2)
    # softmax of (log 3, log 1) = (3/4, 1/4): the rare class's loss is log 4, the common one's log 4/3
    assert loss(logits, torch.tensor([1])).item() == pytest.approx(math.log(4))
    assert loss(logits, torch.tensor([0])).item() == pytest.approx(math.log(4 / 3))
    assert BalancedSoftmaxLoss([0, 1]).log_counts.tolist() == [0.0, 0.0]      # an empty class counts as one


@pytest.mark.slow
def test_crt_in_train_bn_mode_changes_the_running_statistics_and_nothing_else(tmp_path, sar_data_dir, tiny_settings):
    settings = tiny_settings(data="digits-lt", stage1_steps=3, batch_size=16, classifier_lr_grid=[])
    run_dir, settings = runs.open_run(tmp_path / "run", "smoke", **settings.to_dict())
    bundle = load_data(settings)
    experiments.train_plain(bundle, settings, run_dir, progress=False)
    for stage, bn in (("crt", "train"), ("crt_frozen_bn", "frozen")):
        rebalancing.train_crt(bundle, settings, run_dir, 3, False, stage, bn)
    plain, crt, frozen = (load_stage_model(run_dir, s).state_dict() for s in ("plain", "crt", "crt_frozen_bn"))
    backbone = [k for k in plain if not k.startswith("fc.")]
    stats = [k for k in backbone if k.endswith(STATS)]
    assert stats and all(not torch.equal(plain[k], crt[k]) for k in stats if not k.endswith("num_batches_tracked"))
    assert all(crt[k] == plain[k] + 3 for k in stats if k.endswith("num_batches_tracked"))   # 3 steps, 3 batches
    assert all(torch.equal(plain[k], crt[k]) for k in backbone if k not in stats), "a backbone weight moved"
    assert all(torch.equal(plain[k], frozen[k]) for k in backbone), "the frozen-BN variant changed the backbone"
    assert not torch.equal(plain["fc.weight"], crt["fc.weight"])                            # the classifier trained


class FakeBundle:
    def __init__(self, per_class: int):
        self.val = type("V", (), {"targets": torch.arange(10).repeat_interleave(per_class)})()
        self.hflip = True


def _fake_candidates(tmp_path, monkeypatch, scores: dict):
    """train_one that records its calls and writes a folder; tuning scores from `scores` by folder."""
    calls = []

    def one(folder, lr):
        calls.append((folder, lr))
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "checkpoint.pt").write_text(folder)
    monkeypatch.setattr(classifier_lr, "tuning_score", lambda b, s, r, folder: scores[folder])
    monkeypatch.setattr(classifier_lr, "is_complete", lambda r, st: (tmp_path / st / "checkpoint.pt").is_file())
    return one, calls


def test_the_classifier_lr_is_the_best_on_the_tuning_half_and_the_smallest_on_a_tie(tmp_path, tiny_settings,
                                                                                   monkeypatch):
    settings = tiny_settings(classifier_lr_grid=[0.2, 0.01, 0.05])
    scores = {"crt_lr0.01": 0.50, "crt_lr0.05": 0.75, "crt_lr0.2": 0.75}
    one, calls = _fake_candidates(tmp_path, monkeypatch, scores)
    assert classifier_lr.train_tuned(FakeBundle(2), settings, tmp_path, "crt", one, progress=False) == 0.05
    assert [lr for _, lr in calls] == [0.01, 0.05, 0.2]
    assert (tmp_path / "crt" / "checkpoint.pt").read_text() == "crt_lr0.05"              # the candidate it kept
    record = json.loads((tmp_path / "crt" / classifier_lr.TUNING).read_text())
    assert record["lr"] == 0.05 and record["tuning_half_balanced_top1"] == {"0.01": 0.5, "0.05": 0.75, "0.2": 0.75}
    assert classifier_lr.chosen(tmp_path, "crt") == 0.05
    assert classifier_lr.train_tuned(FakeBundle(2), settings, tmp_path, "crt", one, progress=False) == 0.05
    assert len(calls) == 3, "a finished choice was trained again"
    # an empty grid: one training at stage3b_lr, into the stage folder itself
    calls.clear()
    assert classifier_lr.train_tuned(FakeBundle(2), tiny_settings(classifier_lr_grid=[], stage3b_lr=0.03), tmp_path,
                                     "lws", one, progress=False) == 0.03
    assert calls == [("lws", 0.03)]
    # one validation chip a class leaves no tuning half: stage3b_lr, untuned, rather than a choice on nothing
    calls.clear()
    assert classifier_lr.train_tuned(FakeBundle(1), tiny_settings(classifier_lr_grid=[0.05, 0.2], stage3b_lr=0.03),
                                     tmp_path, "stage3b", one, progress=False) == 0.03
    assert calls == [("stage3b", 0.03)]


def test_the_tuning_score_never_sees_the_ranking_half(tiny_settings, monkeypatch):
    labels = np.repeat(np.arange(10), 4)
    tune, rank = validation_halves.halves(labels, 0)
    right = torch.nn.functional.one_hot(torch.tensor(labels), 10).float()
    probs = right.clone()
    probs[rank] = torch.roll(right[rank], 1, dims=1)        # every ranking-half chip wrong, every tuning chip right

    monkeypatch.setattr(classifier_lr.predictions, "probabilities", lambda *a, **k: probs)
    assert classifier_lr.tuning_score(FakeBundle(4), tiny_settings(), None, "crt") == 1.0


def _long(rows):
    return pd.DataFrame([{"method": m, "budget_scale": s, "balanced_top1_mean": v, "train_seconds_mean": 100.0,
                          "seeds": 3} for m, s, v in rows])


def test_the_sweep_converges_when_no_method_gains_more_than_a_point():
    long = _long([("a", 1, 0.50), ("b", 1, 0.60), ("a", 2, 0.70), ("b", 2, 0.62), ("a", 4, 0.705), ("b", 4, 0.628)])
    conv = sweep.convergence(long)
    assert conv["budget"].tolist() == ["2x", "4x"] and conv["method"].tolist() == ["a", "b"]
    assert conv["largest_gain"].tolist() == pytest.approx([0.20, 0.008]) and conv["converged"].tolist() == [False, True]
    assert sweep.where_stopped(long).startswith("converged at 4x")
    stopped = sweep.where_stopped(long[long["budget_scale"] < 4])
    # 2 methods x 100 s x 3 seeds at 2x, doubled: 1,200 s = 0.3 h
    assert "not converged" in stopped and "a still gained +20.0 pp" in stopped and "about 0.3 h" in stopped


def test_the_headline_is_the_verdict_at_the_largest_budget():
    table = pd.DataFrame([{"budget": "1x", "verdict": "held", "rival": "cRT", "why": "gap +15.0 pp"},
                          {"budget": "4x", "verdict": "inconclusive", "rival": "LWS", "why": "gap +1.0 pp"}])
    line = verdicts.headline(table)
    assert line.startswith("at 4x, the largest budget measured: **inconclusive** against LWS")
    assert "At 1x it is held" in line
