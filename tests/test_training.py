"""train_stage: outputs, frozen backbone, device choice, resume after interruption, atomic checkpoints, NaN stop."""
import math

import pandas as pd
import pytest
import torch

from conftest import assert_one_line, chips
from helpers.method import checkpoints, training
from helpers.method.checkpoints import CheckpointError, checkpoint_path, load_checkpoint
from helpers.settings.config import SettingsError
from helpers.method.model import shake_shake_26_2x32d
from helpers.method.devices import pick_device
from helpers.method.training import TrainingDiverged, train_stage

pytestmark = pytest.mark.usefixtures("sar_data_dir")
COLUMNS = ["epoch", "steps", "lr", "train_loss", "train_acc", "images", "trainable", "seconds", "val_balanced_top1"]


@pytest.fixture(scope="module")
def train_set():
    return chips(2)                      # 20 chips: 2 full batches of 8 a epoch (drop_last)


@pytest.fixture(scope="module")
def val_set():
    return chips(1, seed=1, transform="eval")


def fresh_model(seed=0, **kw):
    torch.manual_seed(seed)
    return shake_shake_26_2x32d(**kw)


def run(model, data, run_dir, settings, **kw):
    kw = {"stage": "stage1", "steps": 2, "lr": 0.05, "progress": False, **kw}
    return train_stage(model, data, run_dir=run_dir, settings=settings, **kw)


def test_train_stage_outputs(tmp_path, tiny_settings, train_set, val_set):
    s = tiny_settings()
    model = fresh_model()
    history = run(model, train_set, tmp_path, s, steps=4, val_set=val_set)
    assert isinstance(history, pd.DataFrame) and list(history.columns) == COLUMNS
    assert history["epoch"].tolist() == [1, 2] and history["images"].tolist() == [16, 16]
    assert history["steps"].tolist() == [2, 2] and set(history["trainable"]) == {"all"}
    assert history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-12)            # cosine schedule reaches 0
    assert ((history["train_acc"] >= 0) & (history["train_acc"] <= 1)).all()
    assert history["train_loss"].map(math.isfinite).all()
    saved = pd.read_csv(tmp_path / "stage1" / "metrics.csv")
    pd.testing.assert_frame_equal(saved, history, check_exact=False)
    ckpt = load_checkpoint(checkpoint_path(tmp_path, "stage1"))
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "config", "arch", "metrics"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 4 and ckpt["complete"] and ckpt["config"]["settings"] == s.to_dict()
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"])
    assert ckpt["arch"]["num_classes"] == 10
    assert not model.training                                                 # returned in eval mode
    assert next(model.parameters()).device.type == pick_device("auto").type
    # Nothing else in the stage folder (no stray temporary files).
    assert sorted(p.name for p in (tmp_path / "stage1").iterdir()) == ["checkpoint.pt", "metrics.csv"]


