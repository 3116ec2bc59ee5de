"""The data audit (notebook 00): what is on disk, how skewed the classes are, what the chips look like.

Unlike `load_data`, the audit counts a corrupt file instead of raising, so it can list them all.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

from ..settings.paths import resolve_path


def data_root(settings) -> Path:
    """The folder the chips come from (built-in data are generated on first use)."""
    from ..datasets import data
    return data.built_in_root(settings) if settings.data in data.BUILT_IN else resolve_path(settings.data)


def audit_files(settings):
    """One row per image file on disk: split, label, bytes, original size, mode, MD5, readable or not.

    Unlike `load_data`, a corrupt file is counted here, not raised, so the audit can list them all.
    """
    import pandas as pd
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    from ..datasets import data_files
    root, notes = data_root(settings), []
    splits = data_files.scan(root, notes, settings.modality, settings.class_order)
    rows = []
    for split, pairs in splits.items():
        for path, label in tqdm(pairs, desc=f"auditing {split}", disable=len(pairs) < 20000):
            raw = path.read_bytes()
            row = {"split": split, "label": label, "path": str(path), "bytes": len(raw),
                   "md5": hashlib.md5(raw).hexdigest(), "width": None, "height": None, "mode": None,
                   "readable": True, "error": ""}
            try:
                with Image.open(io.BytesIO(raw)) as img:
                    img.load()
                    row.update(width=img.size[0], height=img.size[1], mode=img.mode)
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                row.update(readable=False, error=str(e))
            rows.append(row)
    for note in notes:
        print("note:", note)
    return root, pd.DataFrame(rows)


def count_table(files, class_names):
    """Images per class and split (files on disk), with each class's share of the training set."""
    table = files.pivot_table(index="label", columns="split", values="path", aggfunc="count", fill_value=0)
    table = table.reindex(range(len(class_names)), fill_value=0)
    table = table[[s for s in ("train", "val", "test") if s in table.columns]]
    table.insert(1, "train share", (table["train"] / table["train"].sum()).round(4))
    table.index = [f"{c}: {n}" for c, n in enumerate(class_names)]
    table.index.name = "class"
    return table


def imbalance(counts) -> dict:
    import numpy as np
    counts = np.asarray(counts)
    return {"imbalance_ratio": float(counts.max() / max(counts.min(), 1)),
            "head_share": float(counts[0] / counts.sum()), "train_images": int(counts.sum())}


def size_table(files):
    """Original image sizes on disk (before resizing to `image_size`), most common first."""
    ok = files[files["readable"]]
    sizes = (ok["width"].astype(int).astype(str) + " x " + ok["height"].astype(int).astype(str))
    table = sizes.value_counts().rename("files").to_frame()
    table.index.name = "width x height (px)"
    return table


def integrity(files) -> dict:
    """Exact duplicates (same MD5), duplicates across splits or with two labels, and corrupt files."""
    ok = files[files["readable"]]
    groups = ok.groupby("md5")
    dup = groups.filter(lambda g: len(g) > 1)
    return {"files": int(len(files)), "corrupt_files": int((~files["readable"]).sum()),
            "duplicate_groups": int(dup["md5"].nunique()),
            "redundant_copies": int(len(ok) - ok["md5"].nunique()),
            "duplicates_across_splits": int(groups["split"].nunique().gt(1).sum()),
            "duplicates_with_two_labels": int(groups["label"].nunique().gt(1).sum())}


def example_chips(files, per_class: int = 6, split: str = "train", seed: int = 0):
    """`per_class` original chips (as on disk) of every class, picked at random."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for c in sorted(files["label"].unique()):
        paths = files[(files["split"] == split) & (files["label"] == c) & files["readable"]]["path"].to_numpy()
        pick = rng.choice(paths, min(per_class, len(paths)), replace=False)
        out.append([np.asarray(Image.open(p).convert("L")) for p in pick])
    return out


def model_inputs(chipset, per_class: int = 6, seed: int = 0):
    """The same kind of grid, but of what the network sees: chips resized to `image_size`."""
    import numpy as np
    rng = np.random.default_rng(seed)
    labels = chipset.targets.numpy()
    return [[chipset.images[i, 0].numpy() for i in rng.choice(np.flatnonzero(labels == c),
                                                               min(per_class, int((labels == c).sum())), replace=False)]
            for c in range(10)]


def class_pixels(files, per_class: int = 60, seed: int = 0):
    """Grey levels of up to `per_class` original training chips of each class."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for c in range(10):
        paths = files[(files["split"] == "train") & (files["label"] == c) & files["readable"]]["path"].to_numpy()
        pick = rng.choice(paths, min(per_class, len(paths)), replace=False)
        out.append(np.concatenate([np.asarray(Image.open(p).convert("L")).ravel() for p in pick]))
    return out


