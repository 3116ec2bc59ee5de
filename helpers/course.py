"""The course as a whole: small computations the notebooks call, and the runner that executes them.

    python -m helpers.course [--profile quick] [--name NAME] [-p KEY VALUE ...] [--overwrite] [--only NOTEBOOK ...]

runs notebooks/00_... to 05_... in order with papermill into runs/<name>/ (executed copies in
runs/<name>/notebooks/), then writes runs/<name>/report.html (all executed notebooks in one
self-contained page) and runs/<name>/timings.json (seconds per notebook).

The notebook helpers below keep every notebook cell short; plotting lives in `helpers.plotting`.
Heavy imports (torch, sklearn, umap) happen inside the functions so that the runner starts fast.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

from . import config
from .paths import PROJECT_ROOT, resolve_path

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = ["00_data_audit", "01_stage1_full_data", "02_stage2_without_class0",
             "03_stage3_balanced_finetune", "04_evaluation_tta", "05_feature_plots"]
# Parameters that are not settings, and the notebooks that take them.
NOTEBOOK_PARAMETERS = {"comparison_csv": {"04_evaluation_tta"}}
KEY_SETTINGS = ["data", "data_size", "image_size", "batch_size", "stage1_epochs", "stage2_epochs",
                "stage3_per_class", "stage3a_epochs", "stage3b_epochs", "tta_views", "embed_points", "seed"]
STAGES = ["stage1", "stage2", "stage3a", "stage3b"]
UNIFORM_THRESHOLD = 0.1     # "near uniform": total-variation distance below this
SEED_CLAIMS = {"three_stage_top1": 0.2234, "two_stage_top1": 0.2109, "model_mb": 11.2,
               "latency_s": 0.0146, "resnet50_latency_s": 0.0225}


# ====================================================================== notebook helpers
def show_settings(run_dir, settings):
    """Print the run folder and device; return the settings that matter as a table."""
    import pandas as pd
    import torch

    from .training import pick_device
    print(f"run folder: {run_dir}")
    print(f"device: {pick_device(settings.device)} ({torch.get_num_threads()} CPU threads), torch {torch.__version__}")
    return pd.DataFrame({"value": {k: getattr(settings, k) for k in KEY_SETTINGS}})


def scale_table(settings, bundle=None):
    """What this run scales down from the paper's schedule (the `paper` profile), read from the settings."""
    import pandas as pd

    from .synthetic_sar import MAVOC_TRAIN_COUNTS
    paper = config.resolve("paper")
    chips = len(bundle.train) if bundle is not None else settings.data_size
    rows = [("input size (px)", paper.image_size, settings.image_size),
            ("training chips", sum(MAVOC_TRAIN_COUNTS), chips),
            ("stage 1 epochs (all data)", paper.stage1_epochs, settings.stage1_epochs),
            ("stage 2 epochs (class 0 removed)", paper.stage2_epochs, settings.stage2_epochs),
            ("stage 3 images per class", paper.stage3_per_class, settings.stage3_per_class),
            ("stage 3a epochs (whole model)", paper.stage3a_epochs, settings.stage3a_epochs),
            ("stage 3b epochs (classifier only)", paper.stage3b_epochs, settings.stage3b_epochs),
            ("TTA views", paper.tta_views, settings.tta_views),
            ("batch size", paper.batch_size, settings.batch_size)]
    table = pd.DataFrame(rows, columns=["what", "paper", "this run"]).set_index("what")
    table["this run / paper"] = (table["this run"] / table["paper"]).map(lambda r: f"{r:.3g}x")
    return table


# ---------------------------------------------------------------- 00 data audit
def data_root(settings) -> Path:
    """The folder the chips come from (built-in data are generated on first use)."""
    from . import data
    return data.built_in_root(settings) if settings.data in data.BUILT_IN else resolve_path(settings.data)


def class_names(settings) -> list[str]:
    """The class names load_data will use (known before any chip is decoded)."""
    from . import data, digits_lt, synthetic_sar
    if settings.data == "synthetic-sar":
        return list(synthetic_sar.CLASS_NAMES)
    if settings.data == "digits-lt":
        return list(digits_lt.CLASS_NAMES)
    return [f"class {i}" for i in range(data.NUM_CLASSES)]


