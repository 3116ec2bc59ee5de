"""Prediction and submission, and the paper's 56-px input through every stage with two DataLoader workers:
two runs give identical weights and predictions, and a run interrupted after stage 1's first epoch and
resumed ends with the same weights as an uninterrupted one."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import assert_one_line, make_folder_data, write_image
from helpers.settings import config
from helpers.challenge import predict
from helpers.method import stages
from helpers.challenge import submission
from helpers.method.checkpoints import checkpoint_path
from helpers.datasets.data import load_data
from helpers.method.model import shake_shake_26_2x32d
from helpers.challenge.submission import SubmissionError
from helpers.method.training import seed_everything, train_stage

pytestmark = pytest.mark.usefixtures("sar_data_dir")
# device and precision pinned: the repeatability checked here is the CPU's, in fp32, on any machine
PAPER_56 = dict(image_size=56, num_workers=2, batch_size=8, stage1_steps=2, stage2_steps=1, stage3_per_class=1,
                stage3a_steps=1, stage3b_steps=1, tta_views=3, device="cpu", precision="fp32")


def run_course(run_dir: Path, settings, interrupt: bool = False):
    """All four stages into `run_dir` (optionally stopped after stage 1's first epoch, then resumed)."""
    bundle = load_data(settings)
    config.save_json({"profile": "smoke", "settings": settings.to_dict()}, run_dir / "config.json")
    seed_everything(settings.seed)                       # as open_run does
    if interrupt:
        def stop(epoch):
            raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            train_stage(shake_shake_26_2x32d(), bundle.train, stage="stage1", run_dir=run_dir, settings=settings,
                        steps=settings.stage1_steps, lr=settings.stage1_lr, val_set=bundle.val, after_epoch=stop,
                        progress=False)
        assert torch.load(checkpoint_path(run_dir, "stage1"), weights_only=False)["epoch"] == 1
    for stage in (stages.stage1, stages.stage2, stages.stage3a, stages.stage3b):
        stage(bundle, settings, run_dir, progress=False)
    return bundle


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory):
    """Three runs at 56 px with 2 workers: A, B (same settings) and C (interrupted and resumed)."""
    base = tmp_path_factory.mktemp("paper56")
    data = make_folder_data(base / "data", per_class=1, size=60)   # 10 chips in each of train, val, test
    settings = config.resolve("smoke", data=str(data), **PAPER_56)
    runs = {}
    for name, interrupt in (("A", False), ("B", False), ("C", True)):
        run = base / name
        run.mkdir()
        bundle = run_course(run, settings, interrupt)
        images = submission.demo_chips(run, settings, bundle)
        runs[name] = (run, submission.predict_folder(run, images, bundle=bundle))
    return runs


def weights(run, stage="stage3b"):
    return torch.load(checkpoint_path(run, stage), weights_only=False)["model"]


def test_paper_size_with_workers_is_repeatable(paper_runs):
    (a, pa), (b, pb) = paper_runs["A"], paper_runs["B"]
    for stage in ("stage1", "stage2", "stage3a", "stage3b"):
        wa, wb = weights(a, stage), weights(b, stage)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), f"{stage}: two runs with 2 workers differ"
    assert pa.results.equals(pb.results) and pa.probabilities.equals(pb.probabilities)


def test_resumed_run_equals_uninterrupted(paper_runs):
    (a, pa), (c, pc) = paper_runs["A"], paper_runs["C"]
    wa, wc = weights(a), weights(c)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    assert pa.probabilities.equals(pc.probabilities)