def speckle_table(pixels, class_names):
    """Per class: mean, std, coefficient of variation and the brightest 1% of the grey levels."""
    import numpy as np
    import pandas as pd
    rows = [{"class": f"{c}: {class_names[c]}", "mean": v.mean(), "std": v.std(), "CV (std/mean)": v.std() / v.mean(),
             "median": np.median(v), "99th percentile": np.percentile(v, 99)} for c, v in enumerate(pixels)]
    return pd.DataFrame(rows).set_index("class").round(2)


CLASS_MAP = "class_map.csv"


def class_map(settings, run_dir):
    """The class_id of every class (its name, and its folder where folders are named by class name),
    written into the run folder as CLASS_MAP; and a line saying where the order came from."""
    import pandas as pd

    from ..datasets import data
    folders, source = data.named_classes(settings)
    names = data.class_names(settings, mapping=folders)
    by_id = {i: f for f, i in folders.items()}
    table = pd.DataFrame({"class_id": range(len(names)), "class_name": names,
                          "folder": [by_id.get(i, "" if settings.data in data.BUILT_IN else str(i)) for i in range(len(names))]})
    table.to_csv(Path(run_dir) / CLASS_MAP, index=False)
    if folders:
        why = (f"Class folders are named by class name; their class_id order comes from {source}"
               f" (`-p class_order \"name0,name1,...\"` sets another). Written to `{CLASS_MAP}` in the run folder.")
    else:
        why = f"Class ids: {'the built-in set' if settings.data in data.BUILT_IN else 'the class folder numbers'}."
    return table, why


def split_table(bundle):
    """Images per class in the splits the training actually uses (after any hold-out)."""
    import pandas as pd
    table = pd.DataFrame({s: bundle.class_counts(s) for s in ("train", "val", "test")},
                         index=[f"{c}: {n}" for c, n in enumerate(bundle.class_names)])
    table.index.name = "class"
    table.loc["all"] = table.sum()
    return table



def split_notes(bundle, settings) -> str:
    """The hold-out rule (when a split was held out of training) and one line per class a split lacks."""
    from ..datasets.data import HOLD_OUT_RULE
    lines = []
    for split, key in (("test", "test_per_class"), ("val", "val_per_class")):
        if any(n.startswith(f"no {split} split") for n in bundle.notes):
            lines.append("Rule: " + HOLD_OUT_RULE.format(key=key, n=getattr(settings, key), split=split) + ".")
    unmeasured = [n for n in bundle.notes if n.startswith("class ") and "not measured" in n]
    lines += [f"* {n}" for n in unmeasured] or ["Every class has test chips: every class's accuracy is measured."]
    if bundle.ood_note:
        lines.append(f"Out of distribution: {bundle.ood_note}.")
    return "\n".join(lines)


# A gap between two methods' accuracy on one class, in points, and the confidence of the statement.
GAP, Z95 = 0.05, 1.96
SMALL_CLASS = 20


def small_set_guidance(bundle) -> str:
    """What few chips mean for every number that follows (Markdown), or a line saying there is no small class.

    The standard error of an accuracy p measured on n test chips is sqrt(p(1 - p) / n), largest at
    p = 0.5. Two methods scored on independent chips differ by more than 1.96 standard errors of the
    difference only when n >= 2 p(1 - p) (1.96 / gap)^2; pairing the methods on the same chips (as the
    course does) narrows this, so the count is an upper bound of what is needed.
    """
    import math
    train, test = bundle.class_counts("train"), bundle.class_counts("test")
    small = [c for c in range(len(train)) if train[c] < SMALL_CLASS]
    if not small:
        return f"Every class has at least {SMALL_CLASS} training chips."
    per_class = math.ceil(2 * 0.25 * (Z95 / GAP) ** 2)
    balanced = math.ceil(per_class / len(train))
    lines = [f"**{len(small)} class(es) have fewer than {SMALL_CLASS} training chips** "
             f"({', '.join(f'class {c}: {train[c]}' for c in small)}). What that means for every number that follows:",
             "", "| class | training chips | test chips | standard error of its accuracy (at 50%) |", "|---|---|---|---|"]
    for c in small:
        se = f"{0.5 / math.sqrt(test[c]):.0%}" if test[c] else "not measured"
        lines.append(f"| {c} | {train[c]} | {test[c]} | {se} |")
    lines += ["", f"A {GAP:.0%} gap between two methods on one class means something (95%, chips scored "
              f"independently) only with about {per_class} test chips of that class; on the balanced top-1 over "
              f"{len(train)} classes, about {balanced} a class. Pairing the methods on the same chips narrows "
              f"this, but with a handful of chips a class's accuracy moves in steps of 1/n."]
    return "\n".join(lines)
