"""Baselines, ablations and the multi-seed comparison, all on the same backbone, data and augmentation.

Methods (each a path through stage folders of one run folder, so shared stages are trained once):
  plain CE       one stage on the full long-tailed set, as many image-passes as the three-stage schedule;
  cRT            stage 1, then a freshly initialised classifier re-trained with class-balanced sampling,
                 backbone frozen (Kang et al., ICLR 2020) -- the decoupled two-stage method;
  LDAM-DRW       LDAM loss with deferred re-weighting (Cao et al., NeurIPS 2019), same image-passes as plain CE;
  three-stage    stage 1 -> 2 -> 3a -> 3b (the seed's method), with TTA;
  ablations      without stage 2, without 3b, without 3a, and with TTA off.
A method's cost is the image-passes and wall time of every stage on its path (shared stages counted
in full for each method that uses them).
"""
from __future__ import annotations

import pandas as pd

from . import inference, metrics, stages
from .checkpoints import checkpoint_path, load_checkpoint, load_stage_model
from .losses import LDAMLoss
from .model import ShakeShakeNet, shake_shake_26_2x32d
from .samplers import class_balanced_sampler, without_class0
from .training import train_stage

# method -> (stage folders on its path, TTA views: None means the run's setting)
METHODS = {
    "plain CE": (["plain"], None),
    "cRT (two-stage)": (["stage1", "crt"], None),
    "LDAM-DRW": (["ldam_drw"], None),
    "three-stage": (["stage1", "stage2", "stage3a", "stage3b"], None),
    "three-stage w/o stage 2": (["stage1", "stage3a_from1", "stage3b_from1"], None),
    "three-stage w/o 3b": (["stage1", "stage2", "stage3a"], None),
    "three-stage w/o 3a": (["stage1", "stage2", "stage3b_from2"], None),
    "three-stage, TTA off": (["stage1", "stage2", "stage3a", "stage3b"], 1),
}


def three_stage_passes(bundle, settings) -> int:
    """Image-passes of the three-stage schedule, the budget the one-stage baselines get too."""
    n_all = len(bundle.train)
    n_no0 = len(without_class0(bundle.train))
    n_bal = 10 * settings.stage3_per_class
    return (settings.stage1_epochs * n_all + settings.stage2_epochs * n_no0
            + (settings.stage3a_epochs + settings.stage3b_epochs) * n_bal)


def matched_epochs(bundle, settings) -> int:
    return max(1, round(three_stage_passes(bundle, settings) / len(bundle.train)))


def train_plain(bundle, settings, run_dir, progress=True):
    model = shake_shake_26_2x32d()
    train_stage(model, bundle.train, stage="plain", run_dir=run_dir, settings=settings,
                epochs=matched_epochs(bundle, settings), lr=settings.stage1_lr, val_set=bundle.val, progress=progress)
    return model


def train_crt(bundle, settings, run_dir, progress=True):
    model = load_stage_model(run_dir, "stage1", num_classes=10)
    model.reset_classifier()
    sampler = lambda epoch: class_balanced_sampler(bundle.train, seed=settings.seed * 1000 + epoch)
    train_stage(model, bundle.train, stage="crt", run_dir=run_dir, settings=settings, epochs=settings.crt_epochs,
                lr=settings.stage3b_lr, trainable="classifier", sampler=sampler, val_set=bundle.val, progress=progress)
    return model


def train_ldam_drw(bundle, settings, run_dir, progress=True):
    counts = bundle.class_counts("train")
    model = ShakeShakeNet(in_channels=1, num_classes=10, normed_classifier=True)
    loss = LDAMLoss(counts, settings.ldam_max_margin, settings.ldam_scale)
    epochs = matched_epochs(bundle, settings)
    before = lambda epoch: loss.set_epoch(epoch, epochs, counts, settings.drw_start_fraction, settings.drw_beta)
    train_stage(model, bundle.train, stage="ldam_drw", run_dir=run_dir, settings=settings, epochs=epochs,
                lr=settings.stage1_lr, loss_fn=loss, before_epoch=before, val_set=bundle.val, progress=progress)
    return model


def train_ablations(bundle, settings, run_dir, progress=True):
    """The three-stage method with a stage taken out (stage 1, 2, 3a and 3b must exist already)."""
    stages.stage3a(bundle, settings, run_dir, source="stage1", stage="stage3a_from1", progress=progress)
    stages.stage3b(bundle, settings, run_dir, source="stage3a_from1", stage="stage3b_from1", progress=progress)
    stages.stage3b(bundle, settings, run_dir, source="stage2", stage="stage3b_from2", progress=progress)


def train_three_stage(bundle, settings, run_dir, progress=True):
    for step in (stages.stage1, stages.stage2, stages.stage3a, stages.stage3b):
        step(bundle, settings, run_dir, progress=progress)


def train_all(bundle, settings, run_dir, progress=True):
    """Everything the comparison table needs, resuming whatever is already in `run_dir`."""
    train_three_stage(bundle, settings, run_dir, progress)
    train_ablations(bundle, settings, run_dir, progress)
    train_plain(bundle, settings, run_dir, progress)
    train_crt(bundle, settings, run_dir, progress)
    train_ldam_drw(bundle, settings, run_dir, progress)


def stage_cost(run_dir, stage: str) -> tuple[int, float]:
    ckpt = load_checkpoint(checkpoint_path(run_dir, stage))
    return sum(r["images"] for r in ckpt["metrics"]), sum(r["seconds"] for r in ckpt["metrics"])


def final_model(run_dir, stage: str):
    normed = stage == "ldam_drw"
    classes = 9 if stage == "stage2" else 10
    return load_stage_model(run_dir, stage, num_classes=classes, normed_classifier=normed)


def evaluate_methods(bundle, settings, run_dir, methods=None) -> pd.DataFrame:
    """One row per method: balanced/overall top-1, per-class accuracy, predicted shares, cost."""
    rows = []
    y = bundle.test.targets.numpy()
    for name in methods or METHODS:
        path, k = METHODS[name]
        model = final_model(run_dir, path[-1])
        views = k or settings.tta_views
        pred = inference.predict(model, bundle.test, k=views, device=settings.device).argmax(1).numpy()
        s = metrics.summary(y, pred)
        images, seconds = map(sum, zip(*(stage_cost(run_dir, st) for st in path)))
        rows.append({"method": name, "balanced_top1": s["balanced_top1"], "top1": s["top1"],
                     "distance_from_uniform": s["distance_from_uniform"], "tta_views": views,
                     "image_passes": images, "train_seconds": seconds,
                     **{f"acc_class{c}": a for c, a in enumerate(s["per_class"])},
                     **{f"share_class{c}": p for c, p in enumerate(s["predicted_share"])}})
    return pd.DataFrame(rows)


def aggregate(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every numeric column, one row per method (order kept)."""
    order = list(dict.fromkeys(per_seed["method"]))
    numeric = per_seed.drop(columns=["method", "seed"], errors="ignore").select_dtypes("number").columns
    g = per_seed.groupby("method", sort=False)[list(numeric)]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_std")).join(g.size().rename("seeds"))
    return out.loc[order].reset_index()
