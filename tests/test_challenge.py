"""The challenge as it runs today (PBVS 2023-2025): OOD scores and their AUROC against hand-worked values,
the three-column submission, the local scorer, class folders named by name, and the smoke course on a
tiny tree in the 2024/2025 layout (SAR_Train/EO_Train by class name, a flat test/ of Gotcha<id>.png,
a reference CSV with OOD flags)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_one_line, write_image
from helpers.challenge import score as scorer
from helpers.challenge import submission
from helpers.datasets import data, data_files
from helpers.method import ood
from helpers.settings import config

NAMES = sorted(["bus", "flatbed", "motorcycle", "pickup", "pickup_trailer", "sedan", "suv", "box_truck",
                "flatbed_trailer", "van"])


# ---------------------------------------------------------------- the scores, by hand
def test_each_ood_score_on_a_hand_worked_three_class_example():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    z = math.e ** 2 + math.e + 1                                   # 11.107
    assert ood.score(logits, "msp") == pytest.approx([math.e ** 2 / z, 1 / 3])
    assert ood.score(logits, "max_logit") == pytest.approx([2.0, 0.0])
    assert ood.score(logits, "energy") == pytest.approx([math.log(z), math.log(3)])
    # two TTA views: msp averages the softmax, max logit and energy average the logits
    views = torch.tensor([[[2.0, 1.0, 0.0]], [[0.0, 1.0, 2.0]]])
    assert ood.score(views, "msp") == pytest.approx([0.5 * (math.e ** 2 + 1) / z])
    assert ood.score(views, "max_logit") == pytest.approx([1.0])
    assert ood.score(views, "energy") == pytest.approx([1 + math.log(3)])
    with pytest.raises(ValueError, match="must be one of msp, max_logit, energy"):
        ood.score(logits, "entropy")


def test_auroc_and_fpr_against_a_hand_worked_ranking():
    id_scores, ood_scores = [0.9, 0.8, 0.4], [0.5, 0.3]
    # of the 6 (ID, OOD) pairs the ID chip is higher in 5: 0.9 and 0.8 beat both, 0.4 beats 0.3 only
    assert ood.auroc(id_scores, ood_scores) == pytest.approx(5 / 6)
    assert ood.auroc([0.5, 0.9], [0.5]) == pytest.approx(0.75)    # a tie counts a half
    # keeping 95% of the 3 ID chips keeps all of them: threshold 0.4, and 1 of the 2 OOD chips passes
    assert ood.fpr_at_95_tpr(id_scores, ood_scores) == pytest.approx(0.5)
    assert ood.challenge_total(0.2, 0.6) == pytest.approx(0.75 * 0.2 + 0.25 * 0.6)


def test_the_score_is_chosen_on_validation_or_is_the_default():
    assert ood.choose("energy") == ("energy", "set by ood_score")
    assert ood.choose("auto")[0] == "max_logit"                      # no OOD validation set
    # ID chips with one large logit, OOD chips flat but high: max logit and energy fail, msp separates them
    val_id = torch.tensor([[5.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    val_ood = torch.tensor([[6.0, 6.0, 6.0], [7.0, 7.0, 7.0]])
    name, why = ood.choose("auto", val_id, val_ood)
    assert name == "msp" and "best validation AUROC (1.000)" in why


# ---------------------------------------------------------------- the scorer and the submission's checks
def _csv(path: Path, rows: dict) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_the_scorer_total_by_hand(tmp_path):
    reference = _csv(tmp_path / "ref.csv", {"image_id": [1, 2, 3, 4, 5, 6], "class_id": [0, 1, 1, 2, -1, -1],
                                            "ood": [0, 0, 0, 0, 1, 1]})
    results = _csv(tmp_path / "res.csv", {"image_id": [6, 5, 4, 3, 2, 1], "class_id": [3, 0, 2, 0, 1, 0],
                                          "score": [0.35, 0.6, 0.9, 0.8, 0.7, 0.2]})
    r = scorer.score(results, reference)
    # ID chips 1-4: correct 1, 2 and 4, wrong 3 -> accuracy 3/4; per class recall 1, 1/2, 1 -> balanced 5/6
    # ID scores 0.2, 0.7, 0.8, 0.9 against OOD 0.6, 0.35: pairs won 0+2+2+2 of 8 -> AUROC 6/8
    assert r["accuracy"] == pytest.approx(0.75) and r["balanced_accuracy"] == pytest.approx(5 / 6)
    assert r["auroc"] == pytest.approx(0.75) and r["total"] == pytest.approx(0.75 * 0.75 + 0.25 * 0.75)
    assert r["ood_chips"] == 2 and "total (0.75 x accuracy + 0.25 x AUROC): 0.7500" in scorer.lines(r)
    two = _csv(tmp_path / "two.csv", {"image_id": [1, 2, 3, 4, 5, 6], "class_id": [0, 1, 0, 2, 0, 0]})
    assert scorer.score(two, reference)["total"] is None          # the 2021 form: no OOD measure


@pytest.mark.parametrize("rows, match", [
    ({"image_id": [1, 2], "class_id": [0, 0], "score": [1, 1]}, "results lack 1 id"),
    ({"image_id": [1, 2, 3, 4], "class_id": [0, 0, 0, 0], "score": [1, 1, 1, 1]}, "results have 1 id.* that the reference does not"),
    ({"image_id": [1, 2, 2], "class_id": [0, 0, 0], "score": [1, 1, 1]}, "image_id 2 occurs 2 times"),
    ({"id": [1, 2, 3], "class_id": [0, 0, 0]}, "expected image_id,class_id"),
])
def test_the_scorer_refuses_in_one_line(tmp_path, capsys, rows, match):
    reference = _csv(tmp_path / "ref.csv", {"image_id": [1, 2, 3], "class_id": [0, 1, -1], "ood": [0, 0, 1]})
    results = _csv(tmp_path / "res.csv", rows)
    with pytest.raises(scorer.ScoreError, match=match) as e:
        scorer.score(results, reference)
    assert_one_line(e)
    assert scorer.main([str(results), str(reference)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_the_submission_checks_cover_the_score():
    chips = [Path("Gotcha1.png"), Path("Gotcha2.png")]
    submission.check_results(pd.DataFrame({"image_id": [1, 2], "class_id": [0, 9], "score": [0.1, 3.0]}), chips)
    with pytest.raises(submission.SubmissionError, match="not a finite number") as e:
        submission.check_results(pd.DataFrame({"image_id": [1, 2], "class_id": [0, 9], "score": [0.1, np.nan]}), chips)
    assert_one_line(e)
    with pytest.raises(submission.SubmissionError, match="expected image_id,class_id,score"):
        submission.check_results(pd.DataFrame({"image_id": [1, 2], "score": [0.1, 0.2], "class_id": [0, 1]}), chips)


def test_ids_are_read_from_every_naming():
    from helpers.datasets import archive
    assert [archive.image_id(n) for n in ("SAR_1234.png", "Gotcha1234.png", "1234.png")] == [1234] * 3


# ---------------------------------------------------------------- class folders named by name
def test_named_class_folders_are_mapped_and_said(tmp_path):
    tree = tmp_path / "SAR_Train"
    for name in NAMES:
        (tree / name).mkdir(parents=True)
    mapping, source = data_files.class_mapping(tree)
    assert mapping == {n: i for i, n in enumerate(NAMES)} and "sorted folder names" in source
    listed = list(reversed(NAMES))
    (tmp_path / "classes.txt").write_text("\n".join(listed) + "\n")
    mapping, source = data_files.class_mapping(tree)
    assert mapping["van"] == 0 and "classes.txt" in source
    mapping, source = data_files.class_mapping(tree, ",".join(NAMES))
    assert mapping["box_truck"] == 0 and source == "the class_order setting"
    with pytest.raises(data.DataError, match="expected the same 10 names") as e:
        data_files.class_mapping(tree, "bus,van")
    assert_one_line(e)


# ---------------------------------------------------------------- built-in OOD data
def test_synthetic_sar_has_ood_chips_and_digits_says_it_has_none(sar_data_dir):
    bundle = data.load_data(config.resolve("smoke"))
    s = config.resolve("smoke")
    assert len(bundle.ood_val) == 4 * s.val_per_class and len(bundle.ood_test) == 4 * s.test_per_class
    assert set(bundle.ood_test.targets.tolist()) == {-1} and "ood_test/" in bundle.ood_note
    assert not set(bundle.ood_val.paths) & set(bundle.ood_test.paths)
    digits = data.load_data(config.resolve("smoke", data="digits-lt"))
    assert digits.ood_test is None and not digits.has_ood and "no OOD set" in digits.ood_note


# ---------------------------------------------------------------- the 2024/2025 layout, end to end
def make_2024_tree(root: Path, per_class: int = 8, val_per_class: int = 2, val_ood: int = 6, test_ood: int = 4):
    """train/SAR_Train/<name>/ and train/EO_Train/<name>/ (same file names), val/ and test/ flat of
    Gotcha<id>.png, validation_reference.csv (image_id,class_id,ood); the test key beside the tree."""
    for c, name in enumerate(NAMES):
        for i in range(per_class):
            write_image(root / "train" / "SAR_Train" / name / f"{name}_{i:03d}.png", size=20, seed=100 * c + i)
            write_image(root / "train" / "EO_Train" / name / f"{name}_{i:03d}.png", size=20, mode="RGB", seed=100 * c + i)
    ref, key, next_id = [], [], 1000
    for folder, rows, ood_n in (("val", ref, val_ood), ("test", key, test_ood)):
        chips = [(c, 0) for c in range(10) for _ in range(val_per_class if folder == "val" else 1)] + [(-1, 1)] * ood_n
        for label, flag in chips:
            write_image(root / folder / f"Gotcha{next_id}.png", size=20, seed=next_id)
            rows.append({"image_id": next_id, "class_id": label, "ood": flag})
            next_id += 1
    pd.DataFrame(ref).to_csv(root / "validation_reference.csv", index=False)
    pd.DataFrame(key).to_csv(root.parent / "test_reference.csv", index=False)
    return root


def _auroc_by_hand(id_scores, ood_scores) -> float:
    wins = sum((i > o) + 0.5 * (i == o) for i in id_scores for o in ood_scores)
    return wins / (len(id_scores) * len(ood_scores))


def test_the_2024_layout_is_read_as_it_is(tmp_path, sar_data_dir):
    tree = make_2024_tree(tmp_path / "mavic")
    settings = config.resolve("smoke", data=str(tree))
    bundle = data.load_data(settings)
    assert bundle.class_names == NAMES and bundle.class_folders["van"] == 9
    assert len(bundle.val) == 20 and len(bundle.ood_val) + len(bundle.ood_test) == 6
    assert any(n.startswith("left out 80 chip(s) of the other sensor") for n in bundle.notes)
    assert all("SAR_Train" in p for p in bundle.train.paths) and not any(n.startswith("converted") for n in bundle.notes)
    assert list(submission.prediction_sets(settings, tmp_path / "run")) == ["test", "val"]


@pytest.mark.slow
def test_the_smoke_course_on_a_2024_archive(tmp_path, sar_data_dir, capsys):
    from helpers.evidence import train
    from helpers.publishing import runner
    tree = make_2024_tree(tmp_path / "mavic")
    run = tmp_path / "run"
    # the notebooks that read this layout (00: the audit and class map; 06: the submission), with the three
    # stages trained between them by the train command (the notebooks 01-04 on an archive: tests/test_tail.py);
    # in this process (the commands' own entry points), each notebook in its kernel
    assert runner.main(["--profile", "smoke", "--name", str(run), "-p", "data", str(tree), "--only", "00"]) == 0
    assert train.main(["--run-dir", str(run), "--data", str(tree), "--method", "three-stage"]) == 0
    assert runner.main(["--name", str(run), "--only", "06"]) == 0
    inventory = pd.read_csv(run / "inventory.csv").set_index("split")
    assert inventory.loc["train", "kept"] == 80 and inventory.loc["train", "other modality"] == 80   # only SAR read
    classes = pd.read_csv(run / "class_map.csv")
    assert classes["class_name"].tolist() == NAMES and classes["folder"].tolist() == NAMES
    results = pd.read_csv(run / "submission" / "results.csv")
    key = pd.read_csv(tmp_path / "test_reference.csv")
    assert list(results.columns) == ["image_id", "class_id", "score"]
    assert sorted(results["image_id"]) == sorted(key["image_id"]) and len(results) == len(list((tree / "test").iterdir()))
    assert (run / "submission" / "val" / "results.csv").is_file()
    capsys.readouterr()
    assert scorer.main([str(run / "submission" / "results.csv"), str(tmp_path / "test_reference.csv")]) == 0
    printed = capsys.readouterr().out
    merged = key.merge(results, on="image_id", suffixes=("_true", "_pred"))
    known = merged[merged["ood"] == 0]
    accuracy = float((known["class_id_true"] == known["class_id_pred"]).mean())
    auroc = _auroc_by_hand(known["score"].tolist(), merged[merged["ood"] == 1]["score"].tolist())
    total = float(printed.split("total (0.75 x accuracy + 0.25 x AUROC): ")[1].split()[0])
    assert total == pytest.approx(0.75 * accuracy + 0.25 * auroc, abs=1e-4)


def test_the_ood_verdicts_are_holm_corrected_across_the_rivals():
    from helpers.evidence import ood_evidence
    # three rivals, every interval above 0, raw p 0.01, 0.04, 0.03: Holm 0.03, 0.06, 0.06 -> only the first helps
    table = pd.DataFrame({"method": ["three-stage", "a", "b", "c"], "kind": "method", "auroc_mean": [0.8, 0.7, 0.75, 0.72],
                          "auroc_paired_lo": [np.nan, 0.02, 0.01, 0.01], "auroc_paired_hi": [np.nan, 0.2, 0.1, 0.15],
                          "auroc_paired_p": [np.nan, 0.01, 0.04, 0.03]})
    text = ood_evidence.verdict(table)
    assert "three-stage minus a: +0.100 AUROC [+0.020, +0.200], Holm p 0.030: helps" in text
    assert "three-stage minus b: +0.050 AUROC [+0.010, +0.100], Holm p 0.060: inconclusive" in text
    assert "Holm p 0.060: inconclusive" in text.split("minus c:")[1] and text.endswith("Holm-corrected over 3 rivals")
