"""Data: the built-in generators, load_data on folders and CSVs, and every bad input's one-line error."""
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line, make_folder_data, write_image
from helpers.datasets import data, digits_lt, synthetic_sar
from helpers.datasets.data import DataError, load_data

pytestmark = pytest.mark.usefixtures("sar_data_dir")


# ---------------------------------------------------------------- built-in data
def test_synthetic_class_counts_follow_mavoc():
    counts = synthetic_sar.class_counts(100_000)
    assert abs(counts[0] / sum(counts) - 0.797) < 0.005            # class 0 (sedan) ~80%
    assert counts == sorted(counts[:2], reverse=True) + counts[2:] and counts[0] > 5 * counts[1]
    small = synthetic_sar.class_counts(100)
    assert min(small) == synthetic_sar.MIN_PER_CLASS and small[0] == 80


def test_render_chip_is_deterministic():
    a = synthetic_sar.render_chip(3, np.random.default_rng([0, 0, 3, 7]))
    b = synthetic_sar.render_chip(3, np.random.default_rng([0, 0, 3, 7]))
    c = synthetic_sar.render_chip(3, np.random.default_rng([0, 0, 3, 8]))
    assert a.dtype == np.uint8 and 54 <= a.shape[0] <= 60 and a.shape[0] == a.shape[1]
    assert a.tobytes() == b.tobytes()
    assert a.shape != c.shape or a.tobytes() != c.tobytes()


