"""benchmarks/gpu_check: without CUDA it stops at once with one clear line; its projection arithmetic."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


def test_without_cuda_it_fails_with_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(tmp_path / "out")],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == gpu_check.NO_CUDA and result.stdout == ""
    assert not (tmp_path / "out").exists()         # nothing generated or trained


def test_paper_schedule_counts_the_mavoc_training_images():
    images = gpu_check.paper_schedule()
    # stage 1: 20 x 293,772; stage 2: 100 x 59,563 (class 0 removed); stage 3a: 20 x 50,000; 3b: 10 x 50,000
    assert images == {"whole model": 20 * 293_772 + 100 * 59_563 + 20 * 50_000, "classifier only": 10 * 50_000}
