"""Every model construction and head change draws from (seed, stage) alone (helpers.method.training.model_rng):
plain CE, LDAM-DRW and stage 1 start from the same backbone weights, and a stage starts the same whether the
stages before it were trained or loaded in this process (the global generator's state does not matter)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from helpers.datasets.data import load_data
from helpers.evidence import experiments, rebalancing
from helpers.method import runs, stages

pytestmark = pytest.mark.usefixtures("sar_data_dir")


@pytest.fixture
def starts(monkeypatch):
    """The initial weights each training call is handed, by stage folder (nothing is trained)."""
    seen = {}

    def capture(model, *args, stage, **kwargs):
        seen[stage] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return pd.DataFrame()

    for module in (stages, experiments, rebalancing):
        monkeypatch.setattr(module, "train_stage", capture)
    return seen


def _same(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_plain_ce_ldam_and_stage1_start_from_the_same_weights(tmp_path, tiny_settings, starts):
    settings = tiny_settings(data="digits-lt")
    bundle = load_data(settings)
    torch.manual_seed(123)                       # whatever ran before in the process
    stages.stage1(bundle, settings, tmp_path, progress=False)
    torch.rand(1000)
    experiments.train_plain(bundle, settings, tmp_path, progress=False)
    experiments.train_ldam_drw(bundle, settings, tmp_path, progress=False)
    experiments.train_balanced_softmax(bundle, settings, tmp_path, progress=False)
    one, plain, ldam = starts["stage1"], starts["plain"], starts["ldam_drw"]
    assert _same(one, plain, one)                                        # every weight, the head too
    assert _same(one, starts["balanced_softmax"], one)                  # Balanced Softmax as well
    backbone = [k for k in one if not k.startswith("fc.")]
    assert _same(one, ldam, backbone) and not torch.equal(one["fc.weight"], ldam["fc.weight"])   # a normed head of its own
    # the next seed starts elsewhere
    stages.stage1(bundle, tiny_settings(data="digits-lt", seed=1), tmp_path / "s1", progress=False)
    assert not torch.equal(starts["stage1"]["fc.weight"], one["fc.weight"])


def test_a_stage_starts_the_same_after_its_predecessors_were_trained_or_loaded(tmp_path, tiny_settings, starts,
                                                                              monkeypatch):
    settings = tiny_settings(data="digits-lt", stage1_steps=2, stage2_steps=2, batch_size=16)
    run_dir, settings = runs.open_run(tmp_path / "run", "smoke", **{k: v for k, v in settings.to_dict().items()})
    bundle = load_data(settings)
    monkeypatch.undo()                           # train stages 1 and 2 for real
    from helpers.method.training import train_stage
    for module in (stages, experiments, rebalancing):
        assert module.train_stage is train_stage
    stages.stage1(bundle, settings, run_dir, progress=False)
    stages.stage2(bundle, settings, run_dir, progress=False)
    first = {}
    for label, noise in (("after training them", 0), ("in a fresh process that loads them", 1000)):
        torch.manual_seed(7)
        torch.rand(noise)                        # another state of the global generator
        monkeypatch.setattr(stages, "train_stage", lambda model, *a, stage, **k: first.setdefault(label, {
            n: v.detach().clone() for n, v in model.state_dict().items()}) and pd.DataFrame())
        stages.stage3a(bundle, settings, run_dir, progress=False)
    a, b = first["after training them"], first["in a fresh process that loads them"]
    assert _same(a, b, a), "stage 3a's grown head depends on what ran before it"