def audit_files(settings):
    """One row per image file on disk: split, label, bytes, original size, mode, MD5, readable or not.

    Unlike `load_data`, a corrupt file is counted here, not raised, so the audit can list them all.
    """
    import pandas as pd
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    from . import data
    root, notes = data_root(settings), []
    splits = data.scan(root, notes)
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


def split_table(bundle):
    """Images per class in the splits the training actually uses (after any hold-out)."""
    import pandas as pd
    table = pd.DataFrame({s: bundle.class_counts(s) for s in ("train", "val", "test")},
                         index=[f"{c}: {n}" for c, n in enumerate(bundle.class_names)])
    table.index.name = "class"
    table.loc["all"] = table.sum()
    return table


# ---------------------------------------------------------------- predictions and scores
def load_final(run_dir, stage: str):
    from .experiments import final_model
    return final_model(run_dir, stage)


def predict_labels(model, dataset, settings, k: int = 1):
    """Predicted class per image (10-way); a 9-way stage-2 model's labels are mapped back to 1-9."""
    from . import tta
    from .samplers import to_original
    pred = tta.predict(model, dataset, k=k, device=settings.device).argmax(1).numpy()
    return to_original(pred) if model.num_classes == 9 else pred


def stage_summary(run_dir, stage: str, bundle, settings, k: int = 1, save: bool = True) -> dict:
    """Test-set scores of a stage's model (k TTA views); saved as <run_dir>/<stage>_test.json.

    A stage-2 (9-way) model never predicts class 0, so its class-0 test images count as wrong.
    """
    from . import metrics
    model = load_final(run_dir, stage)
    y = bundle.test.targets.numpy()
    s = metrics.summary(y, predict_labels(model, bundle.test, settings, k))
    s["tail_balanced_top1"] = float(sum(s["per_class"][1:]) / 9)
    s.update(stage=stage, tta_views=k, test_images=int(len(y)))
    if save:
        from .runs import save_metrics
        save_metrics(s, run_dir, f"{stage}_test.json")
    return s


def scores_table(summaries: dict, class_names):
    """Per-class accuracy of several models side by side (rows: classes)."""
    import pandas as pd
    table = pd.DataFrame({name: s["per_class"] for name, s in summaries.items()},
                         index=[f"{c}: {n}" for c, n in enumerate(class_names)])
    table.loc["balanced top-1"] = [s["balanced_top1"] for s in summaries.values()]
    return table.round(3)


def balanced_set_counts(balanced_set, class_names):
    """Images per class in the stage-3 set, split into distinct images and augmented copies."""
    import numpy as np
    import pandas as pd
    labels = balanced_set.targets.numpy()
    copies = np.bincount(labels[balanced_set.copies], minlength=10)
    total = np.bincount(labels, minlength=10)
    table = pd.DataFrame({"images": total, "distinct": total - copies, "augmented copies": copies},
                         index=[f"{c}: {n}" for c, n in enumerate(class_names)])
    table.index.name = "class"
    return table


def evaluate_stages(bundle, settings, run_dir):
    """Balanced and overall top-1 of every stage's model, without TTA and with `tta_views` views."""
    import pandas as pd
    rows, views = [], sorted({1, settings.tta_views})
    for stage in STAGES:
        for k in views:
            s = stage_summary(run_dir, stage, bundle, settings, k=k, save=False)
            rows.append({"stage": stage, "tta_views": k, "tta": "no TTA" if k == 1 else f"TTA, {k} views",
                         "balanced_top1": s["balanced_top1"], "top1": s["top1"],
                         "distance_from_uniform": s["distance_from_uniform"],
                         "per_class": s["per_class"], "predicted_share": s["predicted_share"]})
    return pd.DataFrame(rows)


def stage_table(stages_table):
    """evaluate_stages' rows as one row per stage, no-TTA and TTA columns side by side."""
    t = stages_table.copy()
    order = t.sort_values("tta_views", kind="stable")["tta"].unique()
    wide = t.pivot(index="stage", columns="tta", values=["balanced_top1", "top1"]).loc[STAGES]
    wide = wide.reindex(columns=[(m, k) for m in ("balanced_top1", "top1") for k in order])
    wide.columns = [f"{m.replace('_', ' ')}, {k}" for m, k in wide.columns]
    return wide.round(3)


def final_predictions(bundle, settings, run_dir, stage: str = "stage3b"):
    """Labels and TTA predictions of the final model on the test set."""
    model = load_final(run_dir, stage)
    return bundle.test.targets.numpy(), predict_labels(model, bundle.test, settings, k=settings.tta_views)


