"""The comparison's jobs on submitit's executors (helpers/evidence/executors.py): a failed job is named in one
line with its log; SLURM without a cluster is one line, and a real submission where there is one. That
`--executor local --jobs 2` gives the sequential comparison's tables is tested in tests/test_compare.py,
beside the sequential comparison it is checked against."""
from __future__ import annotations

import operator
import re
import shutil

import pytest

from helpers.evidence import compare, executors

from conftest import assert_one_line

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