def test_generate_same_seed_same_bytes(tmp_path):
    a = synthetic_sar.generate(tmp_path / "a", data_size=10, val_per_class=1, test_per_class=1, seed=5, progress=False)
    b = synthetic_sar.generate(tmp_path / "b", data_size=10, val_per_class=1, test_per_class=1, seed=5, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == sum(synthetic_sar.class_counts(10)) + 20 + 2 * len(synthetic_sar.OOD_SHAPES)
    # The OOD chips (their own seed stream) leave the others as the generator wrote them before it had
    # any: these MD5s were taken from the generator without OOD chips (commit fdbe2ce).
    md5 = lambda f: __import__("hashlib").md5((a / f).read_bytes()).hexdigest()
    assert md5("train/9/train_9_000004.png") == "5513b452565c7562d04a94b29af0f03e"
    assert md5("test/3/test_3_000000.png") == "eb223c197749002eb90c65fc4d57af10"
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert json.loads((a / "spec.json").read_text())["seed"] == 5
    assert not list(tmp_path.glob("*.partial"))
    # A second call with the same spec reuses the folder (nothing rewritten).
    stamp = (a / files[0]).stat().st_mtime_ns
    synthetic_sar.generate(tmp_path / "a", data_size=10, val_per_class=1, test_per_class=1, seed=5, progress=False)
    assert (a / files[0]).stat().st_mtime_ns == stamp


def test_digits_long_tail_counts():
    counts = digits_lt.long_tail_counts(100, 25.0)
    assert counts[0] == 100 and counts[-1] == 4
    assert all(x >= y for x, y in zip(counts, counts[1:]))


def test_digits_lt_loads_long_tailed(tiny_settings):
    s = tiny_settings(data="digits-lt", val_per_class=1, test_per_class=1, digits_imbalance=10.0)
    bundle = load_data(s)
    counts = bundle.class_counts("train")
    assert counts[0] / counts[-1] == pytest.approx(10, rel=0.15)
    assert all(x >= y for x, y in zip(counts, counts[1:]))
    assert bundle.class_counts("val").tolist() == [1] * 10 and bundle.class_counts("test").tolist() == [1] * 10


def test_digits_lt_too_many_held_out(tiny_settings):
    from helpers.settings.config import SettingsError
    with pytest.raises(SettingsError, match="val_per_class \\+ test_per_class must be below that"):
        load_data(tiny_settings(data="digits-lt", val_per_class=100, test_per_class=100))


def test_load_synthetic(tiny_settings, sar_data_dir):
    s = tiny_settings()
    bundle = load_data(s)
    assert bundle.class_counts("train").tolist() == synthetic_sar.class_counts(100)
    assert bundle.class_counts("val").tolist() == [2] * 10
    assert bundle.class_counts("test").tolist() == [2] * 10
    assert bundle.train.images.shape == (130, 1, 16, 16) and bundle.train.images.dtype == torch.uint8
    assert bundle.root.parent == sar_data_dir
    assert 0 < bundle.mean < 1 and bundle.std > 0
    x, y = bundle.test[0]
    assert x.shape == (1, 16, 16) and x.dtype == torch.float32
    # Eval transform is a plain normalisation.
    torch.testing.assert_close(x, (bundle.test.images[0].float() / 255 - bundle.mean) / bundle.std)
    assert bundle.class_names[0] == "sedan"
    assert bundle.notes == []


# ---------------------------------------------------------------- layouts
def write_csvs(folder_root, csv_root, splits=("train", "val", "test")):
    """CSV files listing the same images as the folder tree (paths relative to the CSV)."""
    csv_root.mkdir(parents=True, exist_ok=True)
    import os
    for split in splits:
        rows = ["path,label"]
        for png in sorted((folder_root / split).rglob("*.png")):
            rows.append(f"{os.path.relpath(png, csv_root)},{png.parent.name}")
        (csv_root / f"{split}.csv").write_text("\n".join(rows) + "\n")


def test_folder_and_csv_layouts_load_the_same_images(tmp_path, tiny_settings):
    folders = make_folder_data(tmp_path / "folders", per_class=2)
    write_csvs(folders, tmp_path / "csv")
    a = load_data(tiny_settings(data=str(folders)))
    b = load_data(tiny_settings(data=str(tmp_path / "csv")))
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        order_a = np.argsort([str(p) for p in sa.paths])
        order_b = np.argsort([str(p) for p in sb.paths])
        assert [str(sa.paths[i]) for i in order_a] == [str(sb.paths[i]) for i in order_b]
        assert torch.equal(sa.images[order_a], sb.images[order_b])
        assert torch.equal(sa.targets[order_a], sb.targets[order_b])
    assert a.class_counts("train").tolist() == [2] * 10
    assert a.class_names == [f"class {i}" for i in range(10)]


def test_labels_come_from_folder_numbers_not_sort_order(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1)
    write_image(root / "train" / "3" / "extra.png")
    bundle = load_data(tiny_settings(data=str(root)))
    labels = {p.split("/")[-2]: t for p, t in zip(bundle.train.paths, bundle.train.targets.tolist())}
    assert all(int(k) == v for k, v in labels.items())
    assert bundle.class_counts("train")[3] == 2


def test_val_and_test_held_out_when_missing(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "only_train", per_class=10, splits=("train",))
    bundle = load_data(tiny_settings(data=str(root), val_per_class=1, test_per_class=2))
    assert bundle.class_counts("val").tolist() == [1] * 10
    assert bundle.class_counts("test").tolist() == [2] * 10
    assert bundle.class_counts("train").tolist() == [7] * 10
    paths = [set(getattr(bundle, s).paths) for s in ("train", "val", "test")]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2]) and not (paths[1] & paths[2])
    assert any("no test split" in n for n in bundle.notes) and any("no val split" in n for n in bundle.notes)
    # The hold-out depends on data_seed only.
    again = load_data(tiny_settings(data=str(root), val_per_class=1, test_per_class=2, seed=9))
    assert again.test.paths == bundle.test.paths


def test_relative_data_path_is_relative_to_project_root(tmp_path, tiny_settings):
    from helpers.settings.paths import PROJECT_ROOT, resolve_path
    assert resolve_path("data/x") == PROJECT_ROOT / "data" / "x"
    assert resolve_path(tmp_path) == tmp_path


# ---------------------------------------------------------------- bad inputs: one clear line each
def load_error(settings, match):
    with pytest.raises(DataError, match=match) as e:
        load_data(settings)
    return assert_one_line(e)


def test_missing_data_path(tmp_path, tiny_settings):
    msg = load_error(tiny_settings(data=str(tmp_path / "nowhere")), "does not exist")
    assert "neither a built-in data set (synthetic-sar, digits-lt)" in msg and "train.csv" in msg


