"""Finding the labeled chips of a data path, checked, before any of them is decoded.

Accepted layouts (for a path given as `data`):
  <root>/train/<0..9>/*.png            class-numbered folders (torchvision ImageFolder style),
  <root>/val/<0..9>/..., <root>/test/<0..9>/...   optional; if missing, data.py holds class-balanced
                                        val/test splits out of train;
  or <root>/train.csv (and val.csv, test.csv) with columns `path,label` (paths relative to the CSV);
  or the MAVOC archive as downloaded (root, or train_images/ itself): see helpers/datasets/archive.py, which
  also keeps one sensor (`modality`, by the SAR_/EO_ file prefix).
Files that are not images (by extension) are skipped with one counted warning; a wrong layout is a
DataError that names the problem and the expected form.
"""
from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

from torchvision import datasets

from . import archive

NUM_CLASSES = 10


class DataError(ValueError):
    """Bad input data; the message names the problem and the expected form."""


CLASS_LISTS = ("classes.txt", "class_names.txt")   # a class list shipped with an archive: one name a line, in order


def _class_list(split_dir: Path) -> Path | None:
    for folder in (split_dir, split_dir.parent, split_dir.parent.parent):
        for name in CLASS_LISTS:
            if (folder / name).is_file():
                return folder / name
    return None


def class_mapping(split_dir: Path, class_order: str = "") -> tuple[dict, str]:
    """({class folder name: class_id}, where the order came from) of a class-folder tree.

    Folders named 0-9 are those classes.  Folders named by class name are ordered by the
    `class_order` setting (comma-separated names) if given, else by a class list shipped with the
    archive (CLASS_LISTS), else sorted by name, as torchvision's ImageFolder does.
    """
    names = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"no class folders in {split_dir}; expected sub-folders named 0..9 (or by class name) holding image chips")
    numbered = [n for n in names if n.isdigit()]
    if numbered and len(numbered) < len(names):      # numbers and names mixed: a stray folder among 0-9
        stray = next(n for n in names if not n.isdigit())
        raise DataError(f"class folder {split_dir / stray} is not a class number 0-9; expected folders named 0, 1, ..., 9 "
                        f"(or every class folder named by its class name)")
    if numbered and not class_order:
        bad = [n for n in names if not 0 <= int(n) < NUM_CLASSES]
        if bad:
            raise DataError(f"class folder {split_dir / bad[0]} is not a class number 0-9; expected folders named 0, 1, ..., 9")
        return {n: int(n) for n in names}, "folder numbers"
    listed = _class_list(split_dir)
    if class_order:
        order, source = [s.strip() for s in class_order.split(",") if s.strip()], "the class_order setting"
    elif listed is not None:
        order = [s.strip() for s in listed.read_text(encoding="utf-8-sig").splitlines() if s.strip()]
        source = f"the archive's class list {listed.name}"
    else:
        order, source = names, "sorted folder names (as torchvision's ImageFolder)"
    if sorted(order) != names or len(order) != NUM_CLASSES:
        raise DataError(f"class folders of {split_dir} are {names}, but {source} gives {order}; "
                        f"expected the same {NUM_CLASSES} names, each once")
    return {n: order.index(n) for n in names}, source


def _scan_folder(split_dir: Path, modality: str, skipped: list, other: list, class_order: str = "") -> list[tuple[Path, int]]:
    """(path, label) pairs of a class-numbered folder tree, checked.

    Non-image files (by extension) are collected in `skipped`, the other sensor's chips in `other`
    (`scan` reports both once); hidden files such as .DS_Store are ignored silently.
    """
    classes, _ = class_mapping(split_dir, class_order)
    # torchvision's ImageFolder lists the files; class indices come from class_mapping, not its sort order.
    finder = type("NumberedFolder", (datasets.ImageFolder,), {"find_classes": staticmethod(lambda d: (list(classes), classes))})

    def is_image(p: str) -> bool:
        if Path(p).name.startswith("."):
            return False
        kind = archive.classify(Path(p).name, modality)   # the other sensor's chips are never decoded
        if kind == "other modality":
            other.append(p)
        elif kind == "non-image":
            skipped.append(p)
        return kind == "kept"

    samples = finder(str(split_dir), loader=lambda p: p, allow_empty=True, is_valid_file=is_image).samples
    found = {label for _, label in samples}
    for name, label in classes.items():
        if label not in found:
            raise DataError(f"class folder {split_dir / name} holds no images; expected image chips (.png, .jpg, .tif ...)")
    return [(Path(p), label) for p, label in samples]


