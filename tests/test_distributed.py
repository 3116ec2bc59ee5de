"""Data-parallel training (helpers/method/distributed.py) on the CPU with gloo: torchrun's 2 processes train a
stage as 1 process does, an interrupted 2-process stage resumes to the same weights, and only rank 0 writes.

torchrun is started as a subprocess (`python -m torch.distributed.run`, a free --master-port, one thread per
process) around tests/dist_worker.py, which runs `python -m helpers.train` and records every write of its
process under the run folder.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers.method import distributed
from helpers.method.loader import EpochSampler
from helpers.method.training import epoch_seed
from helpers.settings.config import SettingsError

from conftest import TINY, assert_one_line

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dist_worker.py"
# The tiny set (conftest.TINY) with a global batch of 16: stage 1's 128 chips are 8 steps an epoch, so
# 10 steps are two epochs (8 + 2); every stage after it a step or two.
SETTINGS = {**TINY, "batch_size": 16, "stage1_steps": 10, "stage2_steps": 2, "stage3a_steps": 2,
            "stage3b_steps": 2, "stage3_per_class": 8, "device": "cpu",
            "classifier_lr_grid": ""}   # 3b once at stage3b_lr: the lr choice's inference is not part of the float64 set-up
# float64 training: the 2 processes sum in another order than 1 (the gradient all-reduce, SyncBatchNorm's
# sums over the ranks), so equality is to rounding, not bit for bit. Measured by this test: at most 5.2e-11
# over every weight and BatchNorm statistic (of magnitude up to ~7) of the four stages (3.7e-9 in a run of
# stage 1 alone, made while writing it on a data cache generated earlier). float64 rounds at 1.1e-16;
# the stem's weight gradient loses ~5 of its 7 float32 digits to cancellation (the chips' large mean), and
# ten steps at learning rate 0.1 grow a difference ~1e3-fold (float32: 5e-4 after 1 step, 1.6 after 10,
# the same as 1 process with 2 threads instead of 1), so ~1e-9 is what rounding alone gives. 1e-6 leaves
# that a 250-fold margin, and is 7 orders below what a real difference makes: per-rank BatchNorm
# (sync_batchnorm false) is 10.7 away.
TOLERANCE = 1e-6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(run: Path, processes: int, logs: Path, sar_data_dir, settings: dict, what=("--stage", "stage1"),
          **env) -> subprocess.CompletedProcess:
    """`python -m helpers.train` on `processes` processes (torchrun when > 1) through tests/dist_worker.py."""
    logs.mkdir(parents=True, exist_ok=True)
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                                          "--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    args = ["--run-dir", str(run), "--profile", "smoke", *what]
    for k, v in settings.items():
        args += ["-p", k, str(v)]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "SAR_DATA_DIR": str(sar_data_dir), "WORKER_RUN_DIR": str(run),
               "WORKER_LOG_DIR": str(logs), "TQDM_DISABLE": "1", **env}
    return subprocess.run([sys.executable, *launcher, str(WORKER), *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=600)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def writes(logs: Path) -> dict:
    """rank -> everything that rank's processes wrote under the run folder."""
    out = {}
    for path in logs.glob("writes-rank*.json"):
        rank = int(path.name.split("-")[1].removeprefix("rank"))
        out.setdefault(rank, []).extend(json.loads(path.read_text()))
    return out


def state(run: Path, stage: str = "stage1") -> dict:
    return torch.load(run / stage / "checkpoint.pt", map_location="cpu", weights_only=False)


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


# --- the pieces, in this process ---

def test_the_stride_split_gives_each_global_batch_the_items_of_one_process():
    for weights in (None, torch.rand(37).tolist()):         # a shuffle, and class-balanced draws
        one = EpochSampler(37, weights, batch_size=8)
        ranks = [EpochSampler(37, weights, rank=r, world_size=2, batch_size=8) for r in (0, 1)]
        for s in [one, *ranks]:
            s.set_epoch(12345)
        whole, parts = list(one), [list(s) for s in ranks]
        assert [len(p) for p in parts] == [len(s) for s in ranks] == [16, 16]       # 4 full global batches of 8
        for k in range(4):                                   # global batch k = rank 0's batch k + rank 1's
            assert sorted(parts[0][4 * k:4 * k + 4] + parts[1][4 * k:4 * k + 4]) == sorted(whole[8 * k:8 * k + 8])


