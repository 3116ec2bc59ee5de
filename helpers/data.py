"""Loading chips: the built-in data sets and a user's own MAVOC copy go through the same code.

Accepted layouts (for a path given as `data`):
  <root>/train/<0..9>/*.png            class-numbered folders (torchvision ImageFolder style),
  <root>/val/<0..9>/..., <root>/test/<0..9>/...   optional; if missing, class-balanced val/test
                                        splits are held out from train;
  or <root>/train.csv (and val.csv, test.csv) with columns `path,label` (paths relative to the CSV);
  or the MAVOC archive as downloaded (root, or train_images/ itself): see helpers/archive.py, which
  also keeps one sensor (`modality`, by the SAR_/EO_ file prefix) before anything is decoded.
Chips are decoded once, converted to single channel, resized to `image_size` and kept in memory
as uint8 tensors (SAR chips are small), so the training loop never waits for the disk.
Files that are not images (by extension) are skipped with one counted warning; a corrupt image
is an error that names the file.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets
from tqdm.auto import tqdm

from . import archive, digits_lt, synthetic_sar
from .augment import eval_transform, flip_keeps_label, train_transform
from .paths import data_cache, resolve_path

BUILT_IN = ("synthetic-sar", "digits-lt")
IMAGE_EXTENSIONS = datasets.folder.IMG_EXTENSIONS
NUM_CLASSES = 10


class DataError(ValueError):
    """Bad input data; the message names the problem and the expected form."""


@dataclass
class ChipSet(torch.utils.data.Dataset):
    """Decoded chips (uint8, N x 1 x S x S) with labels; `transform` runs per item on float tensors."""

    images: torch.Tensor
    targets: torch.Tensor
    paths: list
    transform: object = None

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        x = self.images[i].float().div_(255)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])

    def with_transform(self, transform) -> "ChipSet":
        return ChipSet(self.images, self.targets, self.paths, transform)


@dataclass
class DataBundle:
    name: str
    root: Path
    train: ChipSet
    val: ChipSet
    test: ChipSet
    class_names: list
    mean: float
    std: float
    notes: list = field(default_factory=list)
    hflip: bool = True               # does a left-right flip keep the label? (augmentation and TTA use it)

    def class_counts(self, split: str = "train") -> np.ndarray:
        return np.bincount(getattr(self, split).targets.numpy(), minlength=NUM_CLASSES)


# ---------------------------------------------------------------- discovering files
def _class_of(folder: Path) -> int:
    if not (folder.name.isdigit() and 0 <= int(folder.name) < NUM_CLASSES):
        raise DataError(f"class folder {folder} is not a class number 0-9; expected folders named 0, 1, ..., 9")
    return int(folder.name)


def _scan_folder(split_dir: Path, notes: list, skipped: list | None = None,
                 modality: str = "sar", other: list | None = None) -> list[tuple[Path, int]]:
    """(path, label) pairs of a class-numbered folder tree, checked.

    Non-image files (by extension) are collected in `skipped` (warned about once by `scan`);
    hidden files such as .DS_Store are ignored silently.
    """
    class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"no class folders in {split_dir}; expected sub-folders named 0..9 holding image chips")
    classes = {d.name: _class_of(d) for d in class_dirs}
    # torchvision's ImageFolder lists the files; class indices are the folder *numbers*, not sort order.
    finder = type("NumberedFolder", (datasets.ImageFolder,), {"find_classes": staticmethod(lambda d: (list(classes), classes))})
    own_warning = skipped is None
    skipped = [] if skipped is None else skipped

    def is_image(p: str) -> bool:
        if Path(p).name.startswith("."):
            return False
        kind = archive.classify(Path(p).name, modality)   # the other sensor's chips are never decoded
        if kind == "other modality" and other is not None:
            other.append(p)
        elif kind == "non-image":
            skipped.append(p)
        return kind == "kept"

    samples = finder(str(split_dir), loader=lambda p: p, allow_empty=True, is_valid_file=is_image).samples
    if own_warning and skipped:
        notes.append(f"skipped {len(skipped)} non-image file(s) in {split_dir} (e.g. {Path(skipped[0]).name})")
        warnings.warn(notes[-1], stacklevel=3)
    found = {label for _, label in samples}
    for name, label in classes.items():
        if label not in found:
            raise DataError(f"class folder {split_dir / name} holds no images; expected image chips (.png, .jpg, .tif ...)")
    return [(Path(p), label) for p, label in samples]


def _scan_csv(csv_path: Path, modality: str = "sar", other: list | None = None) -> list[tuple[Path, int]]:
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
            if other is not None:
                other.append(path)
            continue
        pairs.append((path, label))
    if not pairs:
        raise DataError(f"{csv_path} lists no images; expected rows of 'path,label'")
    return pairs


def scan(root: Path, notes: list, modality: str = "sar") -> dict[str, list[tuple[Path, int]]]:
    """The labeled splits of a data path (course layout, MAVOC archive or CSV), chips of `modality` only.

    Raises DataError with the expected layout when it is wrong.  Prediction sets (valid_images/,
    test_images/) are not training data and are not listed: see archive.detect / archive.inventory.
    """
    try:
        layout = archive.detect(Path(root))
        archive.check_modality(modality)
    except archive.ArchiveError as e:
        raise DataError(str(e)) from None
    root = layout.root
    splits, skipped, other = {}, [], []
    for split, where in layout.splits.items():
        splits[split] = (_scan_folder(where, notes, skipped, modality, other) if where.is_dir()
                         else _scan_csv(where, modality, other))
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


# ---------------------------------------------------------------- decoding
def _stretch_to_8bit(img: Image.Image) -> Image.Image:
    """16-bit or float chips: a plain convert("L") would clip everything above 255 to white."""
    arr = np.asarray(img, dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    return Image.fromarray(((arr - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8))


def decode(pairs, image_size: int, notes: list, desc: str = "") -> ChipSet:
    """Decode, convert to one channel, resize; a corrupt file is an error that names it.

    Multi-channel images and images far from `image_size` are each reported in one counted warning.
    """
    images = torch.empty((len(pairs), 1, image_size, image_size), dtype=torch.uint8)
    converted, far, deep = [], [], []
    channels = archive.ChannelGuard()
    for i, (path, _) in enumerate(tqdm(pairs, desc=f"loading {desc}", leave=False, disable=len(pairs) < 2000)):
        try:
            with Image.open(path) as img:
                img.load()
                channels.check(path, img)
                if img.mode not in ("L", "I;16", "I", "F"):
                    converted.append((path, img.mode))
                if max(img.size) > 4 * image_size or max(img.size) < image_size / 4:
                    far.append((path, img.size))
                if img.mode in ("I;16", "I;16B", "I", "F"):
                    deep.append(path)
                    img = _stretch_to_8bit(img)
                img = img.convert("L").resize((image_size, image_size), Image.BILINEAR)
        except archive.ArchiveError as e:
            raise DataError(str(e)) from None
        except Exception as e:   # PIL raises many types (OSError, SyntaxError, ValueError, DecompressionBombError ...)
            raise DataError(f"cannot read image {path} ({type(e).__name__}: {e}); the file is corrupt or truncated, "
                            f"remove or replace it") from None
        images[i, 0] = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    if converted:
        notes.append(f"converted {len(converted)} multi-channel image(s) to single channel, as SAR chips are "
                     f"(e.g. {converted[0][0]} is {converted[0][1]})")
        warnings.warn(notes[-1], stacklevel=2)
    if deep:
        notes.append(f"stretched {len(deep)} 16-bit/float image(s) to 8 bits, each by its own min-max "
                     f"(e.g. {deep[0]})")
        warnings.warn(notes[-1], stacklevel=2)
    if far:
        (w, h) = far[0][1]
        notes.append(f"{len(far)} image(s) are far from the configured image_size {image_size} px (over 4x larger or "
                     f"smaller, e.g. {far[0][0]} is {w}x{h}); they are resized, check the image_size setting")
        warnings.warn(notes[-1], stacklevel=2)
    targets = torch.tensor([label for _, label in pairs], dtype=torch.long)
    return ChipSet(images, targets, [str(p) for p, _ in pairs])


def _hold_out(pairs, per_class: int, rng) -> tuple[list, list]:
    """Take a class-balanced split out of `pairs` (at most a fifth of any class)."""
    held, rest = [], []
    labels = np.array([label for _, label in pairs])
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(per_class, len(idx) // 5)
        held += [pairs[i] for i in idx[:k]]
        rest += [pairs[i] for i in idx[k:]]
    return held, rest


def built_in_root(settings) -> Path:
    if settings.data == "synthetic-sar":
        name = f"synthetic-sar-n{settings.data_size}-v{settings.val_per_class}-t{settings.test_per_class}-s{settings.data_seed}"
        return synthetic_sar.generate(data_cache() / name, settings.data_size, settings.val_per_class,
                                      settings.test_per_class, settings.data_seed)
    name = f"digits-lt-r{settings.digits_imbalance:g}-v{settings.val_per_class}-t{settings.test_per_class}-s{settings.data_seed}"
    return digits_lt.generate(data_cache() / name, settings.val_per_class, settings.test_per_class,
                              settings.digits_imbalance, settings.data_seed)


def class_names(settings) -> list[str]:
    """The class names of `settings.data` (known before any chip is decoded)."""
    if settings.data in BUILT_IN:
        return list(synthetic_sar.CLASS_NAMES if settings.data == "synthetic-sar" else digits_lt.CLASS_NAMES)
    return [f"class {i}" for i in range(NUM_CLASSES)]


def load_data(settings) -> DataBundle:
    """The train/val/test chips of `settings.data` (a built-in name or a path), with their transforms."""
    notes = []
    if settings.data in BUILT_IN:
        root = built_in_root(settings)
    else:
        root = resolve_path(settings.data)
        if not root.exists():
            raise DataError(f"data {settings.data!r} is neither a built-in data set ({', '.join(BUILT_IN)}) nor an existing "
                            f"path ({root} does not exist); expected a folder with train/<0..9>/ image folders or train.csv")
    splits = scan(root, notes, settings.modality)
    rng = np.random.default_rng(settings.data_seed)
    if "test" not in splits:
        splits["test"], splits["train"] = _hold_out(splits["train"], settings.test_per_class, rng)
        notes.append(f"no test split in {root}: held out {len(splits['test'])} class-balanced training images")
    if "val" not in splits:
        splits["val"], splits["train"] = _hold_out(splits["train"], settings.val_per_class, rng)
        notes.append(f"no val split in {root}: held out {len(splits['val'])} class-balanced training images")
    # All splits are decoded in one pass, so a conversion or size warning is said once, with one count.
    order = ("train", "val", "test")
    chips = decode([pair for s in order for pair in splits[s]], settings.image_size, notes, desc="images")
    sets, start = {}, 0
    for s in order:
        end = start + len(splits[s])
        sets[s] = ChipSet(chips.images[start:end], chips.targets[start:end], chips.paths[start:end])
        start = end
    pixels = sets["train"].images.float().div_(255)
    mean, std = float(pixels.mean()), float(pixels.std()) or 1.0
    hflip = flip_keeps_label(settings.data)
    return DataBundle(name=settings.data, root=root, class_names=class_names(settings), mean=mean, std=std, notes=notes,
                      hflip=hflip,
                      train=sets["train"].with_transform(train_transform(settings.image_size, mean, std, hflip)),
                      val=sets["val"].with_transform(eval_transform(mean, std)),
                      test=sets["test"].with_transform(eval_transform(mean, std)))
