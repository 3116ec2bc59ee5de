"""The MAVOC archive read as it is: layouts, one sensor by prefix, mixed channels, prediction sets, and
the audit and submission notebooks run on an archive-shaped tree (training on SAR only, EO reported as left out, a submission)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assert_one_line, make_folder_data, write_image
from helpers.datasets import archive, data, data_files
from helpers.settings.config import SettingsError, resolve
from helpers.datasets.data import DataError, load_data

pytestmark = pytest.mark.usefixtures("sar_data_dir")
UNLABELED = {"valid_images": range(5000, 5004), "test_images": range(6000, 6005)}


def make_archive(root: Path, per_class: int = 10, sar_size: int = 20, eo_size: int = 36) -> Path:
    """An archive-shaped tree: train_images/<c>/ with SAR_ grey chips and EO_ RGB chips of another size,
    a non-image file, and flat unlabeled valid_images/ and test_images/ holding both sensors."""
    for c in range(10):
        for i in range(per_class):
            n = 100 * c + i
            write_image(root / "train_images" / str(c) / f"SAR_{n}.png", size=sar_size, seed=n)
            write_image(root / "train_images" / str(c) / f"EO_{n}.png", size=eo_size, mode="RGB", seed=n)
    (root / "train_images" / "3" / "readme.txt").write_text("notes")
    for name, ids in UNLABELED.items():
        for n in ids:
            write_image(root / name / f"SAR_{n}.png", size=sar_size, seed=n)
            write_image(root / name / f"EO_{n}.png", size=eo_size, mode="RGB", seed=n)
    return root


@pytest.fixture
def mavoc(tmp_path):
    return make_archive(tmp_path / "mavoc")


# ---------------------------------------------------------------- layout detection
def test_detects_every_accepted_layout(mavoc, tmp_path):
    root = archive.detect(mavoc)
    assert root.kind == "archive" and root.splits == {"train": mavoc / "train_images"}
    assert root.prediction_sets == {n: mavoc / n for n in UNLABELED}
    inner = archive.detect(mavoc / "train_images")          # train_images/ itself: siblings are the prediction sets
    assert inner.splits == root.splits and inner.prediction_sets == root.prediction_sets
    course_layout = make_folder_data(tmp_path / "course", per_class=1)
    assert archive.detect(course_layout).splits == {s: course_layout / s for s in ("train", "val", "test")}
    (tmp_path / "course" / "train.csv").write_text("path,label\n")
    csv = archive.detect(tmp_path / "course" / "train.csv")
    assert csv.kind == "csv" and csv.splits == {"train": tmp_path / "course" / "train.csv"}


def test_layout_errors_are_one_line(tmp_path):
    (tmp_path / "empty" / "pictures").mkdir(parents=True)
    for path, match in [(tmp_path / "nowhere", "does not exist"), (tmp_path / "empty", "no train/ folder or train.csv"),
                        (write_image(tmp_path / "x.png"), "is a file, not a folder or a CSV")]:
        with pytest.raises(archive.ArchiveError, match=match) as e:
            archive.detect(path)
        assert "train_images" in assert_one_line(e)


# ---------------------------------------------------------------- one sensor, by prefix
def test_classify_and_modality():
    assert [archive.modality_of(n) for n in ("SAR_1.png", "EO_1.png", "sar_2.PNG", "chip.png")] == ["sar", "eo", "sar", None]
    assert archive.classify("EO_1.png", "sar") == "other modality"
    assert archive.classify("SAR_1.png", "sar") == archive.classify("chip.png", "eo") == "kept"
    assert archive.classify("SAR_1.txt", "sar") == "non-image" and archive.classify(".DS_Store", "sar") == "hidden"


@pytest.mark.parametrize("modality,prefix,size", [("sar", "SAR_", 20), ("eo", "EO_", 36)])
def test_training_set_holds_one_sensor_only(mavoc, tiny_settings, modality, prefix, size, monkeypatch):
    opened = []
    real_open = data.Image.open
    monkeypatch.setattr(data.Image, "open", lambda p, *a, **k: opened.append(Path(p).name) or real_open(p, *a, **k))
    bundle = load_data(tiny_settings(data=str(mavoc), modality=modality, val_per_class=1, test_per_class=2))
    paths = bundle.train.paths + bundle.val.paths + bundle.test.paths
    assert len(paths) == 100 and all(Path(p).name.startswith(prefix) for p in paths)
    assert sorted(opened) == sorted(Path(p).name for p in paths)      # the other sensor is never opened
    assert bundle.class_counts("test").tolist() == [2] * 10 and bundle.class_counts("val").tolist() == [1] * 10
    assert any("left out 100 chip(s) of the other sensor" in n for n in bundle.notes)
    assert not any("converted" in n for n in bundle.notes) or modality == "eo"


def test_scan_lists_only_the_chosen_modality(mavoc):
    splits = data_files.scan(mavoc, [], modality="sar")
    assert list(splits) == ["train"] and len(splits["train"]) == 100
    assert {p.name[:4] for p, _ in splits["train"]} == {"SAR_"}
    assert {p.name[:3] for p, _ in data_files.scan(mavoc / "train_images", [], modality="eo")["train"]} == {"EO_"}


def test_modality_setting_is_checked():
    assert resolve("smoke").modality == "sar"
    with pytest.raises(SettingsError, match="setting 'modality' must be 'sar' or 'eo', got 'radar'") as e:
        resolve("smoke", modality="radar")
    assert_one_line(e)


def test_mixed_channel_counts_without_prefixes_stop_with_both_examples(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1)
    write_image(root / "train" / "4" / "colour.png", mode="RGB")
    with pytest.raises(DataError, match="mixes chips with 1 and 3 channel") as e:
        load_data(tiny_settings(data=str(root)))
    message = assert_one_line(e)
    assert "train_4_0.png" in message and "colour.png" in message and "SAR_<id>.png" in message


def test_inventory_reports_found_and_left_out(mavoc):
    table = archive.inventory(mavoc, "sar")
    assert list(table.index) == ["train", "valid_images", "test_images"]
    assert table.loc["train", "kept"] == 100 and table.loc["train", "other modality"] == 100
    assert table.loc["train", "non-image"] == 1 and table.loc["train", "example left out"]
    assert table.loc["test_images", "kept"] == 5 and table.loc["test_images", "other modality"] == 5
    assert table.loc["valid_images", "role"] == "unlabeled (prediction set)"


def test_image_ids_are_the_number_in_the_name():
    assert archive.image_id("SAR_1234.png") == 1234 and archive.image_id("/x/EO_0007.tif") == 7
    for name in ("SAR_.png", "SAR_12_3.png"):
        with pytest.raises(archive.ArchiveError, match="expected exactly one number in the name") as e:
            archive.image_id(name)
        assert_one_line(e)


def test_flat_chips_keep_the_run_sensor(mavoc):
    chips, left = archive.flat_chips(mavoc / "test_images", "sar")
    assert [archive.image_id(p) for p in chips] == list(UNLABELED["test_images"])
    assert left["other modality"] == 5


# The archive through every notebook (audit, stages, submission per prediction set): tests/test_tail.py.
