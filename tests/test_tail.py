"""Evaluation that never hides the tail: held-out splits keep every class that can be split and name the
one that cannot, a class with no test chip is "not measured" (never a zero), balanced scores say over
how many classes they were taken, verdicts on such data are not evidence, and labelled chips of a
prediction set can be the test split."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import ARCHIVE_COURSE, assert_one_line, write_image
from helpers.datasets.data import DataError, hold_out_count, load_data
from helpers.evidence import verdicts
from helpers.lessons import audit, evaluation
from helpers.method import metrics

pytestmark = pytest.mark.usefixtures("sar_data_dir")
# training chips per class of a steep private set: classes 7, 8 and 9 hold 4, 2 and 1 chips
TAIL = [30, 20, 12, 10, 8, 6, 5, 4, 2, 1]
VALID_IDS, TEST_IDS = range(5000, 5010), range(6000, 6004)


def tail_archive(root, counts=TAIL):
    """An archive-shaped tree (train_images/<c>/SAR_ and EO_ chips, flat valid_images/ and test_images/)."""
    for c, n in enumerate(counts):
        for i in range(n):
            write_image(root / "train_images" / str(c) / f"SAR_{100 * c + i}.png", size=20, seed=100 * c + i)
            write_image(root / "train_images" / str(c) / f"EO_{100 * c + i}.png", size=36, mode="RGB", seed=100 * c + i)
    (root / "train_images" / "3" / "readme.txt").write_text("notes")
    for name, ids in (("valid_images", VALID_IDS), ("test_images", TEST_IDS)):
        for n in ids:
            write_image(root / name / f"SAR_{n}.png", size=20, seed=n)
            write_image(root / name / f"EO_{n}.png", size=36, mode="RGB", seed=n)
    return root


# ---------------------------------------------------------------- scores that never invent a zero
def test_summary_of_labels_that_miss_classes():
    # classes 0-3 have test chips; 0: 2 of 2 right, 1: 1 of 2, 2: 0 of 1, 3: 1 of 1; classes 4-9: none
    y_true = [0, 0, 1, 1, 2, 3]
    y_pred = [0, 0, 1, 5, 0, 3]
    s = metrics.summary(y_true, y_pred)
    assert s["per_class"][:4] == [1.0, 0.5, 0.0, 1.0]
    assert all(math.isnan(a) for a in s["per_class"][4:])          # not measured, never 0
    assert s["classes_measured"] == 4
    assert s["balanced_top1"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert s["balanced_label"] == "balanced top-1 over 4 of 10 classes"
    assert s["top1"] == pytest.approx(4 / 6)
    full = metrics.summary(list(range(10)), list(range(10)))
    assert full["balanced_label"] == "balanced top-1" and full["classes_measured"] == 10


def test_shot_groups_average_measured_classes_only():
    per_class = [0.9, 0.8, 0.5, float("nan"), 0.2, float("nan"), 0.0, 0.4, 0.6, 0.3]
    counts = [500, 200, 50, 40, 10, 8, 6, 5, 3, 1]            # many: 0, 1; medium: 2, 3; few: 4-9
    groups = metrics.shot_groups(per_class, counts)
    assert groups["many"] == pytest.approx(0.85) and groups["medium"] == pytest.approx(0.5)
    assert groups["few"] == pytest.approx((0.2 + 0.0 + 0.4 + 0.6 + 0.3) / 5)
    assert metrics.shot_group_sizes(per_class, counts) == {"many": "2 of 2", "medium": "1 of 2", "few": "5 of 6"}


def test_confusion_rows_of_unmeasured_classes_are_nan():
    cm = metrics.confusion([0, 0, 1], [0, 1, 1])
    assert cm[0, 0] == 0.5 and cm[1, 1] == 1.0 and np.isnan(cm[2:]).all()


# ---------------------------------------------------------------- splits that keep the tail
def test_hold_out_count_by_hand():
    # a fifth, at most per_class, and at least 1 while 1 chip stays in training
    assert [hold_out_count(n, 50) for n in (0, 1, 2, 3, 4, 5, 9, 10, 100, 1000)] == [0, 0, 1, 1, 1, 1, 1, 2, 20, 50]
    assert hold_out_count(100, 3) == 3 and hold_out_count(10, 0) == 0


def test_steep_tail_keeps_every_splittable_class_in_test(tmp_path, tiny_settings):
    bundle = load_data(tiny_settings(data=str(tail_archive(tmp_path / "mavoc")), val_per_class=5, test_per_class=5))
    test, val, train = (bundle.class_counts(s) for s in ("test", "val", "train"))
    assert (test[:9] >= 1).all() and test[9] == 0              # every class with 2+ chips is measured; the 1-chip one is not
    assert list(test) == [5, 4, 2, 2, 1, 1, 1, 1, 1, 0]         # hold_out_count by hand on TAIL
    assert (train >= 1).all() and train[8] == 1 and val[8] == 0  # class 8: 1 test, 1 train, none left for validation
    assert list(train + val + test) == TAIL
    notes = "\n".join(bundle.notes)
    assert "class 9 has 1 chip: it is in training only; its accuracy is not measured" in notes
    assert "class 8 has 2 chips: none is left for validation" in notes
    text = audit.split_notes(bundle, tiny_settings(val_per_class=5, test_per_class=5))
    assert "Rule: each class gives a fifth of its chips, at most `test_per_class` (5), to the test split" in text
    assert "* class 9 has 1 chip" in text
    guide = audit.small_set_guidance(bundle)
    # 2 x 0.25 x (1.96 / 0.05)^2 = 768.3 -> 769 test chips a class; over 10 classes 77 a class
    assert "fewer than 20 training chips" in guide and "about 769 test chips" in guide and "about 77 a class" in guide
    assert "| 9 | 1 | 0 | not measured |" in guide and "| 8 | 1 | 1 | 50% |" in guide
    assert evaluation.measured_banner(bundle).startswith("**The test set measures only 9 of 10 classes**")


def test_built_in_splits_are_unchanged(tiny_settings):
    bundle = load_data(tiny_settings())
    assert (bundle.class_counts("test") == 2).all() and not evaluation.measured_banner(bundle)
    from types import SimpleNamespace
    plenty = SimpleNamespace(class_counts=lambda split: np.full(10, 20))
    assert audit.small_set_guidance(plenty) == "Every class has at least 20 training chips."


# ---------------------------------------------------------------- labelled chips as the test split
def test_labelled_chips_of_a_prediction_set_are_the_test_split(tmp_path, tiny_settings):
    root = tail_archive(tmp_path / "mavoc")
    labels = {i: (i * 7) % 10 for i in VALID_IDS}
    csv = tmp_path / "valid_labels.csv"
    pd.DataFrame({"image_id": list(labels), "class_id": list(labels.values())}).to_csv(csv, index=False)
    bundle = load_data(tiny_settings(data=str(root), test_labels=str(csv)))
    got = {int(p.split("SAR_")[1][:-4]): int(t) for p, t in zip(bundle.test.paths, bundle.test.targets)}
    assert got == labels and all("valid_images" in p for p in bundle.test.paths)
    assert sum(bundle.class_counts(s).sum() for s in ("train", "val")) == sum(TAIL)    # no training chip held out for test
    assert any(n.startswith("test split: the 10 labelled chips of valid_images/") for n in bundle.notes)

    pd.DataFrame({"image_id": [5000, 77, 88, 99], "class_id": [1, 2, 3, 4]}).to_csv(csv, index=False)
    with pytest.raises(DataError) as e:
        load_data(tiny_settings(data=str(root), test_labels=str(csv)))
    assert "3 image_id(s) are not sar chips of valid_images/ (e.g. 77, 88, 99)" in assert_one_line(e)
    (tmp_path / "bad.csv").write_text("id,label\n5000,1\n")
    with pytest.raises(DataError, match="expected a header with columns 'image_id,class_id'") as e:
        load_data(tiny_settings(data=str(root), test_labels=str(tmp_path / "bad.csv")))
    assert_one_line(e)


# ---------------------------------------------------------------- verdicts on such data are not evidence
def speed_rows():
    row = {"input": "16 px", "precision": "fp32", "as run": True, "median s / image": 0.001, "state_dict MiB": 11.2}
    return pd.DataFrame([row, {**row, "median s / image": 0.002, "state_dict MiB": 90.0}])


def test_claims_on_a_test_set_that_misses_a_class_are_not_evidence():
    methods = pd.DataFrame({"method": ["three-stage", "cRT", "tau-norm", "LWS"], "balanced_top1": [0.8, 0.5, 0.5, 0.5],
                            "val_balanced_top1": [0.8, 0.5, 0.4, 0.3], "classes_measured": [9] * 4})
    claims = evaluation.claims_table(methods, 0.01, speed_rows()).set_index("claim")["held"]
    assert list(claims) == ["not evidence", "not evidence", "held"]   # (3), speed and size, needs no test labels
    full = evaluation.claims_table(methods.assign(classes_measured=10), 0.01, speed_rows()).set_index("claim")["held"]
    assert list(full)[1:] == ["held", "held"]

    table = pd.DataFrame({"method": ["three-stage", "cRT", "tau-norm", "LWS"], "balanced_top1_mean": [0.8, 0.5, 0.5, 0.5],
                          "balanced_top1_std": [0.01] * 4, "val_balanced_top1_mean": [0.8, 0.5, 0.4, 0.3],
                          "seeds": [3] * 4, "under_trained": [False] * 4, "classes_measured_mean": [9.0] * 4,
                          "paired_gap": [float("nan"), 0.3, 0.3, 0.3], "paired_lo": [float("nan"), 0.2, 0.2, 0.2],
                          "paired_hi": [float("nan"), 0.4, 0.4, 0.4], "paired_p": [float("nan"), 0.001, 0.001, 0.001]})
    v = verdicts.claim1(table)
    assert v["verdict"] == "not evidence" and "only 9 of 10 classes" in v["why"]
    assert verdicts.claim1(table.assign(classes_measured_mean=10.0))["verdict"] == "held"


def test_tables_name_the_classes_they_measured():
    s = metrics.summary([0, 1, 1], [0, 1, 0])
    table = evaluation.scores_table({"a": s}, [f"c{i}" for i in range(10)])
    assert "balanced top-1 over 2 of 10 classes" in table.index
    assert table.loc["5: c5", "a"] == "not measured" and table.loc["1: c1", "a"] == 0.5


# ---------------------------------------------------------------- the course on such data
@pytest.mark.slow
def test_the_course_on_a_steep_tail_says_what_it_did_not_measure(tmp_path, sar_data_dir):
    """The smoke course (every notebook that reads the data or scores it, papermill) on an archive-shaped
    tree (both sensors, a text file, two prediction sets) whose classes 7-9 hold 4, 2 and 1 chips."""
    import json

    from helpers.publishing import runner
    from helpers.settings import config
    tree, run = tail_archive(tmp_path / "mavoc"), tmp_path / "run"
    bundle = load_data(config.resolve("smoke", data=str(tree), val_per_class=5, test_per_class=5))
    assert (bundle.class_counts("test")[:9] >= 1).all() and bundle.class_counts("test")[9] == 0
    assert runner.main(["--profile", "smoke", "--name", str(run), "-p", "data", str(tree),
                        "-p", "val_per_class", "5", "-p", "test_per_class", "5", *ARCHIVE_COURSE]) == 0

    def outputs(notebook):
        cells = json.loads((run / "notebooks" / notebook).read_text())["cells"]
        return json.dumps([c.get("outputs", []) for c in cells])
    audit_json = json.loads((run / "audit.json").read_text())
    assert any(n.startswith("class 9 has 1 chip: it is in training only") for n in audit_json["notes"])
    audit_out = outputs("00_data_audit.ipynb")
    assert "class 9 has 1 chip" in audit_out and "fewer than 20 training chips" in audit_out
    for notebook in ("01_stage1_full_data.ipynb", "02_stage2_without_class0.ipynb", "03_stage3_balanced_finetune.ipynb"):
        text = outputs(notebook)              # every balanced score these notebooks print names its classes
        assert "The test set measures only 9 of 10 classes" in text, notebook
        assert "balanced top-1 over 9 of 10 classes" in text and "balanced top-1 0." not in text, notebook
    evaluation_out = outputs("04_evaluation_tta.ipynb")
    assert "The test set measures only 9 of 10 classes" in evaluation_out
    assert "balanced top-1 over 9 of 10 classes" in evaluation_out          # the stage and method tables say so
    claims = pd.read_csv(run / "claims.csv").set_index("claim")["held"]
    assert list(claims)[:2] == ["not evidence", "not evidence"]
    methods = pd.read_csv(run / "comparison.csv")
    assert (methods["classes_measured"] == 9).all() and methods["acc_class9"].isna().all()
    # notebook_ablations off (the quick profile's default): no ablation rows and none of the extra rivals
    # (the multi-seed comparison has them), and exercise 2 still runs
    assert {"three-stage", "cRT", "LWS", "plain CE", "LDAM-DRW"} <= set(methods["method"])
    assert not any(m.startswith("w/o") for m in methods["method"])
    assert not {"Balanced Softmax", "balanced fine-tune + cRT", "cRT, frozen BN"} & set(methods["method"])
    assert not (run / "balanced_softmax").exists() and not (run / "crt_frozen_bn").exists()
    assert "no ablations yet" in evaluation_out
    # The training data are exactly the SAR chips (train + held-out val/test), none of the EO ones, and the
    # audit reports the EO chips (and the text file) as left out.
    assert sum(audit_json["split_sizes"].values()) == sum(TAIL) and audit_json["split_sizes"]["test"] == 18
    assert pd.read_csv(run / "class_counts.csv")["train"].sum() == sum(TAIL)
    inventory = pd.read_csv(run / "inventory.csv", index_col="split")
    assert inventory.loc["train", "kept"] == sum(TAIL) and inventory.loc["train", "other modality"] == sum(TAIL)
    assert inventory.loc["train", "non-image"] == 1 and inventory.loc["test_images", "other modality"] == len(TEST_IDS)
    # A submission for each prediction set of the archive: one row per SAR chip, ids as in the file names.
    first = pd.read_csv(run / "submission" / "results.csv")
    second = pd.read_csv(run / "submission" / "valid_images" / "results.csv")
    assert list(first.columns) == ["image_id", "class_id", "score"] and first["class_id"].between(0, 9).all()
    assert first["score"].notna().all()            # the 2021 archive has no OOD chips: the default score (max logit)
    assert json.loads((run / "submission.json").read_text())["ood_score"] == "max_logit"
    assert sorted(first["image_id"]) == list(TEST_IDS) and sorted(second["image_id"]) == list(VALID_IDS)
    summary = json.loads((run / "submission.json").read_text())
    assert summary["chips"] == len(TEST_IDS) and summary["images"].endswith("test_images")
    assert (run / "figures" / "submission_distribution.png").is_file()
