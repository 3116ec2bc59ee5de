"""Fair evidence (issue 8): budgets in optimizer steps, matched baselines and ablations, shot groups, verdicts."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import chips
from helpers.method import budget, metrics, tta
from helpers.evidence import compare, experiments, statistics, verdicts
from helpers.settings import config
from helpers.lessons import evaluation
from helpers.evidence import rebalancing
from helpers.method.checkpoints import checkpoint_path, load_checkpoint
from helpers.method.loader import make_loader
from helpers.method.model import shake_shake_26_2x32d
from helpers.method.training import lr_factor, train_stage, warmup_steps


def test_stage_steps_by_hand():
    s = config.resolve("smoke", batch_size=8, stage1_steps=0, stage1_epochs=3, stage2_steps=5, stage3_per_class=4)
    sizes = budget.set_sizes(20, 12, s)
    assert sizes == {"stage1": 20, "stage2": 12, "stage3a": 40, "stage3b": 40}
    assert budget.stage_steps(s, "stage1", 20) == 8            # ceil(3 x 20 / 8)
    assert budget.stage_steps(s, "stage2", 12) == 5            # given directly
    s2 = config.resolve("smoke", batch_size=8, stage1_steps=0, stage1_epochs=3, stage2_steps=5, budget_scale=2)
    assert budget.stage_steps(s2, "stage1", 20) == 16 and budget.stage_steps(s2, "stage2", 12) == 10


def test_quick_profile_gives_both_data_sets_the_same_steps():
    s = config.resolve("quick")
    big, small = budget.schedule(s, budget.set_sizes(5000, 1014, s)), budget.schedule(s, budget.set_sizes(331, 200, s))
    assert big == small == {"stage1": 150, "stage2": 100, "stage3a": 50, "stage3b": 40}


def test_matched_plan_and_removed_steps_given_back():
    s = config.resolve("quick")
    plan = budget.matched(s, budget.set_sizes(5000, 1014, s))
    three = budget.path_steps(plan, experiments.THREE)
    assert three == (300, 40)
    for name, spec in experiments.METHODS.items():
        full, clf = budget.path_steps(plan, spec["path"])
        if name in ("plain CE", "LDAM-DRW", "Balanced Softmax", "tau-norm", "logit adjustment"):
            assert (full, clf) == (300, 0)                      # the same full-model steps (the post-hoc ones train nothing more)
        elif name == "w/o 3b":
            assert (full, clf) == (340, 0)                      # 3a takes 3b's 40 steps
        else:
            assert (full, clf) == three, name
    assert plan["stage3a_from1"] == {"steps": 150, "trainable": "all", "made_of": ["stage3a", "stage2"], "gets": "stage2"}
    assert plan["stage2_plus3a"]["steps"] == 150 and plan["stage2_plus3a"]["gets"] == "stage3a"
    assert plan["stage3a_plus3b"]["steps"] == 90 and plan["stage3a_plus3b"]["gets"] == "stage3b"


def test_short_stage_warns_in_one_line_naming_the_setting():
    s = config.resolve("quick", stage3b_steps=10)
    with pytest.warns(UserWarning) as w:
        msg = budget.check_minimum("stage3b", 10, s, budget.budget_setting("stage3b", s))
    assert msg == str(w[0].message) and "\n" not in msg
    assert msg.startswith("stage3b: 10 optimizer steps is below min_stage_steps=30") and msg.endswith("raise stage3b_steps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert budget.check_minimum("stage1", 150, s) is None
    paper = config.resolve("paper")
    assert budget.budget_setting("stage1", paper) == "stage1_epochs (or stage1_steps)"


def test_warmup_then_cosine():
    assert [round(lr_factor(i, 10, 2), 4) for i in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(6, 10, 2) == pytest.approx(0.5)            # half-way through the cosine part
    assert lr_factor(10, 10, 2) == pytest.approx(0.0, abs=1e-12)
    assert warmup_steps(config.resolve("quick"), 300) == 15 and warmup_steps(config.resolve("quick", warmup_fraction=0), 300) == 0


def test_train_stage_runs_exactly_its_steps(tmp_path, tiny_settings):
    data = chips(2)                                              # 20 chips, batch 8: 2 full batches an epoch
    history = train_stage(shake_shake_26_2x32d(), data, stage="stage1", run_dir=tmp_path, settings=tiny_settings(),
                          steps=5, lr=0.05, progress=False)
    assert history["steps"].tolist() == [2, 2, 1] and history["images"].tolist() == [16, 16, 8]
    ckpt = load_checkpoint(checkpoint_path(tmp_path, "stage1"))
    assert ckpt["step"] == ckpt["steps"] == 5 and ckpt["complete"] and ckpt["config"]["warmup_steps"] == 1


def test_batches_do_not_depend_on_the_worker_count():
    data = chips(3)
    batches = {}
    for workers in (0, 2):
        loader, sampler = make_loader(data, 8, num_workers=workers)
        out = []
        for epoch_seed in (11, 12):
            sampler.set_epoch(epoch_seed)
            out += [x for x, _ in loader]
        batches[workers] = torch.cat(out)
    assert torch.equal(batches[0], batches[2])
    sampler.set_epoch(11)
    assert not torch.equal(torch.cat([x for x, _ in loader])[:8], batches[0][24:32])   # another epoch, another draw


def test_class_balanced_loader_draws_classes_evenly():
    loader, sampler = make_loader(chips([60, 2, 2, 2, 2, 2, 2, 2, 2, 2]), 50, balanced=True)
    sampler.set_epoch(0)
    counts = np.bincount(torch.cat([y for _, y in loader]).numpy(), minlength=10)
    assert counts[0] < 0.25 * counts.sum()                       # class 0 is 75% of the set, ~10% of the draws


def test_tau_normalisation_by_hand():
    w = torch.tensor([[3.0, 4.0], [0.0, 2.0]])                   # row norms 5 and 2
    torch.testing.assert_close(rebalancing.tau_normalise(w, 1.0), torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    torch.testing.assert_close(rebalancing.tau_normalise(w, 0.0), w)
    torch.testing.assert_close(rebalancing.tau_normalise(w, 0.5), torch.tensor([[3 / 5 ** 0.5, 4 / 5 ** 0.5], [0.0, 2 ** 0.5]]))


def test_tau_is_chosen_on_validation():
    # Class 0's weight is 3x longer: with tau=0 every feature goes to class 0; tau=1 balances them.
    w = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[[1.0, 0.5], [0.4, 1.0]]])             # 1 view x 2 images
    tau, scores = rebalancing.choose_tau(feats, np.array([0, 1]), w, grid=(0.0, 1.0))
    assert scores == {0.0: 0.5, 1.0: 1.0} and tau == 1.0


def test_shot_groups_follow_the_classifier_balancing_thresholds():
    assert [metrics.shot_group(n) for n in (101, 100, 20, 19)] == ["many", "medium", "medium", "few"]
    g = metrics.shot_groups([1.0, 0.5, 0.25, 0.0], [500, 50, 30, 5])
    assert g == {"many": 1.0, "medium": 0.375, "few": 0.0}
    assert math.isnan(metrics.shot_groups([1.0], [500])["few"])


HELD = ([0.60, 0.62, 0.64], [0.50, 0.55, 0.54])        # differences 0.10, 0.07, 0.10
NOISE = ([0.52, 0.48, 0.55], [0.50, 0.50, 0.50])       # differences 0.02, -0.02, 0.05


def per_seed(three, crt, under=False, tau_val=0.1):
    """A 3-seed per-seed table of the four methods of claim (1); cRT is the best two-stage by validation;
    `under`: three-stage under-trained (validation under twice chance)."""
    rows = []
    for seed in range(len(three)):
        for method, score, val in (("three-stage", three[seed], 0.15 if under else 0.5), ("cRT", crt[seed], 0.5),
                                   ("tau-norm", 0.70, tau_val), ("LWS", 0.45, 0.4)):   # tau-norm: best on test, not val
            rows.append({"method": method, "seed": seed, "balanced_top1": score, "val_balanced_top1": val,
                         "under_trained": val < experiments.UNDER_TRAINED, "distance_from_uniform": 0.05})
    return experiments.aggregate(pd.DataFrame(rows))


def test_paired_interval_and_holm_by_hand():
    # d = 0.10, 0.07, 0.10: mean 0.09, sd 0.01732, se 0.01, t = 9 with 2 df; t(0.975, 2) = 4.30265;
    # two-sided p = 2 (1/2 - 9 / (2 sqrt(83))) = 0.012124 (the t distribution with 2 df in closed form)
    r = statistics.paired(*HELD)
    assert r["gap"] == pytest.approx(0.09) and r["pairs"] == 3
    assert (r["lo"], r["hi"]) == (pytest.approx(0.09 - 0.0430265, abs=1e-6), pytest.approx(0.09 + 0.0430265, abs=1e-6))
    assert r["p"] == pytest.approx(2 * (0.5 - 9 / (2 * math.sqrt(83))), abs=1e-6)
    assert math.isnan(statistics.paired([0.5], [0.4])["lo"])                  # one pair: no interval
    # Holm on p = 0.01, 0.04, 0.03: sorted 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> max(0.06, 0.04)
    assert statistics.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert statistics.holm([0.02, float("nan")])[0] == pytest.approx(0.02)


def test_seeds_to_resolve_by_hand():
    # a gap of 1 with a per-seed sd of 1 over 5 seeds: the interval 1 +- t(0.975, 4) / sqrt(5) = 1 +- 1.2417.
    # n = 6: t(0.975, 5) / sqrt(6) = 2.5706 / 2.4495 = 1.049 > 1; n = 7: 2.4469 / 2.6458 = 0.925 < 1 -> 7
    half = 2.776445 / math.sqrt(5)
    assert statistics.seeds_to_resolve(1.0, 1 - half, 1 + half, 5) == 7
    assert statistics.seeds_to_resolve(-1.0, -1 - half, -1 + half, 5) == 7        # either sign
    assert statistics.seeds_to_resolve(0.0, -1, 1, 5) is None and statistics.seeds_to_resolve(1.0, 0, 2, 1) is None
    assert statistics.seeds_to_resolve(1e-6, -1, 1, 5) is None                     # not within 1000 seeds
    why = verdicts.claim1(per_seed(*NOISE))["why"]
    assert "seeds would put the interval clear of 0" in why


def test_claim1_verdicts():
    v = verdicts.claim1(per_seed(*HELD))
    assert v["rival"] == "cRT" and v["verdict"] == "held" and v["gap"] == pytest.approx(0.09)
    assert "gap +9.0 pp, 95% CI [+4.7, +13.3], p = 0.012" in v["why"]
    assert verdicts.claim1(per_seed(*NOISE))["verdict"] == "inconclusive"     # a mean ahead, an interval over 0
    assert verdicts.claim1(per_seed(HELD[1], HELD[0]))["verdict"] == "not held"
    assert verdicts.claim1(per_seed(*HELD, under=True))["verdict"] == "not evidence"
    old = per_seed(*HELD).drop(columns=[c for c in per_seed(*HELD).columns if c.startswith("paired_")])
    assert verdicts.claim1(old)["verdict"] == "not evidence"                  # no paired statistics: no verdict
    sweep = verdicts.sweep_verdicts({1.0: per_seed(*HELD), 2.0: per_seed(HELD[1], HELD[0])})
    assert sweep["verdict"].tolist() == ["held", "not held"] and verdicts.flips(sweep)
    assert sweep["p_holm"].tolist() == pytest.approx([2 * sweep["p"].iloc[0]] * 2)   # two equal p values: both x 2
    assert "Holm-corrected over 2 verdicts" in sweep["why"].iloc[0]
    steady = verdicts.sweep_verdicts({1.0: per_seed(*HELD), 2.0: per_seed(*NOISE), 4.0: per_seed(*HELD)})
    assert steady["verdict"].tolist() == ["held", "inconclusive", "held"]
    assert not verdicts.flips(steady)                              # inconclusive does not count as a flip
    # the claims table states claim (1) at every budget, and whether it flips
    speed = pd.DataFrame([{"input": 16, "median s / image": 0.006, "state_dict MiB": 11.3, "precision": "fp32", "as run": False},
                          {"input": 16, "median s / image": 0.005, "state_dict MiB": 90.1, "precision": "fp32", "as run": False},
                          {"input": 16, "median s / image": 0.006, "state_dict MiB": 11.3, "precision": "bf16", "as run": True},
                          {"input": 16, "median s / image": 0.008, "state_dict MiB": 90.1, "precision": "bf16", "as run": True}])
    comparison = per_seed(*HELD)
    claims = evaluation.claims_table(None, 0.05, speed, comparison, sweep)
    by = claims.set_index(claims["claim"].str.split(")").str[0] + ")")
    assert list(by.index) == ["(1)", "(1b)", "(2)", "(3)"]
    # the headline is the verdict at the largest budget of the sweep (2x: not held), 1x is convergence speed
    assert by.loc["(1)", "held"] == "not held" and by.loc["(1)", "this run"].startswith("at 2x, the largest budget")
    assert "the verdict quoted is the one at 2x (1x measures convergence speed)" in by.loc["(1)", "note"]
    assert evaluation.claims_table(None, 0.05, speed, comparison).set_index("claim")["held"].iloc[0] == "held"  # no sweep: 1x
    # tau-norm scores 0.70 on test against three-stage's 0.60-0.64: beaten by one method, so (1b) is not held
    assert by.loc["(1b)", "held"] == "not held" and "the hardest rival is tau-norm" in by.loc["(1b)", "this run"]
    assert by.loc["(3)", "held"] == "held" and "bf16" in by.loc["(3)", "note"]   # the run's precision, not fp32's
    assert "budget sweep: 1x held, 2x not held; the verdict flips" in by.loc["(1)", "note"]
    assert "does not flip" in evaluation.claims_table(None, 0.05, speed, comparison, steady)["note"].iloc[0]


def test_compare_folder_is_named_after_the_data(tmp_path):
    a, b = tmp_path / "one" / "mavoc", tmp_path / "two" / "mavoc"
    assert compare.folder_name("quick", "digits-lt") == "compare-quick-digits-lt"
    assert compare.folder_name("quick", "digits-lt", 2) == "compare-quick-digits-lt-x2"
    assert compare.folder_name("quick", "digits-lt", 1, 16) == "compare-quick-digits-lt"        # quick's own size
    assert compare.folder_name("quick", "digits-lt", 2, 24) == "compare-quick-digits-lt-x2-24px"
    assert compare.folder_name("quick", str(a)) != compare.folder_name("quick", str(b))
    assert compare.folder_name("quick", str(a)).startswith("compare-quick-mavoc-")


def test_tta_families():
    x = torch.randn(2, 1, 16, 16)
    assert len(tta.family_views(x, 3, "rotation")) == 12
    assert all(v.shape == x.shape for v in tta.family_views(x, 3, "rotation"))
    flip, no_flip = tta.views(x, 2, flip=True)[1], tta.views(x, 2, flip=False)[1]
    assert torch.equal(flip, torch.flip(x, dims=[3])) and not torch.equal(no_flip, flip)
    with pytest.raises(ValueError, match="TTA family"):
        tta.family_views(x, 3, "mixup")


def test_digits_are_never_flipped(sar_data_dir, tiny_settings):
    from helpers.datasets.data import load_data
    assert not load_data(tiny_settings(data="digits-lt")).hflip
    bundle = load_data(tiny_settings())
    assert bundle.hflip and any(type(t).__name__ == "RandomHorizontalFlip" for t in bundle.train.transform.transforms)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_cache):
    """Every method of a tiny run, trained once for the tests below."""
    from helpers.method import runs
    from helpers.datasets.data import load_data
    with pytest.MonkeyPatch.context() as mp:          # the data cache for this fixture only, never leaked
        mp.setenv("SAR_DATA_DIR", str(session_cache))
        run_dir, s = runs.open_run(tmp_path_factory.mktemp("all") / "r", "smoke", data_size=100, val_per_class=2,
                                   test_per_class=2, batch_size=8)
        bundle = load_data(s)
        experiments.train_all(bundle, s, run_dir, progress=False)
    return bundle, s, run_dir


def test_crt_and_lws_start_from_the_plain_ce_backbone(trained):
    _, _, run_dir = trained
    plain, crt, lws, crt0, lws0 = (experiments.final_model(run_dir, st).state_dict()
                                   for st in ("plain", "crt", "lws", "crt_frozen_bn", "lws_frozen_bn"))
    backbone = [k for k in plain if not k.startswith("fc.")]
    weights = [k for k in backbone if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(plain[k], crt[k]) and torch.equal(plain[k], lws[k]) for k in weights)
    assert all(torch.equal(plain[k], crt0[k]) and torch.equal(plain[k], lws0[k]) for k in backbone)   # frozen BN
    stat = next(k for k in backbone if k.endswith("running_mean"))
    assert not torch.equal(plain[stat], crt[stat]) and not torch.equal(plain[stat], lws[stat])   # re-estimated (Kang et al.)
    assert not torch.equal(plain["fc.weight"], crt["fc.weight"])          # cRT: a fresh classifier, re-trained
    assert torch.equal(plain["fc.weight"], lws["fc.weight"])              # LWS: the classifier kept ...
    assert not torch.equal(lws["fc.scales"], torch.ones(10))             # ... its class scales learned


def test_budgets_are_matched_in_the_trained_run(trained):
    bundle, s, run_dir = trained
    table = experiments.evaluate_methods(bundle, s, run_dir)
    t = table.set_index("method")
    three = t.loc["three-stage"]
    for name in ("plain CE", "LDAM-DRW", "cRT", "LWS", "tau-norm", "w/o stage 2", "w/o 3a"):
        assert abs(t.loc[name, "full_steps"] - three["full_steps"]) <= 0.01 * three["full_steps"], name
    for name in ("cRT", "LWS", "w/o stage 2", "w/o 3a"):
        assert t.loc[name, "classifier_steps"] == three["classifier_steps"], name
    assert t.loc["w/o 3b", "full_steps"] + t.loc["w/o 3b", "classifier_steps"] == three["full_steps"] + three["classifier_steps"]
    assert t.loc["w/o stage 2", "budget_note"] == "stage3a gets stage2's steps"
    assert {"many_shot", "medium_shot", "few_shot", "val_balanced_top1", "under_trained", "tau"} <= set(table.columns)
    assert 0.0 <= t.loc["tau-norm", "tau"] <= 2.0
    assert t["under_trained"].tolist() == (t["val_balanced_top1"] < 0.2).tolist()


def test_sweep_report_from_finished_budgets(tmp_path, monkeypatch):
    from helpers.evidence import sweep
    monkeypatch.setattr(compare, "folder", lambda profile, data, scale=1.0: tmp_path / f"cmp-x{scale:g}")
    monkeypatch.setattr(sweep, "folder", lambda profile, data: tmp_path / "sweep")
    for scale, three in ((1.0, 0.45), (2.0, 0.60)):
        rows = [{"method": m, "balanced_top1_mean": v, "balanced_top1_std": 0.02, "val_balanced_top1_mean": v,
                 "seeds": 2, "under_trained": False, "full_steps_mean": 300 * scale, "kind": "method",
                 # three-stage - method, paired by seed (as experiments.aggregate writes it)
                 "paired_gap": three - v, "paired_lo": three - v - 0.03, "paired_hi": three - v + 0.03, "paired_p": 0.01}
                for m, v in (("plain CE", 0.3), ("cRT", 0.5), ("tau-norm", 0.4), ("LWS", 0.45), ("LDAM-DRW", 0.35),
                             ("three-stage", three))]
        (tmp_path / f"cmp-x{scale:g}").mkdir()
        pd.DataFrame(rows).to_csv(tmp_path / f"cmp-x{scale:g}" / "comparison.csv", index=False)
    long, v = sweep.report("quick", "digits-lt", scales=(1.0, 2.0, 4.0))          # 4x not run yet: left out
    assert sorted(long["budget_scale"].unique()) == [1.0, 2.0] and len(long) == 12
    assert v["verdict"].tolist() == ["not held", "held"] and verdicts.flips(v)
    text = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| three-stage | 45.0 ± 2.0 | 60.0 ± 2.0 |" in text and "**flips**" in text
    assert (tmp_path / "sweep" / "figures" / "budget_sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_report_restored_from_the_committed_per_seed_tables(tmp_path, monkeypatch):
    import shutil
    from helpers.evidence import sweep
    snapshots, committed = tmp_path / "results", pd.read_csv(sweep.SNAPSHOTS / "sweep-quick-digits-lt-verdicts.csv")
    snapshots.mkdir()
    for name in ("compare-quick-digits-lt-per_seed.csv", "compare-quick-digits-lt-x2-per_seed.csv"):
        shutil.copy(sweep.SNAPSHOTS / name, snapshots / name)
    (snapshots / "compare-quick-digits-lt-24px-per_seed.csv").write_text("not a budget\n")    # another input size
    monkeypatch.setattr(sweep, "SNAPSHOTS", snapshots)
    monkeypatch.setattr(compare, "folder", lambda profile, data, scale=1.0: tmp_path / "runs" / f"cmp-x{scale:g}")
    monkeypatch.setattr(sweep, "folder", lambda profile, data: tmp_path / "sweep")
    monkeypatch.setattr(sweep, "measured_scales", lambda profile, data: [1.0, 2.0])
    assert sweep.restore("quick", "digits-lt") == [1.0, 2.0]
    assert sweep.restore("quick", "digits-lt") == []                    # a folder that exists is left as it is
    _, v = sweep.report("quick", "digits-lt")
    assert v["verdict"].tolist() == committed["verdict"].tolist() == ["inconclusive", "inconclusive"]
    assert np.allclose(v[["gap", "lo", "hi", "p", "p_holm"]], committed[["gap", "lo", "hi", "p", "p_holm"]])


def test_budget_sweep_gives_every_method_its_own_colour(tmp_path, monkeypatch):
    from matplotlib.colors import to_hex
    from helpers.figures import evidence_plots
    drawn = {}
    monkeypatch.setattr(evidence_plots, "save_show", lambda fig, run_dir, name: drawn.setdefault("fig", fig))
    methods = experiments.method_names(("method",))
    assert len(methods) == 9
    long = pd.DataFrame([{"method": m, "budget_scale": s, "full_steps_mean": 300 * s, "balanced_top1_mean": 0.5 + 0.01 * i,
                          "balanced_top1_std": 0.01, "under_trained": False}
                         for i, m in enumerate(methods) for s in (1.0, 2.0)])
    evidence_plots.budget_sweep(long, tmp_path)
    ax = drawn["fig"].axes[0]
    colours = {bars.get_label(): to_hex(bars.lines[0].get_color()) for bars in ax.containers}
    assert set(colours) == set(methods) and len(set(colours.values())) == 9
    assert colours["three-stage"] == evidence_plots.THREE_STAGE_COLOUR


def test_method_pivot_cells():
    long = pd.DataFrame({"method": ["cRT", "cRT", "plain CE", "plain CE"], "size": [24, 16, 24, 16],
                         "balanced_top1_mean": [0.5, 0.4, 0.12, float("nan")],
                         "balanced_top1_std": [0.021, float("nan"), 0.01, float("nan")],
                         "under_trained": [False, False, True, False]})
    lines = compare.method_pivot(long, "size", lambda s: f"{s} px")
    assert lines == ["| method | 16 px | 24 px |", "|---|---|---|",
                     "| cRT | 40.0 | 50.0 ± 2.1 |", "| plain CE | – | 12.0 ± 1.0 (under-trained) |"]


def test_training_does_not_depend_on_the_worker_count(tmp_path, tiny_settings):
    data = chips(2)
    weights = {}
    for workers in (0, 2):
        torch.manual_seed(0)
        model = shake_shake_26_2x32d()
        train_stage(model, data, stage="stage1", run_dir=tmp_path / f"w{workers}", settings=tiny_settings(num_workers=workers, device="cpu", precision="fp32"),
                    steps=4, lr=0.05, progress=False)
        weights[workers] = model.state_dict()
    assert all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_epochs_override_under_a_steps_profile_warns():
    with pytest.warns(UserWarning, match=r"stage1_epochs is ignored: profile 'quick' gives stage1_steps=150; set stage1_steps"):
        config.resolve("quick", stage1_epochs=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config.resolve("paper", stage1_epochs=8)                 # the paper profile counts epochs: no warning
        config.resolve("quick", stage1_steps=200)


# ---------------------------------------------------------------- predictions computed once (notebook 04, lean)
def test_predictions_equal_inference_and_share_a_backbone_pass(trained, monkeypatch):
    from helpers.method import inference, predictions
    bundle, s, run_dir = trained
    predictions.clear()
    calls = []
    real = inference.view_features
    monkeypatch.setattr(inference, "view_features", lambda model, ds, k, *a, **kw: calls.append(k) or real(model, ds, k, *a, **kw))
    for stage in ("plain", "crt_frozen_bn", "lws_frozen_bn"):   # one frozen backbone: one pass over the test set
        for k in (1, 2, 3):
            p = predictions.probabilities(run_dir, stage, bundle.test, s, k, flip=bundle.hflip)
            direct = inference.predict(experiments.final_model(run_dir, stage), bundle.test, k=k, device=s.device,
                                       flip=bundle.hflip, precision=s.precision)
            assert torch.equal(p, direct), (stage, k)          # the same numbers, not merely close
    assert calls == [3]
    predictions.probabilities(run_dir, "stage3b", bundle.test, s, 1, flip=bundle.hflip)
    predictions.probabilities(run_dir, "stage3b", bundle.val, s, 3, flip=bundle.hflip)
    assert calls == [3, 3, 3]                              # another backbone, another data set: a pass each
    rot = predictions.probabilities(run_dir, "stage3b", bundle.test, s, 12, "rotation", bundle.hflip)
    assert calls == [3, 3, 3, 12] and rot.shape == (len(bundle.test), 10)


def test_a_rewritten_checkpoint_is_read_again(trained, tmp_path):
    import shutil

    from helpers.method import predictions
    bundle, s, run_dir = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir / "plain", copy / "plain")
    before = predictions.probabilities(copy, "plain", bundle.test, s, 1)
    ckpt = torch.load(copy / "plain" / "checkpoint.pt", weights_only=False)
    ckpt["model"]["fc.bias"] = ckpt["model"]["fc.bias"] + torch.arange(10.0)     # favour the last classes
    torch.save(ckpt, copy / "plain" / "checkpoint.pt")
    after = predictions.probabilities(copy, "plain", bundle.test, s, 1)
    assert not torch.allclose(before, after)


def test_the_prediction_caches_are_bounded(trained, monkeypatch):
    from helpers.method import predictions
    bundle, s, run_dir = trained
    predictions.clear()
    monkeypatch.setattr(predictions, "KEEP_MODELS", 2)
    for stage in ("stage1", "stage3a", "plain"):
        predictions.probabilities(run_dir, stage, bundle.test, s, 1)
    assert len(predictions._MODELS) == 2                      # the least recently used (stage1) went
    assert not any("stage1" in key[0] for key in predictions._MODELS)
