"""Notebook 04's trainings side by side (helpers/evidence/parallel_training.py): two worker processes give every
stage folder bit for bit the weights that one process gives, a finished folder is not trained again, a
folder that fails is named in one line, and `train_processes` 0 picks 2 processes only on a CPU with 2+ threads."""
from __future__ import annotations

import pytest
import torch

from conftest import TINY, assert_one_line
from helpers.datasets.data import load_data
from helpers.evidence import experiments, parallel_training, train
from helpers.method import runs
from helpers.settings import config

pytestmark = pytest.mark.usefixtures("sar_data_dir")
FAST = {**TINY, "batch_size": 25, "classifier_lr_grid": "0.01 0.05"}


def weights(run_dir, folder):
    return torch.load(run_dir / folder / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]


def test_the_folders_of_notebook_04_each_after_its_source():
    folders = parallel_training.folders_needed(ablations=False, extras=False)
    assert sorted(folders) == sorted(["stage1", "stage2", "stage3a", "stage3b", "plain", "crt", "lws", "ldam_drw"])
    sources = train.sources()
    assert all(folders.index(sources[f]) < folders.index(f) for f in folders if f in sources)
    everything = parallel_training.folders_needed(ablations=True, extras=True)
    assert {"balanced_softmax", "crt_frozen_bn", "stage3b_from1", "stage3a_plus3b"} <= set(everything)


@pytest.mark.slow              # worker processes: half a minute
def test_two_processes_train_every_folder_as_one_process_does(tmp_path):
    """Plain CE and LDAM-DRW side by side, then cRT and LWS (each waits for plain CE), against one process."""
    one, settings = runs.open_run(tmp_path / "one", "smoke", **FAST)
    bundle = load_data(settings)
    experiments.train_plain(bundle, settings, one, progress=False)
    experiments.train_decoupled(bundle, settings, one, progress=False, variants=False)
    experiments.train_ldam_drw(bundle, settings, one, progress=False)
    two, settings = runs.open_run(tmp_path / "two", "smoke", **FAST)
    folders = ["plain", "crt", "lws", "ldam_drw"]
    assert sorted(parallel_training.train_side_by_side(settings, two, folders, 2, progress=False)) == sorted(folders)
    assert parallel_training.train_side_by_side(settings, two, folders, 2, progress=False) == []   # all finished
    assert all(parallel_training.log_path(two, f).is_file() for f in folders)    # the workers' output, kept
    for folder in folders:
        a, b = weights(one, folder), weights(two, folder)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), folder
    assert (two / "crt" / "tuning.json").read_text() == (one / "crt" / "tuning.json").read_text()


@pytest.mark.slow
def test_a_failing_folder_is_named_in_one_line(tmp_path):
    run, settings = runs.open_run(tmp_path / "run", "smoke", **FAST)      # cRT before plain CE has trained
    with pytest.raises(parallel_training.ParallelTrainingError) as e:
        parallel_training.train_side_by_side(settings, run, ["crt"], 1, progress=False)
    message = assert_one_line(e)
    assert message.startswith("training crt in a worker process failed: CheckpointError") and "resumes" in message
    log = parallel_training.log_path(run, "crt")
    assert f"(log: {log})" in message and "Traceback" in log.read_text() and "CheckpointError" in log.read_text()


def test_auto_uses_two_processes_on_a_cpu_with_two_threads_or_more(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert parallel_training.processes_for(config.resolve("smoke", device="cpu", train_processes=0)) == 2
    assert parallel_training.processes_for(config.resolve("smoke", device="cpu", train_processes=3)) == 3
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)         # OMP_NUM_THREADS=1, or a one-core job
    assert parallel_training.processes_for(config.resolve("smoke", device="cpu", train_processes=0)) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(parallel_training, "pick_device", lambda name: torch.device("cuda"))
    assert parallel_training.processes_for(config.resolve("smoke", train_processes=0)) == 1
