"""Out-of-distribution (OOD) chips of a data path: targets of none of the 10 classes (PBVS 2023-2025).

* built-in `synthetic-sar`: the flat folders ood_val/ and ood_test/ beside val/ and test/, vehicles of
  other outlines and sizes drawn by the same sensor model (helpers/datasets/synthetic_sar.py);
* the 2023-2025 archive: a reference CSV at the archive root with columns image_id, a class column and
  an OOD flag (REFERENCE_COLUMNS), whose ids name chips of one of its flat folders.  Its
  in-distribution rows are the labelled validation split; its OOD rows are the OOD chips, split in two
  halves by `data_seed`: one chooses the OOD score (with validation), the other measures it (with test),
  so that no number is measured on the chips that chose it;
* anything else (digits-lt, the 2021 archive, a folder of your own): no OOD set, said in one line.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import archive
from .data_files import NUM_CLASSES, DataError

OOD_COLUMNS = ("ood", "is_ood", "ood_flag", "out_of_distribution")
CLASS_COLUMNS = ("class_id", "class", "label")
TRUE, FALSE = {"1", "true", "yes", "y", "ood"}, {"0", "false", "no", "n", "", "id"}
NO_OOD = {"digits-lt": "digits-lt has no OOD set: every digit is one of its 10 classes, so no OOD measure is taken"}


@dataclass
class OODChips:
    val: list = field(default_factory=list)        # OOD chips that choose the score
    test: list = field(default_factory=list)       # OOD chips that measure it
    labelled_val: list | None = None               # (path, class) of a reference CSV's in-distribution rows
    note: str = ""                                 # where they came from, or why there are none


def find_reference(root: Path) -> Path | None:
    """The first CSV at `root` with an image_id column and an OOD flag column, or None."""
    for path in sorted(Path(root).glob("*.csv")):
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = {c.strip().lower() for c in next(csv.reader(f), [])}
        if "image_id" in header and header & set(OOD_COLUMNS):
            return path
    return None


def _flag(value: str, where: str) -> bool:
    v = (value or "").strip().lower()
    if v in TRUE | FALSE:
        return v in TRUE
    raise DataError(f"{where}: OOD flag {value!r} is not 0/1 (or true/false)")


def _class(value: str, names: list, where: str) -> int:
    v = (value or "").strip()
    if v.lstrip("-").isdigit() and 0 <= int(v) < NUM_CLASSES:
        return int(v)
    if v in names:
        return names.index(v)
    raise DataError(f"{where}: class {value!r} is neither a class number 0-9 nor one of the class names {names}")


def read_reference(path: Path, layout, modality: str, names: list) -> tuple[str, list, list]:
    """(the flat folder its ids name, [(path, class)] of its in-distribution rows, [path] of its OOD rows)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"{path} lists no chips; expected rows image_id,class_id,ood")
    columns = {c.strip().lower(): c for c in rows[0]}
    ood_col = columns[next(c for c in OOD_COLUMNS if c in columns)]
    class_col = next((columns[c] for c in CLASS_COLUMNS if c in columns), None)
    if class_col is None:
        raise DataError(f"{path} has no class column; expected one of {', '.join(CLASS_COLUMNS)} beside image_id and {ood_col}")
    chips = {name: {archive.image_id(p): p for p in archive.flat_chips(folder, modality)[0]}
             for name, folder in layout.prediction_sets.items()}
    if not chips:
        raise DataError(f"{path}: the archive {layout.root} has no flat folder of chips for its ids (val/, test/ ...)")
    try:
        ids = [int(r[columns["image_id"]]) for r in rows]
    except (TypeError, ValueError):
        raise DataError(f"{path}: every image_id must be a whole number") from None
    name = max(chips, key=lambda n: len(set(ids) & set(chips[n])))
    missing = [i for i in ids if i not in chips[name]]
    if missing:
        raise DataError(f"{path}: {len(missing)} image_id(s) are not {modality} chips of {name}/ "
                        f"(e.g. {', '.join(map(str, missing[:5]))}); every id must name a chip of one folder")
    labelled, ood = [], []
    for line, (i, r) in enumerate(zip(ids, rows), start=2):
        where = f"{path.name} line {line}"
        if _flag(r[ood_col], where):
            ood.append(chips[name][i])
        else:
            labelled.append((chips[name][i], _class(r[class_col], names, where)))
    return name, labelled, ood


def _halves(paths: list, seed: int) -> tuple[list, list]:
    order = np.random.default_rng([seed, 7]).permutation(len(paths))
    half = len(paths) // 2
    return [paths[i] for i in order[:half]], [paths[i] for i in order[half:]]


def find(settings, root: Path, names: list) -> OODChips:
    """The OOD chips (and a reference CSV's labelled validation chips) of `settings.data` at `root`."""
    if settings.data in NO_OOD:
        return OODChips(note=NO_OOD[settings.data])
    try:
        layout = archive.detect(root, settings.modality)
    except archive.ArchiveError as e:
        raise DataError(str(e)) from None
    if layout.ood:
        found = {s: archive.flat_chips(f, settings.modality)[0] for s, f in layout.ood.items()}
        return OODChips(found.get("val", []), found.get("test", []),
                        note=f"OOD chips: {len(found.get('val', []))} in ood_val/ (choose the score), "
                             f"{len(found.get('test', []))} in ood_test/ (measure it)")
    reference = find_reference(layout.root) if layout.kind == "archive-2023" else None
    if reference is None:
        return OODChips(note="no OOD set: the data has no OOD chips (no reference CSV with an OOD flag), so no OOD "
                             "measure is taken; the submission's score is the default OOD score")
    name, labelled, ood = read_reference(reference, layout, settings.modality, names)
    val, test = _halves(ood, settings.data_seed)
    return OODChips(val, test, labelled,
                    note=f"{reference.name}: {len(labelled)} labelled chips of {name}/ are the validation split; its "
                         f"{len(ood)} OOD chips are split {len(val)} (choose the score) / {len(test)} (measure it)")
