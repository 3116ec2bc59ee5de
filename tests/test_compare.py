"""helpers.compare on a smoke-size set with two seeds: the table, a second run that trains nothing (and reads
the seeds' finished tables back), and the same comparison with one seed trained as a job on submitit's
local executor (helpers/evidence/executors.py), which gives the sequential tables and, re-run, submits only
what is unfinished. One sequential comparison serves both."""
from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from helpers.evidence import compare
from helpers.evidence import experiments

from conftest import TINY, assert_drawn

FAST = {**TINY, "batch_size": 50}   # fewer, larger steps: the same code paths, faster
ARGS = ["--profile", "smoke", "--data", "digits-lt", "--seeds", "0", "1"] + [a for k, v in FAST.items() for a in ("-p", k, str(v))]

pytestmark = pytest.mark.slow           # minutes: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, session_cache):
    """The two-seed comparison, every method and ablation, in this process: (its folder, its summary)."""
    root = tmp_path_factory.mktemp("compare") / "sequential"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAR_DATA_DIR", str(session_cache))
        summary = compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    return root, summary


def tables(root) -> dict:
    """The comparison's tables, without what measures time (train seconds, the command's wall time)."""
    timing = lambda df: df.drop(columns=[c for c in df.columns if "seconds" in c])
    md = (root / "comparison.md").read_text()
    md = re.sub(r"Wall time of this command: \d+ s", "", md)
    md = "\n".join("|".join(cell for k, cell in enumerate(line.split("|")) if k != 10) if line.startswith("| ") else line
                   for line in md.splitlines())               # column 10 is the train time (s)
    return {"per_seed": timing(pd.read_csv(root / "per_seed.csv")), "comparison": timing(pd.read_csv(root / "comparison.csv")),
            "tta_gains": (root / "tta_gains.csv").read_text(), "md": md}


def test_two_seed_comparison_and_rerun_does_not_retrain(sequential, sar_data_dir, capsys, monkeypatch):
    root, summary = sequential
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
    assert_drawn(root / "figures" / "paired_gaps.png")                      # the gaps with their intervals
    # the table read back from its CSV (as notebook 04 does: empty notes come back as NaN) gives the same Markdown
    assert compare.markdown(pd.read_csv(root / "comparison.csv")) == compare.markdown(summary)

    checkpoints = sorted(root.glob("seed*/*/checkpoint.pt"))
    assert len(checkpoints) >= 2 * 5
    before = {p: p.stat().st_mtime_ns for p in checkpoints}
    capsys.readouterr()
    # seed 0's table deleted: evaluated again from its checkpoints, to the same rows; seed 1's read back
    (root / "seed0" / "methods.pkl").unlink()
    seed1 = (root / "seed1" / "methods.pkl").stat().st_mtime_ns
    again = compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == before          # nothing retrained
    assert "epoch 1/" not in capsys.readouterr().out                        # no training epoch printed
    assert (root / "seed0" / "methods.pkl").is_file() and (root / "seed1" / "methods.pkl").stat().st_mtime_ns == seed1
    pd.testing.assert_frame_equal(again.drop(columns=["train_seconds_mean", "train_seconds_std"], errors="ignore"),
                                  summary.drop(columns=["train_seconds_mean", "train_seconds_std"], errors="ignore"))

    # a re-run interrupted after seed 0 keeps seed 1's earlier rows in per_seed.csv
    evaluate = experiments.evaluate_methods

    def interrupt_at_seed1(bundle, s, run_dir, methods=None, **kwargs):
        if run_dir.name == "seed1":
            raise KeyboardInterrupt
        return evaluate(bundle, s, run_dir, methods, **kwargs)

    monkeypatch.setattr(experiments, "evaluate_methods", interrupt_at_seed1)
    (root / "seed1" / "methods.pkl").unlink()                               # so that seed 1 is evaluated
    try:
        compare.run("smoke", "digits-lt", [0, 1], str(root), False, FAST)
    except KeyboardInterrupt:
        pass
    pd.testing.assert_frame_equal(pd.read_csv(root / "per_seed.csv").drop(columns="train_seconds"),
                                  per_seed.drop(columns="train_seconds"))


def test_a_local_job_gives_the_sequential_comparison_and_a_rerun_submits_only_the_unfinished(
        sequential, tmp_path, sar_data_dir, capsys):
    """Seed 0 finished (the sequential run's folder, copied), seed 1 trained as a job in a process of its own: the
    sequential tables, bit for bit. (Two jobs at a time on the local executor: tests/test_executors.py.)"""
    shutil.copytree(sequential[0] / "seed0", tmp_path / "jobs" / "seed0")     # copy2: its table stays newer
    jobs = ARGS + ["--name", str(tmp_path / "jobs"), "--executor", "local", "--jobs", "2"]
    assert compare.main(jobs) == 0
    out = capsys.readouterr().out
    assert "== 1 job(s) on the local executor, 1 at a time" in out and "job jobs/seed1 finished" in out
    one, two = tables(sequential[0]), tables(tmp_path / "jobs")
    for name in ("per_seed", "comparison"):
        pd.testing.assert_frame_equal(two[name], one[name], check_exact=True)
    assert two["md"] == one["md"] and two["tta_gains"] == one["tta_gains"]
    # finished: nothing submitted again; one table gone: only that seed's job
    assert compare.main(jobs) == 0
    assert "job(s) on the local executor" not in capsys.readouterr().out
    checkpoints = {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").glob("seed*/*/checkpoint.pt")}
    (tmp_path / "jobs" / "seed1" / "methods.pkl").unlink()
    assert compare.main(jobs) == 0
    out = capsys.readouterr().out
    assert "== 1 job(s) on the local executor" in out and "job jobs/seed1 finished" in out
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints        # resumed: nothing retrained
    pd.testing.assert_frame_equal(tables(tmp_path / "jobs")["comparison"], one["comparison"], check_exact=True)
