"""The MAVOC archive's layout, read as it is: where the splits are, which sensor a chip is, what is left out.

The NTIRE 2021 MAVOC archive (and its PBVS successors) is laid out as

    train_images/0/ ... train_images/9/    SAR_<id>.png and EO_<id>.png in the same class folder
    valid_images/                          flat, unlabeled SAR_<id>.png and EO_<id>.png
    test_images/                           flat, unlabeled

The PBVS 2023-2025 (MAVIC-C) archive is laid out as

    train/SAR_Train/<class>/ and train/EO_Train/<class>/   SAR/EO pairs under the same file name,
                                                          class folders named by number or by name
    test/                                                 flat, unlabeled Gotcha<id>.png chips
    <a reference CSV>                                     image_id, class_id and an OOD flag (data_files)

`data` may point at either archive's root, at train_images/ itself, at the course's own layout
(<root>/train/<0..9>/, optional val/ and test/), or at a CSV of `path,label` rows.  The
`modality` setting ("sar" or "eo") keeps one sensor, by the file prefix or, in the 2023-2025
layout, by the SAR_Train / EO_Train folder; the other sensor's files are left out before anything
is decoded.  Flat unlabeled folders are prediction sets, never training data: validation and test
are then held out of the training chips.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from torchvision import datasets

IMAGE_EXTENSIONS = datasets.folder.IMG_EXTENSIONS
PREFIXES = {"sar": "SAR_", "eo": "EO_"}
MODALITIES = tuple(PREFIXES)
TRAIN_NAMES = ("train", "train_images")
PREDICTION_SETS = ("valid_images", "test_images")
SENSOR_TREES = {"sar": "SAR_Train", "eo": "EO_Train"}   # the 2023-2025 archive's train/ sub-folders
FLAT_SETS = ("test", "val", "valid", "validation")      # its flat folders of unlabeled chips


class ArchiveError(ValueError):
    """Raised as data.DataError by the callers; kept separate so this module imports nothing of data.py."""


@dataclass
class Layout:
    """Where the labeled splits and the unlabeled prediction sets of a data path are."""

    kind: str                                   # "archive", "archive-2023", "folders" or "csv"
    root: Path                                  # the folder the splits are relative to
    splits: dict = field(default_factory=dict)  # "train"/"val"/"test" -> a class-folder tree or a CSV file
    prediction_sets: dict = field(default_factory=dict)   # "valid_images"/"test_images"/"test" ... -> flat folder
    ood: dict = field(default_factory=dict)     # "val"/"test" -> a flat folder of OOD chips (built-in synthetic-sar)


def _is_class_tree(folder: Path) -> bool:
    subdirs = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bool(subdirs) and all(n.isdigit() for n in subdirs)


def _is_flat(folder: Path) -> bool:
    return folder.is_dir() and not any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def _prediction_sets(folder: Path) -> dict:
    return {name: folder / name for name in PREDICTION_SETS if (folder / name).is_dir()}


def _ood_folders(folder: Path) -> dict:
    return {split: folder / f"ood_{split}" for split in ("val", "test") if _is_flat(folder / f"ood_{split}")}


def sensor_tree(train: Path, modality: str) -> Path | None:
    """The 2023-2025 archive's class tree of `modality` under `train` (train/SAR_Train/ ...), or None."""
    for name in (SENSOR_TREES[modality], SENSOR_TREES[modality].lower()):
        if (train / name).is_dir():
            return train / name
    return None


def _detect_2023(path: Path, modality: str) -> Layout | None:
    """The 2023-2025 layout rooted at `path` (or at its parent, for train/ itself), or None."""
    for root in (path, path.parent):
        train = root / "train"
        if train.is_dir() and any(sensor_tree(train, m) for m in MODALITIES):
            tree = sensor_tree(train, modality)
            if tree is None:
                raise ArchiveError(f"{train} has no {SENSOR_TREES[modality]}/ folder for modality {modality!r} "
                                   f"(it holds {', '.join(sorted(p.name for p in train.iterdir() if p.is_dir()))})")
            flat = {name: root / name for name in FLAT_SETS if _is_flat(root / name)}
            return Layout("archive-2023", root, {"train": tree}, flat)
    return None


def detect(path, modality: str = "sar") -> Layout:
    """The layout of `path` (either archive's root, train_images/, course layout or CSV); ArchiveError if none fits."""
    path = Path(path)
    expected = (f"expected {path}/train/<0..9>/*.png (class-numbered folders) or {path}/train.csv with columns "
                f"path,label, or the MAVOC archive root holding train_images/<0..9>/, or train_images/ itself")
    if not path.exists():
        raise ArchiveError(f"data path {path} does not exist; {expected}")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise ArchiveError(f"data path {path} is a file, not a folder or a CSV; give the folder that holds train/ "
                               f"(or train.csv, or train_images/), or a CSV with columns path,label")
        splits = {"train": path}
        if path.name == "train.csv":   # its siblings val.csv / test.csv, as for a folder of CSVs
            splits.update({s: path.with_name(f"{s}.csv") for s in ("val", "test") if path.with_name(f"{s}.csv").is_file()})
        return Layout("csv", path.parent, splits)
    newer = _detect_2023(path, check_modality(modality))
    if newer is not None:
        return newer
    splits = {}
    for split in ("train", "val", "test"):
        if (path / split).is_dir():
            splits[split] = path / split
        elif (path / f"{split}.csv").is_file():
            splits[split] = path / f"{split}.csv"
    if "train" in splits:
        return Layout("folders" if splits["train"].is_dir() else "csv", path, splits, _prediction_sets(path),
                      _ood_folders(path))
    if (path / "train_images").is_dir():
        return Layout("archive", path, {"train": path / "train_images"}, _prediction_sets(path))
    if path.name in TRAIN_NAMES or _is_class_tree(path):
        # train_images/ itself (or any class-numbered tree): its prediction sets are its siblings.
        return Layout("archive" if path.name == "train_images" else "folders", path.parent, {"train": path},
                      _prediction_sets(path.parent) if path.name == "train_images" else {})
    raise ArchiveError(f"no train/ folder or train.csv in {path} (nor train_images/); {expected}")


