"""Stages read the previous stage's checkpoint: a missing, unfinished, foreign or mismatched one is a clear error."""
import pytest
import torch

from conftest import assert_one_line
from helpers.method import stages
from helpers.method.checkpoints import PRODUCER, CheckpointError, checkpoint_path, load_checkpoint, load_stage_model, save_atomic
from helpers.method.model import ShakeShakeNet, shake_shake_26_2x32d


def fake_checkpoint(run_dir, stage, model, complete=True, epoch=1, epochs=1):
    """A checkpoint in train_stage's format, without training (fast)."""
    save_atomic({"stage": stage, "config": {}, "arch": dict(model.arch), "model": model.state_dict(), "optimizer": {},
                 "scheduler": {}, "epoch": epoch, "epochs": epochs, "complete": complete, "metrics": [], "rng": {}},
                checkpoint_path(run_dir, stage))


@pytest.mark.parametrize("step, missing, notebook", [
    (stages.stage2, "stage1", "01_stage1_full_data"),
    (stages.stage3a, "stage2", "02_stage2_without_class0"),
    (stages.stage3b, "stage3a", "03_stage3_balanced_finetune"),
])
def test_stage_without_its_predecessor_names_the_notebook(tmp_path, tiny_settings, step, missing, notebook):
    # bundle=None: the error comes before any data is touched or any training starts.
    with pytest.raises(CheckpointError) as e:
        step(None, tiny_settings(), tmp_path, progress=False)
    assert assert_one_line(e) == (f"no {missing} checkpoint in {tmp_path}: run notebooks/{notebook}.ipynb first "
                                  f"(same run folder)")
    assert list(tmp_path.iterdir()) == []


def test_producer_names_cover_the_stages():
    assert set(PRODUCER) == {"stage1", "stage2", "stage3a", "stage3b"}


def test_unfinished_predecessor(tmp_path, tiny_settings):
    fake_checkpoint(tmp_path, "stage1", shake_shake_26_2x32d(), complete=False, epoch=1, epochs=3)
    with pytest.raises(CheckpointError, match=r"the stage1 checkpoint in .* is unfinished \(epoch 1 of 3\): "
                                              r"re-run notebooks/01_stage1_full_data.ipynb to finish it") as e:
        stages.stage2(None, tiny_settings(), tmp_path, progress=False)
    assert_one_line(e)


@pytest.mark.parametrize("model", [lambda: ShakeShakeNet(num_classes=9), lambda: ShakeShakeNet(in_channels=3),
                                   lambda: ShakeShakeNet(normed_classifier=True)])
def test_checkpoint_of_another_model_or_class_count(tmp_path, tiny_settings, model):
    fake_checkpoint(tmp_path, "stage1", model())
    with pytest.raises(CheckpointError, match=r"checkpoint .*stage1/checkpoint.pt holds a model .*, expected .*; "
                                              r"it comes from another model or class count, use a new run folder") as e:
        stages.stage2(None, tiny_settings(), tmp_path, progress=False)
    assert_one_line(e)


def test_stage2_checkpoint_must_be_nine_way(tmp_path, tiny_settings):
    fake_checkpoint(tmp_path, "stage2", shake_shake_26_2x32d())        # 10-way where stage 2 is 9-way
    with pytest.raises(CheckpointError, match=r"another model or class count"):
        stages.stage3a(None, tiny_settings(), tmp_path, progress=False)


def test_unreadable_checkpoint(tmp_path):
    path = checkpoint_path(tmp_path, "stage1")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*checkpoint.pt \(.*\); delete it and re-run its stage") as e:
        load_stage_model(tmp_path, "stage1", num_classes=10)
    assert_one_line(e)


def test_foreign_torch_file(tmp_path):
    path = checkpoint_path(tmp_path, "stage1")
    path.parent.mkdir(parents=True)
    torch.save(shake_shake_26_2x32d().state_dict(), path)               # weights only, not a course checkpoint
    with pytest.raises(CheckpointError, match=r"is not a checkpoint written by this course's train_stage \(missing stage, "
                                              r"config, arch, .*\); delete it and re-run its stage") as e:
        load_checkpoint(path)
    assert_one_line(e)


def test_load_stage_model_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ShakeShakeNet(num_classes=9)
    fake_checkpoint(tmp_path, "stage2", model)
    loaded = load_stage_model(tmp_path, "stage2", num_classes=9)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_stage3a_grows_the_stage2_head(tmp_path):
    torch.manual_seed(0)
    s2 = ShakeShakeNet(num_classes=9)
    fake_checkpoint(tmp_path, "stage2", s2)
    grown = stages.start_from(tmp_path, "stage2")
    assert grown.num_classes == 10
    torch.testing.assert_close(grown.fc.weight.detach()[1:], s2.fc.weight.detach())
    torch.testing.assert_close(grown.fc.bias.detach()[1:], s2.fc.bias.detach())
