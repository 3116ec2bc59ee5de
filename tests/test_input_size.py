"""benchmarks.input_size on a smoke-size set: one table row per method and size, each from its own run."""
from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import input_size
from helpers.evidence import experiments

from conftest import TINY

FAST = {k: v for k, v in {**TINY, "batch_size": 50, "classifier_lr_grid": ""}.items() if k != "image_size"}

pytestmark = pytest.mark.slow           # minutes: `make test-fast` leaves it out


def test_every_method_at_every_size(tmp_path, sar_data_dir):
    table = input_size.run("smoke", "digits-lt", [8, 12], [0], root=tmp_path, overrides=FAST)
    methods = experiments.method_names(("method",))
    assert sorted(table["image_size"].unique()) == [8, 12]
    assert table.groupby("image_size")["method"].apply(list).map(lambda m: m == list(methods)).all()
    assert table["balanced_top1_mean"].between(0, 1).all() and (table["seconds_per_step"] > 0).all()
    for size in (8, 12):        # each size trained its own models at its own input size
        config = (tmp_path / "input-size-smoke-digits-lt" / f"{size}px" / "seed0" / "config.json").read_text()
        assert f'"image_size": {size}' in config
    written = pd.read_csv(tmp_path / "input-size-smoke-digits-lt" / "input_size.csv")
    assert len(written) == 2 * len(methods)
    md = (tmp_path / "input-size-smoke-digits-lt" / "input_size.md").read_text()
    assert "| 8 px | 12 px |" in md and "| three-stage |" in md