def test_misspelt_built_in_name(tiny_settings):
    load_error(tiny_settings(data="synthetic_sar"), r"data 'synthetic_sar' is neither a built-in data set")


def test_file_instead_of_folder(tmp_path, tiny_settings):
    (tmp_path / "train.txt").write_text("path,label\n")
    load_error(tiny_settings(data=str(tmp_path / "train.txt")), r"is a file, not a folder or a CSV; give the folder that holds train/")
    (tmp_path / "train.csv").write_text("path,label\n")     # a CSV path is read (here: an empty one)
    load_error(tiny_settings(data=str(tmp_path / "train.csv")), r"train.csv lists no images; expected rows of 'path,label'")


def test_folder_without_train(tmp_path, tiny_settings):
    (tmp_path / "d" / "validation").mkdir(parents=True)
    load_error(tiny_settings(data=str(tmp_path / "d")), r"no train/ folder or train.csv in .*; expected .*/train/<0..9>/\*.png")


def test_no_class_folders(tmp_path, tiny_settings):
    write_image(tmp_path / "d" / "train" / "a.png")
    load_error(tiny_settings(data=str(tmp_path / "d")), r"no class folders in .*train; expected sub-folders named 0..9")


@pytest.mark.parametrize("name", ["cat", "10", "-1"])
def test_class_folder_not_a_number(tmp_path, tiny_settings, name):
    root = make_folder_data(tmp_path / "d", per_class=1, splits=("train",))
    write_image(root / "train" / name / "a.png")
    load_error(tiny_settings(data=str(root)), rf"class folder .*{name} is not a class number 0-9; expected folders named 0, 1, ..., 9")


def test_empty_class_folder(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1, splits=("train",), classes=range(9))
    (root / "train" / "9").mkdir()
    (root / "train" / "9" / "notes.txt").write_text("x")
    load_error(tiny_settings(data=str(root)), r"class folder .*9 holds no images; expected image chips")


def test_class_missing_from_train(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1, splits=("train",), classes=[0, 1, 2, 3, 4, 5, 6, 8])
    load_error(tiny_settings(data=str(root)), r"classes \[7, 9\] have no training images in .*; all ten classes 0-9 are needed")


def csv_root(tmp_path, text):
    root = make_folder_data(tmp_path / "imgs", per_class=1, splits=("train",))
    write_csvs(root, tmp_path / "csv", splits=("train",))
    if text is not None:
        (tmp_path / "csv" / "train.csv").write_text(text)
    return tmp_path / "csv"


def test_csv_missing_columns(tmp_path, tiny_settings):
    root = csv_root(tmp_path, "file,class\n../imgs/train/0/train_0_0.png,0\n")
    load_error(tiny_settings(data=str(root)), r"train.csv has columns \['file', 'class'\]; expected a header with columns 'path,label'")