def read_comparison(path):
    """The multi-seed comparison table if it exists (else None)."""
    import pandas as pd
    path = resolve_path(path)
    return pd.read_csv(path) if path.is_file() else None


# ---------------------------------------------------------------- size and speed
def state_dict_megabytes(model) -> float:
    """Size of the saved state_dict (torch.save into memory), in MiB (2^20 bytes)."""
    import torch
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


def latency(model, shape, device="cpu", runs: int = 30, warmup: int = 3) -> float:
    """Median seconds of one forward pass of a single image of `shape` (batch of one), eval mode."""
    import numpy as np
    import torch
    model = model.to(device).eval()
    x = torch.randn(*shape, device=device)
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return float(np.median(times))


def speed_and_size(run_dir, settings, stage: str = "stage3b", runs: int = 30):
    """Our final model vs torchvision's ResNet-50 (10 classes, random weights, the same chip with 3 channels).

    Measured at this run's `image_size` (the first two rows, used for the claim) and, if different,
    at the paper's input size too, since the cost of both networks grows differently with the input.
    """
    import pandas as pd
    import torchvision

    from .model import count_parameters
    from .training import pick_device
    device = pick_device(settings.device)
    ours = load_final(run_dir, stage)
    resnet = torchvision.models.resnet50(weights=None, num_classes=10)
    sizes = list(dict.fromkeys([settings.image_size, config.resolve("paper").image_size]))
    rows = []
    for s in sizes:
        for name, model, shape in (("Shake-Shake-26 2x32d (ours)", ours, (1, 1, s, s)),
                                   ("ResNet-50 (torchvision)", resnet, (1, 3, s, s))):
            rows.append({"model": name, "input": "x".join(map(str, shape)), "parameters": count_parameters(model),
                         "state_dict MiB": state_dict_megabytes(model),
                         "median s / image": latency(model, shape, device, runs=runs)})
    print(f"measured on {device}, batch of one, median of {runs} runs, at {' and '.join(f'{s} px' for s in sizes)}")
    return pd.DataFrame(rows)


def claims_table(methods, final_distance: float, speed, comparison=None):
    """The seed's three claims next to what this run measured."""
    import pandas as pd
    by = methods.set_index("method")["balanced_top1"]
    three, crt = float(by["three-stage"]), float(by["cRT (two-stage)"])
    note = "one seed; see the multi-seed table for the spread"
    if comparison is not None and {"three-stage", "cRT (two-stage)"} <= set(comparison["method"]):
        c = comparison.set_index("method")
        m = lambda k, col: float(c.loc[k, col]) if col in c.columns else float("nan")
        note = (f"multi-seed ({int(c.loc['three-stage', 'seeds'])} seeds): three-stage "
                f"{m('three-stage', 'balanced_top1_mean'):.3f} ± {m('three-stage', 'balanced_top1_std'):.3f} vs cRT "
                f"{m('cRT (two-stage)', 'balanced_top1_mean'):.3f} ± {m('cRT (two-stage)', 'balanced_top1_std'):.3f}")
    ours, resnet = speed.iloc[0], speed.iloc[1]
    at = f"at {ours['input']} px input"
    if len(speed) >= 4:
        o, r = speed.iloc[2], speed.iloc[3]
        at += (f"; at the paper's {o['input']}: {o['median s / image']:.4f} vs {r['median s / image']:.4f} s/image")
    rows = [
        {"claim": "(1) three-stage beats the best two-stage method",
         "seed": f"{SEED_CLAIMS['three_stage_top1']:.2%} vs {SEED_CLAIMS['two_stage_top1']:.2%} top-1",
         "this run": f"three-stage {three:.2%} vs cRT {crt:.2%} balanced top-1", "held": three > crt, "note": note},
        {"claim": "(2) predicted classes are near uniform",
         "seed": "Figure: predictions spread evenly over the 10 classes",
         "this run": f"distance from uniform {final_distance:.3f} (threshold {UNIFORM_THRESHOLD})",
         "held": final_distance < UNIFORM_THRESHOLD,
         "note": "total-variation distance of the predicted-class shares from 1/10, final model with TTA"},
        {"claim": "(3) small and faster than ResNet-50",
         "seed": (f"{SEED_CLAIMS['model_mb']} MB, {SEED_CLAIMS['latency_s']} s/image vs ResNet-50 "
                  f"{SEED_CLAIMS['resnet50_latency_s']} s/image"),
         "this run": (f"{ours['state_dict MiB']:.1f} MiB, {ours['median s / image']:.4f} s/image vs ResNet-50 "
                      f"{resnet['state_dict MiB']:.1f} MiB, {resnet['median s / image']:.4f} s/image"),
         "held": bool(ours["median s / image"] < resnet["median s / image"]
                      and ours["state_dict MiB"] < resnet["state_dict MiB"]),
         "note": f"state_dict saved to memory; median single-image latency on this machine, {at}"},
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- 05 feature plots
def embedding_subset(bundle, n: int, seed: int = 0):
    """Up to `n` test images, the same number from every class (the test set is class-balanced)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    labels = bundle.test.targets.numpy()
    per_class = max(1, n // 10)
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)])
    return np.sort(idx)


def stage_features(run_dir, bundle, settings, indices, stages=("stage1", "stage2", "stage3b")) -> dict:
    """Penultimate features of the chosen test images under each stage's model."""
    import torch

    from . import tta
    subset = torch.utils.data.Subset(bundle.test, indices)
    return {stage: tta.features(load_final(run_dir, stage), subset, device=settings.device).numpy() for stage in stages}


def embed(features: dict, method: str, seed: int = 0) -> dict:
    """2-D embeddings of every stage's features with t-SNE or UMAP (same hyper-parameters for all)."""
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    if method not in ("t-SNE", "UMAP"):
        raise ValueError(f"method must be 't-SNE' or 'UMAP', got {method!r}")
    out = {}
    # One thread: for a few thousand points it is as fast, and it never stalls on a busy machine.
    with threadpool_limits(1):
        for stage, f in features.items():
            x = StandardScaler().fit_transform(f)
            n = len(x)
            if method == "t-SNE":
                from sklearn.manifold import TSNE
                out[stage] = TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca",
                                  random_state=seed).fit_transform(x)
            else:
                import umap
                out[stage] = umap.UMAP(n_neighbors=min(15, n - 1), min_dist=0.1, random_state=seed,
                                       n_jobs=1).fit_transform(x)
    return out


