"""The benchmark in its quick mode: every section runs, through helpers.evidence.speed, and writes its report."""
from __future__ import annotations

import json

import pytest
import torch

from benchmarks import benchmark

pytestmark = pytest.mark.slow           # minutes: `make test-fast` leaves it out


def test_quick_benchmark(tmp_path, sar_data_dir):
    threads = torch.get_num_threads()
    try:
        R = benchmark.main(["--quick", "--out", str(tmp_path / "b"), "--sizes", "16", "--data-size", "200",
                            "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    md = (tmp_path / "b" / "benchmark.md").read_text()
    raw = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert raw["quick"] and raw["sizes"] == [16]
    for section in ("## 1. Model size", "## 2. Eval latency", "## 3. Training throughput", "## 4. Inference speed-ups"):
        assert section in md
    assert "Shake-Shake / ResNet-50 (as shipped) median latency" in md
    size = R["models"]["size"]
    assert size["Shake-Shake-26 2x32d"]["parameters"] < size["ResNet-50 as shipped (chip repeated to 3 ch)"]["parameters"]
    assert all(d["macs_per_image"]["16"] > 0 for d in size.values())
    for d in R["models"]["speed"]["16"].values():
        assert d["latency"]["median_ms"] > 0 and d["throughput"]["images_per_s"] > 0
    checks = R["speedups"]["16"]["variants"]
    assert all(v["check"]["argmax_agreement"] == 1.0 for v in checks.values())   # same predictions