def test_submission_files(paper_runs):
    run, p = paper_runs["A"]
    results = pd.read_csv(run / "submission" / "results.csv")
    key = pd.read_csv(run / submission.DEMO_KEY)
    names = sorted(f.name for f in (run / submission.DEMO_FOLDER).iterdir())
    assert sorted(results["image_id"]) == sorted(key["image_id"]) == sorted(int(n[4:-4]) for n in names)
    assert all(n.startswith("SAR_") for n in names) and results["class_id"].between(0, 9).all()
    probs = pd.read_csv(run / "submission" / "probabilities.csv")
    assert list(probs.columns) == ["image_id", "file"] + [f"p{c}" for c in range(10)]
    p_columns = probs.filter(regex=r"^p\d$")
    assert (p_columns.sum(axis=1) - 1).abs().max() < 1e-4
    assert (p_columns.to_numpy().argmax(1) == results["class_id"].to_numpy()).all()
    with zipfile.ZipFile(run / "submission" / "submission.zip") as z:
        assert z.namelist() == ["results.csv"] and z.read("results.csv") == (run / "submission" / "results.csv").read_bytes()
    assert abs(p.shares.sum() - 1) < 1e-9 and 0 <= p.distance_from_uniform <= 0.9 + 1e-9
    # The demo chips are the test split: the submission scores as the model does on it.
    from helpers.method import inference, metrics
    bundle = load_data(config.resolve("smoke", data=str(run.parent / "data"), **PAPER_56))
    direct = inference.predict(submission.final_model(run), bundle.test, k=3, device="cpu").argmax(1).numpy()
    assert submission.score_against_key(p.results, run / submission.DEMO_KEY)["balanced_top1"] == \
        metrics.summary(bundle.test.targets.numpy(), direct)["balanced_top1"]


# ---------------------------------------------------------------- refusals, one line each
def refused(match, *args, **kwargs):
    with pytest.raises(SubmissionError, match=match) as e:
        submission.predict_folder(*args, **kwargs)
    return assert_one_line(e)


def test_unfinished_run_is_refused(paper_runs, tmp_path):
    import shutil
    run = tmp_path / "unfinished"
    shutil.copytree(paper_runs["A"][0], run)
    shutil.rmtree(run / "stage3b")
    msg = refused("is not finished, so it cannot predict", run, run / submission.DEMO_FOLDER)
    assert "03_stage3_balanced_finetune" in msg
    refused("is not a run folder", tmp_path / "nothing", run / submission.DEMO_FOLDER)


def test_other_sensor_and_other_size_are_refused(paper_runs, tmp_path):
    run = paper_runs["A"][0]
    for i in range(3):
        write_image(tmp_path / "eo" / f"EO_{i}.png", size=60, mode="RGB")
        write_image(tmp_path / "big" / f"SAR_{i}.png", size=300)
    assert "run trained with -p modality eo" in refused("are EO chips .* trained on SAR", run, tmp_path / "eo")
    refused(r"SAR_0.png is 300 px, the run was trained on chips of about 60 px", run, tmp_path / "big")
    (tmp_path / "none").mkdir()
    refused("no image chips in", run, tmp_path / "none")
    refused("does not exist", run, tmp_path / "missing")


def test_check_results_catches_what_the_scorer_rejects():
    chips = [Path("SAR_1.png"), Path("SAR_01.png")]
    for frame, match in [(pd.DataFrame({"image_id": [1, 1], "class_id": [0, 1]}), "image_id 1 occurs 2 times"),
                         (pd.DataFrame({"image_id": [1], "class_id": [0]}), "1 rows for 2 chips"),
                         (pd.DataFrame({"image_id": [1, 2], "class_id": [0, 10]}), "class_id 10 is not a class number"),
                         (pd.DataFrame({"id": [1, 2], "class_id": [0, 1]}), "expected image_id,class_id")]:
        with pytest.raises(SubmissionError, match=match) as e:
            submission.check_results(frame, chips)
        assert_one_line(e)
    submission.check_results(pd.DataFrame({"image_id": [1, 2], "class_id": [0, 9]}), chips)


def test_command_line(paper_runs, tmp_path, capsys):
    run = paper_runs["A"][0]
    out = tmp_path / "out"
    assert predict.main(["--run", str(run), "--images", str(run / submission.DEMO_FOLDER), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "10 chips predicted" in printed and str(out / "submission.zip") in printed
    assert (out / "results.csv").read_bytes() == (run / "submission" / "results.csv").read_bytes()
    assert predict.main(["--run", str(tmp_path), "--images", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_duplicate_ids_are_refused_before_predicting(paper_runs, tmp_path):
    run = paper_runs["A"][0]
    write_image(tmp_path / "dup" / "SAR_12.png", size=60)
    write_image(tmp_path / "dup" / "SAR_012.png", size=60)
    assert "SAR_012.png" in refused("image_id 12 occurs 2 times", run, tmp_path / "dup")
