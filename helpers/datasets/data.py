"""Loading chips: the built-in data sets and a user's own MAVOC copy go through the same code.

data_files.scan finds and checks the labeled chips of a path (course layout, CSV or the MAVOC
archive; its docstring lists them). Here, missing val/test splits are held out of train,
class-balanced. Chips are decoded once, converted to single channel, resized to `image_size` and
kept in memory as uint8 tensors (SAR chips are small), so the training loop never waits for the
disk. A corrupt image is an error that names the file.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from . import archive, digits_lt, ood_sets, synthetic_sar
from .augment import eval_transform, flip_keeps_label, train_transform
from .data_files import NUM_CLASSES, DataError, class_mapping, labelled_prediction_set, scan  # noqa: F401  (DataError: callers import it from here)
from ..settings.paths import data_cache, resolve_path

BUILT_IN = ("synthetic-sar", "digits-lt")


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
    ood_val: ChipSet | None = None   # chips of none of the 10 classes that choose the OOD score (helpers/datasets/ood_sets.py)
    ood_test: ChipSet | None = None  # ... and those that measure it
    ood_note: str = ""               # where the OOD chips came from, or why there are none
    class_folders: dict = field(default_factory=dict)   # class folder name -> class_id (named folders)
    class_source: str = ""           # where that order came from

    @property
    def has_ood(self) -> bool:
        return self.ood_test is not None and len(self.ood_test) > 0

    def class_counts(self, split: str = "train") -> np.ndarray:
        return np.bincount(getattr(self, split).targets.numpy(), minlength=NUM_CLASSES)


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


# The hold-out rule, stated in the audit: a class gives a fifth of its chips (at most the profile's
# per-class count) and, when that rounds to none, still one, as long as one stays in training.
HOLD_OUT_RULE = ("each class gives a fifth of its chips, at most `{key}` ({n}), to the {split} split; a class "
                 "whose fifth rounds to 0 still gives 1 chip if one is left in training")


def hold_out_count(n: int, per_class: int) -> int:
    """Chips a class of `n` gives to a held-out split: a fifth, at most `per_class`, at least 1 while 1 stays."""
    if n < 2 or per_class <= 0:
        return 0
    return min(per_class, max(1, n // 5), n - 1)


def _hold_out(pairs, per_class: int, rng) -> tuple[list, list]:
    """Take a class-balanced split out of `pairs` (`hold_out_count` chips of each class)."""
    held, rest = [], []
    labels = np.array([label for _, label in pairs])
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = hold_out_count(len(idx), per_class)
        held += [pairs[i] for i in idx[:k]]
        rest += [pairs[i] for i in idx[k:]]
    return held, rest


def unmeasured_notes(splits) -> list[str]:
    """One line for each class that the test (or validation) split does not hold."""
    def counts(split):
        return np.bincount([label for _, label in splits.get(split, [])], minlength=NUM_CLASSES)
    train, val, test = counts("train"), counts("val"), counts("test")
    notes = []
    for c in range(NUM_CLASSES):
        chips = f"{train[c] + val[c] + test[c]} chip{'s' if train[c] + val[c] + test[c] != 1 else ''}"
        if test[c] == 0:
            where = "in training only" if val[c] == 0 else "in training and validation only"
            notes.append(f"class {c} has {chips}: it is {where}; its accuracy is not measured")
        elif val[c] == 0:
            notes.append(f"class {c} has {chips}: none is left for validation; its validation accuracy is not measured")
    return notes


def built_in_root(settings) -> Path:
    if settings.data == "synthetic-sar":
        name = f"synthetic-sar-n{settings.data_size}-v{settings.val_per_class}-t{settings.test_per_class}-s{settings.data_seed}"
        return synthetic_sar.generate(data_cache() / name, settings.data_size, settings.val_per_class,
                                      settings.test_per_class, settings.data_seed)
    name = f"digits-lt-r{settings.digits_imbalance:g}-v{settings.val_per_class}-t{settings.test_per_class}-s{settings.data_seed}"
    return digits_lt.generate(data_cache() / name, settings.val_per_class, settings.test_per_class,
                              settings.digits_imbalance, settings.data_seed)


def named_classes(settings, root=None) -> tuple[dict, str]:
    """({class folder name: class_id}, where the order came from) of a data path whose training class
    folders are named by name; ({}, "") for built-in data, numbered folders and CSVs."""
    if settings.data in BUILT_IN:
        return {}, ""
    try:
        train = archive.detect(root or resolve_path(settings.data), settings.modality).splits.get("train")
    except archive.ArchiveError as e:
        raise DataError(str(e)) from None
    if train is None or not train.is_dir():
        return {}, ""
    mapping, source = class_mapping(train, settings.class_order)
    return ({}, "") if source == "folder numbers" else (mapping, source)


def class_names(settings, root=None, mapping: dict | None = None) -> list[str]:
    """The class names of `settings.data` (known before any chip is decoded); `mapping`: its
    `named_classes` when the caller has it already."""
    if settings.data in BUILT_IN:
        return list(synthetic_sar.CLASS_NAMES if settings.data == "synthetic-sar" else digits_lt.CLASS_NAMES)
    mapping = named_classes(settings, root)[0] if mapping is None else mapping
    if mapping:
        return [name for name, _ in sorted(mapping.items(), key=lambda kv: kv[1])]
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
    splits = scan(root, notes, settings.modality, settings.class_order)
    folders, source = named_classes(settings, root)
    names = class_names(settings, root, folders)
    ood = ood_sets.find(settings, root, names)
    if ood.labelled_val is not None and "val" not in splits:
        splits["val"] = ood.labelled_val
        notes.append(ood.note)
    rng = np.random.default_rng(settings.data_seed)
    if settings.test_labels:
        if settings.data in BUILT_IN:
            raise DataError(f"test_labels is for a data path with a flat prediction set, not the built-in {settings.data!r}")
        labels = resolve_path(settings.test_labels)
        name, splits["test"] = labelled_prediction_set(root, labels, settings.modality)
        notes.append(f"test split: the {len(splits['test'])} labelled chips of {name}/ (test_labels {labels.name})")
    if "test" not in splits:
        splits["test"], splits["train"] = _hold_out(splits["train"], settings.test_per_class, rng)
        notes.append(f"no test split in {root}: held out {len(splits['test'])} class-balanced training images")
    if "val" not in splits:
        splits["val"], splits["train"] = _hold_out(splits["train"], settings.val_per_class, rng)
        notes.append(f"no val split in {root}: held out {len(splits['val'])} class-balanced training images")
    notes += unmeasured_notes(splits)
    # All splits are decoded in one pass, so a conversion or size warning is said once, with one count.
    splits["ood_val"], splits["ood_test"] = [(p, -1) for p in ood.val], [(p, -1) for p in ood.test]
    order = ("train", "val", "test", "ood_val", "ood_test")
    chips = decode([pair for s in order for pair in splits[s]], settings.image_size, notes, desc="images")
    sets, start = {}, 0
    for s in order:
        end = start + len(splits[s])
        sets[s] = ChipSet(chips.images[start:end], chips.targets[start:end], chips.paths[start:end])
        start = end
    pixels = sets["train"].images.float().div_(255)
    mean, std = float(pixels.mean()), float(pixels.std()) or 1.0
    hflip = flip_keeps_label(settings.data)
    evaluated = lambda s: sets[s].with_transform(eval_transform(mean, std)) if len(sets[s]) else None
    return DataBundle(name=settings.data, root=root, class_names=names, mean=mean, std=std, notes=notes,
                      hflip=hflip, ood_val=evaluated("ood_val"), ood_test=evaluated("ood_test"), ood_note=ood.note,
                      class_folders=folders, class_source=source,
                      train=sets["train"].with_transform(train_transform(settings.image_size, mean, std, hflip)),
                      val=sets["val"].with_transform(eval_transform(mean, std)),
                      test=sets["test"].with_transform(eval_transform(mean, std)))