def _scan_csv(csv_path: Path, modality: str, other: list) -> list[tuple[Path, int]]:
    """(path, label) pairs of a `path,label` CSV, checked; the other sensor's chips go to `other`."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:   # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not {"path", "label"} <= set(columns):
                raise DataError(f"{csv_path} has columns {columns}; expected a header with columns 'path,label'")
            reader.fieldnames = columns
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {csv_path} as CSV ({e}); expected a UTF-8 text file with a header 'path,label'") from None
    pairs = []
    for line, row in enumerate(rows, start=2):
        try:
            label = int(row["label"])
        except (TypeError, ValueError):
            label = -1
        if not 0 <= label < NUM_CLASSES:
            raise DataError(f"{csv_path} line {line}: label {row['label']!r} is not a class number 0-9")
        path = (csv_path.parent / (row["path"] or "").strip()).resolve()
        if not path.is_file():
            raise DataError(f"{csv_path} line {line}: image {row['path']!r} does not exist (paths are relative to the CSV)")
        if archive.classify(path.name, modality) == "other modality":
            other.append(path)
            continue
        pairs.append((path, label))
    if not pairs:
        raise DataError(f"{csv_path} lists no images; expected rows of 'path,label'")
    return pairs


def scan(root: Path, notes: list, modality: str = "sar", class_order: str = "") -> dict[str, list[tuple[Path, int]]]:
    """The labeled splits of a data path (course layout, MAVOC archive or CSV), chips of `modality` only.

    Raises DataError with the expected layout when it is wrong.  Prediction sets (valid_images/,
    test_images/) are not training data and are not listed: see archive.detect / archive.inventory.
    """
    try:
        archive.check_modality(modality)
        layout = archive.detect(Path(root), modality)
    except archive.ArchiveError as e:
        raise DataError(str(e)) from None
    root = layout.root
    splits, skipped, other = {}, [], []
    for split, where in layout.splits.items():
        splits[split] = (_scan_folder(where, modality, skipped, other, class_order) if where.is_dir()
                         else _scan_csv(where, modality, other))
    other_tree = archive.sensor_tree(layout.splits["train"].parent, [m for m in archive.MODALITIES if m != modality][0]) \
        if layout.kind == "archive-2023" else None
    if other_tree is not None:   # the 2023-2025 archive's other sensor: its own tree, never opened
        other += [Path(d) / f for d, _, files in os.walk(other_tree) for f in files]
    if other:   # the other sensor: left out by name, never opened
        notes.append(f"left out {len(other)} chip(s) of the other sensor (modality is {modality!r}; "
                     f"e.g. {Path(other[0]).name})")
    if skipped:   # one warning for the whole data folder
        notes.append(f"skipped {len(skipped)} non-image file(s) in {root} (e.g. {Path(skipped[0]).relative_to(root)})")
        warnings.warn(notes[-1], stacklevel=2)
    if "train" not in splits:
        raise DataError(f"no train/ folder or train.csv in {root}; expected {root}/train/<0..9>/*.png "
                        f"(class-numbered folders) or {root}/train.csv with columns path,label")
    missing = sorted(set(range(NUM_CLASSES)) - {label for _, label in splits["train"]})
    if missing:
        raise DataError(f"classes {missing} have no training images in {root}; all ten classes 0-9 are needed")
    return splits


def labelled_prediction_set(root, labels_csv, modality: str = "sar") -> tuple[str, list[tuple[Path, int]]]:
    """(name of the prediction set, its (path, label) pairs) for the chips `labels_csv` labels.

    `labels_csv` has columns image_id,class_id; its ids must all be chips of one flat prediction set of
    the data (valid_images/, test_images/): the set that holds them is used. A DataError names the
    first few ids that no set holds.
    """
    labels_csv = Path(labels_csv)
    try:
        layout = archive.detect(Path(root), modality)
        with open(labels_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not {"image_id", "class_id"} <= set(columns):
                raise DataError(f"{labels_csv} has columns {columns}; expected a header with columns 'image_id,class_id'")
            reader.fieldnames = columns
            rows = [(int(r["image_id"]), int(r["class_id"])) for r in reader]
    except DataError:
        raise
    except archive.ArchiveError as e:
        raise DataError(str(e)) from None
    except FileNotFoundError:
        raise DataError(f"test_labels {labels_csv} does not exist; expected a CSV with columns image_id,class_id") from None
    except (ValueError, TypeError, csv.Error):
        raise DataError(f"{labels_csv}: every image_id and class_id must be a whole number (header image_id,class_id)") from None
    if not rows:
        raise DataError(f"{labels_csv} lists no chips; expected one row image_id,class_id per labelled chip")
    bad = sorted({c for _, c in rows if not 0 <= c < NUM_CLASSES})
    if bad:
        raise DataError(f"{labels_csv}: class_id must be 0-9, found {bad[:5]}")
    if not layout.prediction_sets:
        raise DataError(f"test_labels needs a flat prediction set beside the training chips (valid_images/ or "
                        f"test_images/ in {layout.root}); none was found")
    ids = {}
    for name, folder in layout.prediction_sets.items():
        chips, _ = archive.flat_chips(folder, modality)
        ids[name] = {archive.image_id(p): p for p in chips}
    wanted = [i for i, _ in rows]
    name = max(ids, key=lambda n: len(set(wanted) & set(ids[n])))
    missing = [i for i in wanted if i not in ids[name]]
    if missing:
        raise DataError(f"{labels_csv}: {len(missing)} image_id(s) are not {modality} chips of {name}/ "
                        f"(e.g. {', '.join(map(str, missing[:5]))}); every id must name a chip of one prediction set")
    return name, [(ids[name][i], c) for i, c in rows]