# ---------------------------------------------------------------- sorting files by sensor
def modality_of(name: str) -> str | None:
    """'sar' for SAR_..., 'eo' for EO_..., None for a name without a sensor prefix."""
    for modality, prefix in PREFIXES.items():
        if name.upper().startswith(prefix):
            return modality
    return None


def classify(name: str, modality: str) -> str:
    """'kept', 'other modality', 'non-image' or 'hidden' for a file name."""
    if name.startswith("."):
        return "hidden"
    if not name.lower().endswith(IMAGE_EXTENSIONS):
        return "non-image"
    found = modality_of(name)
    return "other modality" if found is not None and found != modality else "kept"


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise ArchiveError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    return modality


def image_id(path) -> int:
    """The scorer's image_id: the number in the file name (SAR_1234.png, Gotcha1234.png, 1234.png -> 1234)."""
    stem = Path(path).stem
    numbers = re.findall(r"\d+", stem)
    if len(numbers) != 1:
        raise ArchiveError(f"cannot read an image id from {Path(path).name!r}: expected exactly one number in the "
                           f"name, as in SAR_1234.png or Gotcha1234.png (image_id 1234)")
    return int(numbers[0])


def flat_chips(folder, modality: str) -> tuple[list[Path], dict]:
    """The chips of `modality` in a flat (unlabeled) folder, sorted by id, and counts of what was left out."""
    folder = Path(folder)
    kept, left = [], {"other modality": 0, "non-image": 0, "folders": 0}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir():
            left["folders"] += 1
            continue
        kind = classify(entry.name, modality)
        if kind == "kept":
            kept.append(Path(entry.path))
        elif kind in left:
            left[kind] += 1
    return kept, left


# ---------------------------------------------------------------- what was found, what was left out
def _count_tree(folder: Path, modality: str) -> dict:
    counts = {"kept": 0, "other modality": 0, "non-image": 0, "example left out": ""}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in os.scandir(class_dir):
            kind = classify(entry.name, modality)
            if kind in counts:
                counts[kind] += 1
                if kind != "kept" and not counts["example left out"]:
                    counts["example left out"] = f"{class_dir.name}/{entry.name}"
    return counts


def inventory(path, modality: str = "sar"):
    """One row per split and prediction set: its folder, the chips kept, and what was left out (and why)."""
    import pandas as pd
    check_modality(modality)
    layout = detect(path, modality)
    rows = []
    for split, where in layout.splits.items():
        row = {"split": split, "role": "labeled (training data)", "where": str(where)}
        if where.is_dir():
            row.update(_count_tree(where, modality))
            other = [m for m in MODALITIES if m != modality][0]
            other_tree = sensor_tree(where.parent, other) if layout.kind == "archive-2023" else None
            if other_tree is not None:   # the other sensor's own tree: counted by name, never opened
                row["other modality"] += sum(len(files) for _, _, files in os.walk(other_tree))
                row["example left out"] = row["example left out"] or f"{other_tree.name}/..."
        else:
            row.update({"kept": None, "other modality": None, "non-image": None, "example left out": "(CSV)"})
        rows.append(row)
    for name, folder in layout.prediction_sets.items():
        kept, left = flat_chips(folder, modality)
        rows.append({"split": name, "role": "unlabeled (prediction set)", "where": str(folder), "kept": len(kept),
                     "other modality": left["other modality"], "non-image": left["non-image"], "example left out": ""})
    for split, folder in layout.ood.items():
        kept, left = flat_chips(folder, modality)
        rows.append({"split": f"OOD {split}", "role": "out of distribution (none of the 10 classes)", "where": str(folder),
                     "kept": len(kept), "other modality": left["other modality"], "non-image": left["non-image"],
                     "example left out": ""})
    table = pd.DataFrame(rows).set_index("split")
    table.attrs.update(kind=layout.kind, modality=modality)
    return table


# ---------------------------------------------------------------- SAR and EO mixed without prefixes
class ChannelGuard:
    """Stops loading when one folder holds chips of different channel counts (SAR grey, EO colour)."""

    def __init__(self):
        self.seen = {}   # folder -> {channels: example path}

    def check(self, path, img) -> None:
        path = Path(path)
        bands = len(img.getbands())
        by_count = self.seen.setdefault(path.parent, {})
        by_count.setdefault(bands, path)
        if len(by_count) > 1:
            (n1, p1), (n2, p2) = sorted(by_count.items())[:2]
            raise ArchiveError(
                f"folder {path.parent} mixes chips with {n1} and {n2} channel(s) (e.g. {p1.name} and {p2.name}): "
                f"SAR (grey) and EO (colour) chips must not be mixed; name them SAR_<id>.png / EO_<id>.png so the "
                f"modality setting keeps one, or keep one sensor per folder")