def _knn_accuracy(x, y) -> float:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    folds = int(min(5, np.bincount(y)[np.bincount(y) > 0].min()))
    if folds < 2:
        return float("nan")
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(min(5, len(y) - len(y) // folds - 1)), x, y, cv=cv).mean())


def separation_scores(features: dict, labels, embeddings: dict | None = None):
    """Per stage: silhouette of the features by class (all ten, and the nine tails alone) and
    5-nearest-neighbour accuracy (cross-validated) in feature space and in each 2-D embedding."""
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    y = np.asarray(labels)
    tails = y != 0
    with threadpool_limits(1):
        rows = [_separation_row(stage, StandardScaler().fit_transform(f), y, tails, embeddings)
                for stage, f in features.items()]
    return pd.DataFrame(rows)


def _separation_row(stage, x, y, tails, embeddings) -> dict:
    from sklearn.metrics import silhouette_score
    row = {"stage": stage, "silhouette, all 10 classes": float(silhouette_score(x, y)),
           "silhouette, tails 1-9": float(silhouette_score(x[tails], y[tails])),
           "kNN accuracy, features": _knn_accuracy(x, y)}
    for method, emb in (embeddings or {}).items():
        row[f"kNN accuracy, {method}"] = _knn_accuracy(emb[stage], y)
    return row


def figure2_verdicts(scores):
    """The seed's three descriptions of Figure 2 as comparisons of the measured silhouettes."""
    import pandas as pd
    s = scores.set_index("stage")
    t = s["silhouette, tails 1-9"]
    a = s["silhouette, all 10 classes"]
    k = s["kNN accuracy, features"]
    rows = [
        {"panel": "after stage 1", "seed says": "class 0 a flat region, the tail classes mixed",
         "measured": f"tails silhouette {t['stage1']:.2f} (stage 2: {t['stage2']:.2f}, stage 3: {t['stage3b']:.2f})",
         "consistent": bool(t["stage1"] <= min(t["stage2"], t["stage3b"])),
         "test": "tails least separated after stage 1"},
        {"panel": "after stage 2", "seed says": "the tail classes separated",
         "measured": f"tails silhouette {t['stage1']:.2f} -> {t['stage2']:.2f}",
         "consistent": bool(t["stage2"] > t["stage1"]), "test": "tails silhouette rises from stage 1 to 2"},
        {"panel": "after stage 3", "seed says": "all ten classes separated",
         "measured": (f"all-class silhouette {a['stage3b']:.2f} (stage 1: {a['stage1']:.2f}, stage 2: {a['stage2']:.2f}); "
                      f"kNN accuracy {k['stage3b']:.2f}"),
         "consistent": bool(a["stage3b"] > max(a["stage1"], a["stage2"])),
         "test": "all-class silhouette highest after stage 3"},
    ]
    return pd.DataFrame(rows)


# ====================================================================== the runner
class CourseError(RuntimeError):
    """A bad command line or a failed notebook; the message says which and why."""


def _parse_value(text: str):
    """'3' -> 3, '0.05' -> 0.05, anything else stays a string (settings coerce it further)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _select(only) -> list[str]:
    if not only:
        return list(NOTEBOOKS)
    chosen = []
    for name in only:
        stem = Path(name).stem
        matches = [nb for nb in NOTEBOOKS if nb == stem or nb.startswith(stem)]
        if len(matches) != 1:
            raise CourseError(f"--only {name!r} matches {len(matches)} notebooks; valid notebooks: {', '.join(NOTEBOOKS)}")
        chosen.append(matches[0])
    return [nb for nb in NOTEBOOKS if nb in chosen]


def _saved_run(run_dir: Path):
    """(profile, settings that differ from that profile) of an existing run folder, else (None, {})."""
    path = run_dir / "config.json"
    if not path.exists():
        return None, {}
    saved = json.loads(path.read_text())
    base = config.resolve(saved["profile"]).to_dict()
    ignore = {"device", "num_workers"}
    return saved["profile"], {k: v for k, v in saved["settings"].items() if k not in ignore and base.get(k) != v}


def _validate(profile: str, params: dict) -> None:
    valid = set(config.setting_names()) | set(NOTEBOOK_PARAMETERS)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise CourseError(f"unknown parameter(s) {', '.join(unknown)}; valid names: "
                          f"{', '.join(config.setting_names() + sorted(NOTEBOOK_PARAMETERS))}")
    try:   # unknown profile or a value of the wrong type fails here, before any notebook starts
        config.resolve(profile, **{k: v for k, v in params.items() if k not in NOTEBOOK_PARAMETERS})
    except config.SettingsError as e:
        raise CourseError(str(e)) from None


def _failure_message(notebook: str, output: Path, error: Exception) -> str:
    from papermill.exceptions import PapermillExecutionError
    if isinstance(error, PapermillExecutionError):
        lines = [l.strip() for l in (error.source or "").splitlines() if l.strip()]
        telling = [l for l in lines if not l.startswith(("import ", "from ", "#"))] or lines
        where = f", `{telling[0][:70]}`" if telling else ""
        return (f"notebook {notebook} failed in cell {error.cell_index} (execution count {error.exec_count}{where}):\n"
                f"  {error.ename}: {error.evalue}\n"
                f"the executed notebook with the full traceback: {output}")
    return f"notebook {notebook} failed: {type(error).__name__}: {error}\n(see {output})"


def _clean_outputs(outputs):
    """For the report: merge consecutive stream outputs, keep only what a terminal would show after
    carriage returns (the last state of each progress bar), and drop empty or noise-only streams."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    for out in merged:
        if out.get("output_type") == "stream":
            lines = [([seg for seg in line.split("\r") if seg] or [""])[-1] for line in out["text"].split("\n")]
            lines = [l for l in lines if not ("IProgress not found" in l or "from .autonotebook import" in l)]
            out["text"] = "\n".join(l for l in lines if l.strip()) + "\n"
    return [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]


def write_report(run_dir: Path, title: str | None = None) -> Path:
    """All executed notebooks of `run_dir` concatenated into one self-contained HTML page."""
    import nbformat
    run_dir = Path(run_dir)
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    found = [nb for nb in NOTEBOOKS if (run_dir / "notebooks" / f"{nb}.ipynb").exists()]
    if not found:
        raise CourseError(f"no executed notebooks in {run_dir / 'notebooks'}; nothing to report")
    merged = nbformat.v4.new_notebook()
    merged.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                       "language_info": {"name": "python"}}
    contents = "\n".join(f"{i + 1}. [{nb}](#{nb}) ({timings[nb]:.0f} s)" if nb in timings else f"{i + 1}. [{nb}](#{nb})"
                         for i, nb in enumerate(found))
    merged.cells.append(nbformat.v4.new_markdown_cell(
        f"# {title or 'Three-stage training for long-tailed SAR classification'}\n\n"
        f"Run folder: `{run_dir}`\n\nGenerated {time.strftime('%Y-%m-%d %H:%M')}. Notebooks:\n\n{contents}"))
    for nb in found:
        notebook = nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4)
        merged.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{nb}"></a>\n\n---\n# Notebook {nb}'))
        merged.cells.extend(notebook.cells)
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs = _clean_outputs(cell.outputs)
    from .results_report import offline_html_exporter
    exporter = offline_html_exporter()   # lab look, nothing loaded from the network
    body, _ = exporter.from_notebook_node(merged)
    path = run_dir / "report.html"
    path.write_text(body, encoding="utf-8")
    return path