def test_rank_seeds_repeat_and_differ_between_ranks_epochs_and_stages():
    seeds = {distributed.rank_seed(0, st, e, r) for st in ("stage1", "stage2") for e in range(3) for r in range(4)}
    assert len(seeds) == 24
    assert distributed.rank_seed(0, "stage1", 2, 1) == distributed.rank_seed(0, "stage1", 2, 1)
    assert distributed.rank_seed(7, "stage2", 3, 0) == epoch_seed(7, "stage2", 3)      # rank 0: one process's stream


def test_a_global_batch_that_does_not_split_is_a_one_line_error():
    with pytest.raises(SettingsError) as e:
        distributed.Group(0, 3, 0, "gloo").shard(16)
    assert "multiple of 3" in assert_one_line(e)


def test_cpu_sync_batchnorm_of_one_rank_is_batchnorm(tmp_path):
    """Its arithmetic: outputs, gradients and running statistics of BatchNorm2d (float64, one gloo rank)."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = nn.BatchNorm2d(5).double()
        nn.init.uniform_(plain.weight), nn.init.uniform_(plain.bias)
        synced = nn.BatchNorm2d(5).double()
        synced.load_state_dict(plain.state_dict())
        synced.__class__ = distributed.CPUSyncBatchNorm
        x = (torch.randn(6, 5, 4, 4, dtype=torch.float64) * 3 + 2).to(memory_format=torch.channels_last)
        for _ in range(2):
            xs = [x.clone().requires_grad_(True) for _ in (0, 1)]
            outs = [m(xi) for m, xi in zip((plain, synced), xs)]
            for o in outs:
                (o * torch.arange(o.numel(), dtype=o.dtype).view_as(o)).sum().backward()
            torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-12)
            torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=0, atol=1e-9)
        for a, b in zip(plain.state_dict().values(), synced.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
        torch.testing.assert_close(synced.weight.grad, plain.weight.grad, rtol=0, atol=1e-9)
        distributed.Group.unwrap(synced)
        assert type(synced) is nn.BatchNorm2d and "process_group" not in vars(synced)
    finally:
        torch.distributed.destroy_process_group()


# --- torchrun, 2 processes (gloo) ---

@pytest.mark.slow
def test_two_processes_train_a_stage_as_one_process_does(tmp_path, sar_data_dir):
    """Same global batch, SyncBatchNorm on: the weights and BatchNorm statistics of 1 process, to rounding
    (TOLERANCE). Shake-Shake's random mix is replaced by its mean in both (WORKER_PLAIN_SHAKE): with it, 2
    ranks draw from 2 generators and 1 process from 1, other numbers by design (tested below)."""
    exact, path = {**SETTINGS, "precision": "fp32"}, ("--method", "three-stage")
    env = {"WORKER_PLAIN_SHAKE": "1", "WORKER_FLOAT64": "1"}
    ok(train(tmp_path / "one", 1, tmp_path / "logs1", sar_data_dir, exact, what=path, **env))
    two = ok(train(tmp_path / "two", 2, tmp_path / "logs2", sar_data_dir, exact, what=path, **env))
    assert "on 2 processes" in two.stdout
    ok(train(tmp_path / "per_rank", 2, tmp_path / "logs3", sar_data_dir, {**exact, "sync_batchnorm": False}, **env))
    for stage in ("stage1", "stage2", "stage3a", "stage3b"):    # 3b: the backbone frozen, only the head's gradients
        one, both = state(tmp_path / "one", stage), state(tmp_path / "two", stage)
        assert both["model"]["fc.weight"].dtype == torch.float64 and both["world_size"] == 2
        assert [r["images"] for r in both["metrics"]] == [r["images"] for r in one["metrics"]]   # global images
        difference = max_difference(one["model"], both["model"])
        print(f"{stage}: max |2 processes - 1 process| = {difference:.3g}")
        assert difference < TOLERANCE, stage
    per_rank = max_difference(state(tmp_path / "one")["model"], state(tmp_path / "per_rank")["model"])
    print(f"stage1 with per-rank BatchNorm: {per_rank:.3g}")
    assert per_rank > 1000 * TOLERANCE             # the comparison sees a real difference
    w = writes(tmp_path / "logs2")
    assert w[0] and w.get(1) == [], w.get(1)                 # only rank 0 wrote into the run folder


@pytest.mark.slow
def test_an_interrupted_two_process_run_resumes_to_the_uninterrupted_weights(tmp_path, sar_data_dir):
    """Stage 1 on 2 processes, Shake-Shake's per-rank draws included; stopped after its first epoch and run
    again, it ends bit for bit where the uninterrupted run does (weights, BatchNorm statistics, every epoch's
    loss). Stage 1 alone: every later stage starts from its predecessor's weights and seeds its draws from
    (seed, stage, epoch, rank), not from what ran before it (tests/test_model_seeding.py), so a stage that
    resumes exactly leaves the stages after it as they would have been."""
    path = ("--stage", "stage1")
    ok(train(tmp_path / "whole", 2, tmp_path / "logs_whole", sar_data_dir, SETTINGS, what=path))
    stopped = train(tmp_path / "resumed", 2, tmp_path / "logs_stop", sar_data_dir, SETTINGS, what=path,
                    WORKER_STOP_AFTER="1")
    assert stopped.returncode != 0 and state(tmp_path / "resumed")["epoch"] == 1
    assert not state(tmp_path / "resumed")["complete"]
    again = ok(train(tmp_path / "resumed", 2, tmp_path / "logs_again", sar_data_dir, SETTINGS, what=path))
    assert "resuming from epoch 2 of 2" in again.stdout
    a, b = state(tmp_path / "whole"), state(tmp_path / "resumed")
    assert b["complete"] and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["train_loss"] for r in a["metrics"]] == [r["train_loss"] for r in b["metrics"]]
    for logs in ("logs_whole", "logs_stop", "logs_again"):
        w = writes(tmp_path / logs)
        assert w[0] and w.get(1) == [], (logs, w.get(1))
    # the notebooks open the folder as one process's: the finished model loads as it always does
    from helpers.method.checkpoints import load_stage_model
    assert load_stage_model(tmp_path / "resumed", "stage1", num_classes=10).num_classes == 10


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL); this machine has "
                    f"{torch.cuda.device_count()}")
def test_two_gpus_train_a_stage_as_one_gpu_does(tmp_path, sar_data_dir):
    """As the CPU test, on 2 GPUs with NCCL and torch's SyncBatchNorm (float64; not run where this was written)."""
    exact = {**SETTINGS, "precision": "fp32", "device": "cuda"}
    env = {"WORKER_PLAIN_SHAKE": "1", "WORKER_FLOAT64": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    ok(train(tmp_path / "one", 1, tmp_path / "logs1", sar_data_dir, exact, **env))
    ok(train(tmp_path / "two", 2, tmp_path / "logs2", sar_data_dir, exact, **env))
    assert max_difference(state(tmp_path / "one")["model"], state(tmp_path / "two")["model"]) < TOLERANCE
    w = writes(tmp_path / "logs2")
    assert w[0] and w.get(1) == []


def test_the_train_command_names_a_wrong_stage_or_method_in_one_line(tmp_path, capsys):
    from helpers.evidence import train
    for args in (["--stage", "stage9"], ["--method", "four-stage"]):
        assert train.main(["--run-dir", str(tmp_path / "r"), "--profile", "smoke", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: unknown ") and err.count("\n") == 1 and "valid:" in err
    assert not (tmp_path / "r").exists()
    assert train.sources()["stage3b_from2plus"] == "stage2_plus3a" and train.every_folder()[0] == "plain"