@pytest.mark.parametrize("label", ["12", "-1", "car", ""])
def test_csv_label_outside_0_9(tmp_path, tiny_settings, label):
    root = csv_root(tmp_path, None)
    lines = (root / "train.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + "," + label
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    load_error(tiny_settings(data=str(root)), rf"train.csv line 4: label '{label}' is not a class number 0-9")


def test_csv_path_does_not_exist(tmp_path, tiny_settings):
    root = csv_root(tmp_path, None)
    with open(root / "train.csv", "a") as f:
        f.write("../imgs/train/0/missing.png,0\n")
    load_error(tiny_settings(data=str(root)),
               r"train.csv line 12: image '../imgs/train/0/missing.png' does not exist \(paths are relative to the CSV\)")


def test_csv_not_text(tmp_path, tiny_settings):
    root = csv_root(tmp_path, None)
    (root / "train.csv").write_bytes(b"path,label\n\xff\xfe\x00bad,1\n")
    load_error(tiny_settings(data=str(root)), r"cannot read .*train.csv as CSV .*; expected a UTF-8 text file with a header 'path,label'")


def test_csv_with_byte_order_mark_and_spaces_loads(tmp_path, tiny_settings):
    root = csv_root(tmp_path, None)
    text = (root / "train.csv").read_text().replace("path,label", "path, label")
    (root / "train.csv").write_text("\ufeff" + text)
    assert load_data(tiny_settings(data=str(root), val_per_class=1, test_per_class=1)).class_counts("train").sum() == 10


def test_empty_csv(tmp_path, tiny_settings):
    root = csv_root(tmp_path, "path,label\n")
    load_error(tiny_settings(data=str(root)), r"train.csv lists no images; expected rows of 'path,label'")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_image_names_the_file(tmp_path, tiny_settings, damage):
    root = make_folder_data(tmp_path / "d", per_class=1)
    bad = root / "train" / "4" / "train_4_0.png"
    content = bad.read_bytes()
    bad.write_bytes({"truncated": content[: len(content) // 2], "garbage": b"\x89PNG not really" * 20,
                     "empty": b""}[damage])
    msg = load_error(tiny_settings(data=str(root)), r"cannot read image .*train_4_0.png .*the file is corrupt or truncated, remove or replace it")
    assert str(bad) in msg


def test_non_image_files_are_skipped_with_one_counted_warning(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1)
    (root / "train" / "0" / "readme.txt").write_text("notes")
    (root / "train" / "5" / "labels.json").write_text("{}")
    (root / "test" / "2" / "Thumbs.db").write_bytes(b"\0")
    (root / "train" / "1" / ".DS_Store").write_bytes(b"\0")          # hidden files: ignored silently
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load_data(tiny_settings(data=str(root)))
    messages = [str(w.message) for w in caught if "non-image" in str(w.message)]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"skipped 3 non-image file(s) in {root} (e.g. ")
    assert messages[0] in bundle.notes
    assert len(bundle.train) == 10 and len(bundle.test) == 10


def test_rgb_images_are_converted_with_one_warning(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1)
    for split, c in [("train", 0), ("train", 7), ("val", 1), ("test", 9)]:
        write_image(root / split / str(c) / f"{split}_{c}_0.png", mode="RGB")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load_data(tiny_settings(data=str(root)))
    messages = [str(w.message) for w in caught if "converted" in str(w.message)]
    assert len(messages) == 1, messages
    assert messages[0].startswith("converted 4 multi-channel image(s) to single channel, as SAR chips are (e.g. ")
    assert "is RGB)" in messages[0]
    assert bundle.train.images.shape[1] == 1


def test_sizes_far_from_image_size_give_one_warning(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1)
    write_image(root / "train" / "3" / "train_3_0.png", size=200)
    write_image(root / "test" / "3" / "test_3_0.png", size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load_data(tiny_settings(data=str(root), image_size=16))
    messages = [str(w.message) for w in caught if "far from" in str(w.message)]
    assert len(messages) == 1, messages
    assert messages[0].startswith("2 image(s) are far from the configured image_size 16 px (over 4x larger or smaller, e.g. ")
    assert bundle.test.images.shape[-1] == 16


def test_grey_images_of_a_sensible_size_give_no_warning(tmp_path, tiny_settings):
    root = make_folder_data(tmp_path / "d", per_class=1, size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_data(tiny_settings(data=str(root), image_size=16))


def test_decode_converts_modes_to_grey(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb, "RGB").save(tmp_path / "red.png")
    notes = []
    with pytest.warns(UserWarning, match="converted 1 multi-channel"):
        chips = data.decode([(tmp_path / "red.png", 2)], 8, notes)
    expected = np.array(Image.fromarray(rgb, "RGB").convert("L"))
    assert torch.equal(chips.images[0, 0], torch.from_numpy(expected)) and chips.targets.tolist() == [2]


def test_16bit_chips_are_stretched_not_clipped(tmp_path):
    """A 16-bit chip must keep its contrast (a plain convert('L') turns it white)."""
    import numpy as np
    from PIL import Image
    from helpers.datasets.data import decode
    arr = np.linspace(0, 60000, 16 * 16).reshape(16, 16).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    notes = []
    with pytest.warns(UserWarning, match="16-bit"):
        chips = decode([(path, 0)], 16, notes)
    img = chips.images[0, 0].numpy()
    assert img.min() < 10 and img.max() > 245
    assert len(notes) == 1
