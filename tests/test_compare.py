"""helpers.compare on a smoke-size set with two seeds: the table, and a second run that trains nothing."""
from __future__ import annotations

import pandas as pd
import pytest

from helpers.evidence import compare
from helpers.evidence import experiments

from conftest import TINY

FAST = {**TINY, "batch_size": 50}   # fewer, larger steps: the same code paths, faster

pytestmark = pytest.mark.slow           # minutes: `make test-fast` leaves it out


def test_two_seed_comparison_and_rerun_does_not_retrain(tmp_path, sar_data_dir, capsys, monkeypatch):
    root = tmp_path / "cmp"
    summary = compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    assert list(summary["method"]) == list(experiments.METHODS)
    assert (summary["seeds"] == 2).all()
    for col in ("balanced_top1_mean", "top1_mean", "distance_from_uniform_mean"):
        assert summary[col].between(0, 1).all(), col
    assert (summary["balanced_top1_std"] >= 0).all()
    per_seed = pd.read_csv(root / "per_seed.csv")
    assert sorted(per_seed["seed"].unique()) == [0, 1]
    assert (root / "comparison.csv").is_file() and "| three-stage |" in (root / "comparison.md").read_text()
    # the two-level bootstrap, from every seed's test predictions: an interval around its gap, for every rival
    rivals = summary[summary["method"] != "three-stage"]
    assert rivals[["boot_lo", "boot_hi", "boot_p"]].notna().all().all()
    assert (rivals["boot_lo"] <= rivals["boot_gap"]).all() and (rivals["boot_gap"] <= rivals["boot_hi"]).all()
    assert rivals["boot_gap"].to_numpy() == pytest.approx(rivals["paired_gap"].to_numpy(), abs=1e-9)
    assert "bootstrap [" in (root / "comparison.md").read_text()
    # the table read back from its CSV (as notebook 04 does: empty notes come back as NaN) gives the same Markdown
    assert compare.markdown(pd.read_csv(root / "comparison.csv")) == compare.markdown(summary)

    checkpoints = sorted(root.glob("seed*/*/checkpoint.pt"))
    assert len(checkpoints) >= 2 * 5
    before = {p: p.stat().st_mtime_ns for p in checkpoints}
    capsys.readouterr()
    again = compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == before          # nothing retrained
    assert "epoch 1/" not in capsys.readouterr().out                        # no training epoch printed
    pd.testing.assert_frame_equal(again.drop(columns=["train_seconds_mean", "train_seconds_std"], errors="ignore"),
                                  summary.drop(columns=["train_seconds_mean", "train_seconds_std"], errors="ignore"))

    # a re-run interrupted after seed 0 keeps seed 1's earlier rows in per_seed.csv
    evaluate = experiments.evaluate_methods

    def interrupt_at_seed1(bundle, s, run_dir, methods=None, **kwargs):
        if run_dir.name == "seed1":
            raise KeyboardInterrupt
        return evaluate(bundle, s, run_dir, methods, **kwargs)

    monkeypatch.setattr(experiments, "evaluate_methods", interrupt_at_seed1)
    try:
        compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    except KeyboardInterrupt:
        pass
    pd.testing.assert_frame_equal(pd.read_csv(root / "per_seed.csv").drop(columns="train_seconds"),
                                  per_seed.drop(columns="train_seconds"))
