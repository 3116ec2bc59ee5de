"""benchmarks/gpu_check.sh --gpus N (benchmarks/gpu_scaling.py): without N CUDA GPUs it stops at once with one
line; its arithmetic (efficiency, projected paper time) and the commands it runs. The measurement itself needs
N GPUs and is skipped without them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check, gpu_scaling

ROOT = Path(__file__).resolve().parents[1]


def test_without_the_gpus_it_fails_with_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--gpus", "2", "--out", str(tmp_path / "o")],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == gpu_scaling.need_gpus(2)
    assert result.stderr.count("\n") == 1 and "needs 2 CUDA GPUs" in result.stderr
    assert not (tmp_path / "o").exists()


def test_efficiency_and_the_projected_paper_time():
    assert gpu_scaling.efficiency(300.0, 100.0, 4) == pytest.approx(0.75)
    images = gpu_check.paper_schedule()
    r = {"whole model": 1000.0, "classifier only": 4000.0}
    assert gpu_scaling.projected_hours(r) == pytest.approx((images["whole model"] / 1000 + images["classifier only"] / 4000) / 3600)


def test_one_gpu_in_one_process_n_gpus_under_torchrun(tmp_path):
    one = gpu_scaling.command(tmp_path / "a", 1, 4000, None)
    four = gpu_scaling.command(tmp_path / "b", 4, 4000, None)
    assert "torch.distributed.run" not in one and four[1:6] == ["-m", "torch.distributed.run", "--standalone",
                                                                "--nproc-per-node", "4"]
    assert one[one.index("helpers.train") - 1] == "-m" and "--method" in one and "batch_size" not in one
    weak = gpu_scaling.command(tmp_path / "c", 4, 4000, 64)
    assert weak[weak.index("batch_size") + 1] == "256" and weak[weak.index("lr_reference_batch") + 1] == "128"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason=f"needs 2 CUDA GPUs; this machine has {torch.cuda.device_count()}")
def test_the_two_gpu_measurement(tmp_path):
    assert gpu_scaling.main(["--gpus", "2", "--chips", "1000", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "gpu_scaling.json").is_file()