def run_course(profile: str | None = "quick", name: str | None = None, params: dict | None = None,
               overwrite: bool = False, only=None, log=print) -> Path:
    """Execute the notebooks with papermill; returns the run folder.  Raises CourseError on any failure."""
    import papermill as pm

    from .runs import RunFolderError, new_run_dir
    params = dict(params or {})
    notebooks = _select(only)
    # Busy-waiting OpenMP threads stall badly when another program shares the cores (a browser, a
    # second run); passive waiting costs little on an idle machine. The kernels inherit this.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run_dir = resolve_path(Path("runs") / (name or profile or "quick"))
    if only:
        saved_profile, saved_params = _saved_run(run_dir)
        profile = profile or saved_profile or "quick"
        params = {**(saved_params if profile == saved_profile else {}), **params}
    profile = profile or "quick"
    _validate(profile, params)
    if only:
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        try:
            new_run_dir(run_dir, overwrite=overwrite)
        except RunFolderError as e:
            raise CourseError(str(e)) from None
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = run_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    log(f"run folder: {run_dir} (profile {profile}" + (f", {params}" if params else "") + ")")
    for k, nb in enumerate(notebooks, start=1):
        nb_params = {"run_dir": str(run_dir), "profile": profile}
        nb_params.update({key: value for key, value in params.items()
                          if key not in NOTEBOOK_PARAMETERS or nb in NOTEBOOK_PARAMETERS[key]})
        output = out_dir / f"{nb}.ipynb"
        log(f"[{k}/{len(notebooks)}] {nb} ...")
        t0 = time.time()
        try:
            pm.execute_notebook(str(NOTEBOOK_DIR / f"{nb}.ipynb"), str(output), parameters=nb_params,
                                kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=True, log_output=False,
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except Exception as e:   # PapermillExecutionError, a dead kernel, a timeout ...
            timings[nb] = round(time.time() - t0, 1)
            config.save_json(timings, timings_path)
            raise CourseError(_failure_message(nb, output, e)) from None
        timings[nb] = round(time.time() - t0, 1)
        config.save_json(timings, timings_path)
        log(f"[{k}/{len(notebooks)}] {nb} done in {timings[nb]:.0f} s")
    report = write_report(run_dir, title=f"Three-stage long-tailed SAR course: run {run_dir.name} (profile {profile})")
    from .results_report import write_results
    results = write_results(run_dir, log=lambda _: None)
    log(f"timings: {timings_path}")
    log(f"report: {report}")
    log(f"results only: {results}")
    return run_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course",
                                     description="Run the course notebooks in order into runs/<name>/.")
    parser.add_argument("--profile", default=None,
                        help=f"settings profile: {', '.join(config.profile_names())} (default: quick, or the "
                             f"run folder's own profile with --only)")
    parser.add_argument("--name", default=None, help="run folder runs/<name> (default: the profile name); "
                                                     "an absolute path is used as is")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="override a setting, e.g. -p stage1_epochs 3 (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                        help=f"run only these notebooks into an existing run folder ({', '.join(NOTEBOOKS)})")
    args = parser.parse_args(argv)
    if args.profile is not None and args.profile not in config.profile_names():
        print(f"error: unknown profile {args.profile!r}; valid profiles: {', '.join(config.profile_names())}",
              file=sys.stderr)
        return 2
    params = {key: _parse_value(value) for key, value in args.param}
    start = time.time()
    try:
        run_course(args.profile, args.name, params, args.overwrite, args.only)
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"total {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
