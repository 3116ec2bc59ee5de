"""The comparison's jobs on submitit's executors (helpers/evidence/executors.py): a failed job is named in one
line with its log, `--executor local --jobs 2` gives the sequential comparison's tables, a re-run submits only
what is unfinished; SLURM without a cluster is one line, and a real submission where there is one."""
from __future__ import annotations

import operator
import re
import shutil

import pandas as pd
import pytest

from helpers.evidence import compare, executors

from conftest import TINY, assert_one_line

JOBS = [executors.Job("adds", operator.add, (1, 2)), executors.Job("divides-by-zero", operator.truediv, (1, 0)),
        executors.Job("multiplies", operator.mul, (3, 4))]


@pytest.mark.parametrize("kind", ["local", "debug"])
def test_a_failed_job_is_named_in_one_line_with_its_log(tmp_path, kind, capsys):
    with pytest.raises(executors.JobsFailed) as e:
        executors.run_jobs(JOBS, kind, 2, tmp_path / "jobs", poll_s=0.2)
    message = assert_one_line(e)
    assert message.startswith("1 of 3 job(s) failed: divides-by-zero (ZeroDivisionError: division by zero; log ")
    assert "run the same command again" in message
    out = capsys.readouterr().out
    assert "job adds finished" in out and "job multiplies finished" in out and "job divides-by-zero failed" in out
    if kind == "local":                      # a process of its own, whose log holds the traceback
        log = re.search(r"; log (\S+\.err)\)", message).group(1)
        assert "ZeroDivisionError" in open(log).read()
    assert executors.run_jobs(JOBS[::2], kind, 2, tmp_path / "jobs", poll_s=0.2) == {"adds": 3, "multiplies": 12}


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="SLURM is installed here (sbatch on PATH)")
def test_slurm_without_slurm_is_one_line(tmp_path, sar_data_dir, capsys):
    with pytest.raises(executors.JobsFailed) as e:
        executors.run_jobs(JOBS[:1], "slurm", None, tmp_path / "jobs")
    assert "needs SLURM" in assert_one_line(e)
    code = compare.main(["--profile", "smoke", "--data", "digits-lt", "--seeds", "0", "--name", str(tmp_path / "c"),
                         "--executor", "slurm", "--partition", "gpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --executor slurm needs SLURM") and err.count("\n") == 1


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="needs a SLURM cluster (no sbatch on PATH)")
def test_a_job_array_on_slurm(tmp_path):
    """Where SLURM is: the same jobs as a job array on the default partition (never run where this was written)."""
    with pytest.raises(executors.JobsFailed) as e:
        executors.run_jobs(JOBS, "slurm", None, tmp_path / "jobs", {"time": 5}, poll_s=5)
    assert assert_one_line(e).startswith("1 of 3 job(s) failed: divides-by-zero (ZeroDivisionError")


# as tests/test_compare.py: fewer, larger steps; every classifier-only stage once (the lr choice is tested there)
FAST = {**TINY, "batch_size": 50, "classifier_lr_grid": ""}


def tables(root) -> dict:
    """The comparison's tables, without what measures time (train seconds, the command's wall time)."""
    timing = lambda df: df.drop(columns=[c for c in df.columns if "seconds" in c])
    md = (root / "comparison.md").read_text()
    md = re.sub(r"Wall time of this command: \d+ s", "", md)
    md = "\n".join("|".join(cell for k, cell in enumerate(line.split("|")) if k != 10) if line.startswith("| ") else line
                   for line in md.splitlines())               # column 10 is the train time (s)
    return {"per_seed": timing(pd.read_csv(root / "per_seed.csv")), "comparison": timing(pd.read_csv(root / "comparison.csv")),
            "tta_gains": (root / "tta_gains.csv").read_text(), "md": md}


@pytest.mark.slow
def test_two_local_jobs_give_the_sequential_comparison_and_a_rerun_submits_only_the_unfinished(
        tmp_path, sar_data_dir, capsys):
    args = ["--profile", "smoke", "--data", "digits-lt", "--seeds", "0", "1", "--no-ablations"]
    for k, v in FAST.items():
        args += ["-p", k, str(v)]
    assert compare.main(args + ["--name", str(tmp_path / "sequential")]) == 0
    assert compare.main(args + ["--name", str(tmp_path / "jobs"), "--executor", "local", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "== 2 job(s) on the local executor, 2 at a time" in out
    one, two = tables(tmp_path / "sequential"), tables(tmp_path / "jobs")
    for name in ("per_seed", "comparison"):
        pd.testing.assert_frame_equal(two[name], one[name], check_exact=True)
    assert two["md"] == one["md"] and two["tta_gains"] == one["tta_gains"]
    # finished: nothing submitted again; one table gone: only that seed's job
    assert compare.main(args + ["--name", str(tmp_path / "jobs"), "--executor", "local", "--jobs", "2"]) == 0
    assert "job(s) on the local executor" not in capsys.readouterr().out
    checkpoints = {p: p.stat().st_mtime_ns for p in (tmp_path / "jobs").glob("seed*/*/checkpoint.pt")}
    (tmp_path / "jobs" / "seed1" / "methods.pkl").unlink()
    assert compare.main(args + ["--name", str(tmp_path / "jobs"), "--executor", "local", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "== 1 job(s) on the local executor" in out and "job jobs/seed1 finished" in out
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints        # resumed: nothing retrained
    pd.testing.assert_frame_equal(tables(tmp_path / "jobs")["comparison"], one["comparison"], check_exact=True)