def test_complete_stage_is_loaded_not_retrained(tmp_path, tiny_settings, train_set):
    s = tiny_settings()
    first = run(fresh_model(), train_set, tmp_path, s)
    calls = []
    model = fresh_model(seed=5)
    again = run(model, train_set, tmp_path, s, after_epoch=calls.append)
    assert calls == []
    pd.testing.assert_frame_equal(first, again)
    saved = load_checkpoint(checkpoint_path(tmp_path, "stage1"))["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_classifier_only_keeps_backbone_and_batchnorm_statistics(tmp_path, tiny_settings, train_set):
    model = fresh_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run(model, train_set, tmp_path, tiny_settings(), trainable="classifier", lr=0.5)
    after = model.state_dict()
    backbone = [k for k in before if not k.startswith("fc.")]
    assert any("running_mean" in k for k in backbone)
    changed = [k for k in backbone if not torch.equal(before[k], after[k])]
    assert changed == [], f"frozen backbone changed: {changed[:5]}"
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_training_all_changes_batchnorm_statistics(tmp_path, tiny_settings, train_set):
    model = fresh_model()
    before = model.state_dict()["stem.1.running_mean"].clone()
    run(model, train_set, tmp_path, tiny_settings())
    assert not torch.equal(before, model.state_dict()["stem.1.running_mean"])


def test_pick_device(monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(SettingsError, match=r"device 'cuda' is not available on this machine; use device='auto'") as e:
        pick_device("cuda")
    assert_one_line(e)
    with pytest.raises(SettingsError, match=r"setting 'device' must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        pick_device("gpu")


def test_bad_stage_arguments(tmp_path, tiny_settings, train_set):
    with pytest.raises(SettingsError, match=r"stage1: steps and lr must be > 0, got steps=0, lr=0.05"):
        run(fresh_model(), train_set, tmp_path, tiny_settings(), steps=0)
    with pytest.raises(SettingsError, match=r"trainable must be 'all' or 'classifier', got 'head'"):
        run(fresh_model(), train_set, tmp_path, tiny_settings(), trainable="head")
    assert not (tmp_path / "stage1").exists()


def interrupt(epoch):
    """An after_epoch callback: Ctrl-C right after the first epoch's checkpoint."""
    if epoch == 0:
        raise KeyboardInterrupt


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_interrupted_stage_resumes_to_the_same_result(tmp_path, tiny_settings, train_set, val_set, precision):
    s = tiny_settings(device="cpu", precision=precision)       # pinned: determinism on the CPU, in each precision
    straight = fresh_model()
    expected = run(straight, train_set, tmp_path / "straight", s, steps=6, val_set=val_set)

    with pytest.raises(KeyboardInterrupt):
        run(fresh_model(), train_set, tmp_path / "resumed", s, steps=6, val_set=val_set, after_epoch=interrupt)
    ckpt = load_checkpoint(checkpoint_path(tmp_path / "resumed", "stage1"))
    assert ckpt["epoch"] == 1 and not ckpt["complete"]
    assert len(pd.read_csv(tmp_path / "resumed" / "stage1" / "metrics.csv")) == 1

    epochs_run = []
    resumed = fresh_model(seed=123)              # a different init: the checkpoint must win
    got = run(resumed, train_set, tmp_path / "resumed", s, steps=6, val_set=val_set, after_epoch=epochs_run.append)
    assert epochs_run == [1, 2]                  # resumed at epoch 2 (index 1)
    pd.testing.assert_frame_equal(got.drop(columns="seconds"), expected.drop(columns="seconds"), check_exact=True)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"


def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path, tiny_settings, train_set):
    with pytest.raises(KeyboardInterrupt):
        run(fresh_model(), train_set, tmp_path, tiny_settings(), steps=4, after_epoch=interrupt)
    with pytest.raises(CheckpointError, match=r"was made with other settings than this run's; use a new run folder") as e:
        run(fresh_model(), train_set, tmp_path, tiny_settings(stage1_lr=0.3), steps=4)
    assert_one_line(e)
    with pytest.raises(CheckpointError, match=r"was made with other settings"):
        run(fresh_model(), train_set, tmp_path, tiny_settings(), steps=4, lr=0.01)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path, tiny_settings, train_set):
    s = tiny_settings()
    with pytest.raises(KeyboardInterrupt):
        run(fresh_model(), train_set, tmp_path, s, steps=4, after_epoch=interrupt)
    with pytest.raises(CheckpointError, match=r"holds a model .*'num_classes': 10.*this stage builds .*'num_classes': 9") as e:
        run(fresh_model(num_classes=9), train_set, tmp_path, s, steps=4)
    assert_one_line(e)


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, tiny_settings, train_set, monkeypatch):
    s = tiny_settings()
    real_save = torch.save
    calls = []

    def crashing_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:                      # the epoch-2 checkpoint: half the bytes, then the machine dies
            f.write(b"PK\x03\x04 partial checkpoint bytes")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        run(fresh_model(), train_set, tmp_path, s, steps=4)
    monkeypatch.setattr(torch, "save", real_save)
    path = checkpoint_path(tmp_path, "stage1")
    ckpt = load_checkpoint(path)                  # the epoch-1 checkpoint is intact
    assert ckpt["epoch"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt", "metrics.csv"]   # no .tmp left
    history = run(fresh_model(), train_set, tmp_path, s, steps=4)                               # and it resumes
    assert history["epoch"].tolist() == [1, 2]


def test_save_atomic_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "x" / "checkpoint.pt"
    checkpoints.save_atomic({"value": 1}, path)

    def broken(obj, f, *a, **k):
        f.write(b"garbage")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_atomic({"value": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"value": 1}
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]


class NanAtEpoch:
    """Cross-entropy that turns NaN from a given epoch on (1-based)."""

    def __init__(self, bad_epoch):
        self.bad_epoch, self.epoch = bad_epoch, 0

    def set(self, step, total):                  # an on_step callback: 2 steps an epoch here
        self.epoch = step // 2 + 1

    def __call__(self, logits, y):
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss * float("nan") if self.epoch >= self.bad_epoch else loss


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_settings, train_set):
    loss = NanAtEpoch(2)
    with pytest.raises(TrainingDiverged) as e:
        run(fresh_model(), train_set, tmp_path, tiny_settings(), steps=6, loss_fn=loss, on_step=loss.set)
    msg = assert_one_line(e)
    assert msg.startswith("stage1: the loss became nan at epoch 2 (learning rate ")
    assert "lower the learning rate; the last good checkpoint (epoch 1) is kept at " in msg
    ckpt = load_checkpoint(checkpoint_path(tmp_path, "stage1"))
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert len(pd.read_csv(tmp_path / "stage1" / "metrics.csv")) == 1


def test_nan_in_the_first_epoch_says_no_checkpoint(tmp_path, tiny_settings, train_set):
    loss = NanAtEpoch(1)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1 \(learning rate 0.05\); lower the learning rate; no checkpoint was written"):
        run(fresh_model(), train_set, tmp_path, tiny_settings(), loss_fn=loss, on_step=loss.set)
    assert not checkpoint_path(tmp_path, "stage1").exists()


def test_huge_learning_rate_is_caught(tmp_path, tiny_settings, train_set):
    # The first update sends the weights to infinity, so the second step's loss is NaN, inside epoch 1:
    # the spoiled model is never saved.
    with pytest.raises(TrainingDiverged, match=r"stage1: the loss became nan at epoch 1 \(learning rate 1e\+30\); "
                                               r"lower the learning rate; no checkpoint was written"):
        run(fresh_model(), train_set, tmp_path, tiny_settings(device="cpu", precision="fp32"), steps=6, lr=1e30)
    assert not checkpoint_path(tmp_path, "stage1").exists()


def test_epoch_seed_depends_on_seed_stage_and_epoch():
    seeds = {training.epoch_seed(s, st, e) for s in (0, 1) for st in ("stage1", "stage2") for e in (0, 1)}
    assert len(seeds) == 8
    # CRC-32 of the text "seed/stage/epoch" (zlib.crc32(b"0/stage1/0") and b"1/stage1/0", worked out once)
    assert training.epoch_seed(0, "stage1", 0) == 434582146 and training.epoch_seed(1, "stage1", 0) == 4129642940


def test_a_checkpoint_survives_a_setting_added_later():
    from helpers.settings.config import Settings
    defaults = Settings().to_dict()
    cfg = {"stage": "stage1", "steps": 4, "settings": defaults}
    older = {"stage": "stage1", "steps": 4, "settings": {k: v for k, v in defaults.items() if k != "modality"}}
    assert training.same_stage(older, cfg, defaults)                                   # new setting at its default
    assert not training.same_stage(older, {**cfg, "settings": {**defaults, "modality": "eo"}}, defaults)
    assert training.same_stage(cfg, {**cfg, "settings": {**defaults, "num_workers": 4}}, defaults)
    assert not training.same_stage(cfg, {**cfg, "steps": 5}, defaults)
    assert not training.same_stage({**cfg, "settings": {**defaults, "gone": 1}}, cfg, defaults)   # a setting removed since
