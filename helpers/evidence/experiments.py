"""Baselines, ablations and TTA variants on one backbone, data, augmentation and input size, at matched budgets.

Every method is a path through stage folders of one run folder (shared stages are trained once);
`helpers.method.budget.matched` gives each folder its optimizer steps, so that every path spends the same
full-model steps and the same classifier-only steps as the three-stage path:
  plain CE       one stage on the long-tailed set, the three-stage path's full-model steps;
  cRT, tau-norm, LWS   Kang et al.'s decoupled two-stage methods on the plain-CE backbone (helpers.evidence.rebalancing),
                 cRT and LWS with BatchNorm in train mode as in their code, and as the variants "cRT, frozen BN"
                 and "LWS, frozen BN";
  logit adjustment     post-hoc logit adjustment of plain CE (Menon et al., ICLR 2021), no training;
  balanced fine-tune + cRT   stage 1 -> 3a -> 3b: a whole-network balanced fine-tune, then the classifier
                 re-trained (stage 2's steps go to 3a), the rival closest to the method;
  Balanced Softmax     one stage with the Balanced Softmax loss (Ren et al., NeurIPS 2020);
  LDAM-DRW       LDAM loss with deferred re-weighting (Cao et al., NeurIPS 2019), DRW after a share of the steps;
  three-stage    stage 1 -> 2 -> 3a -> 3b (the seed's method), with the run's TTA;
  TTA variants   TTA off, and the 12-view rotation family (outside the training augmentation);
  ablations      a stage removed, its steps given to the stage next to it (the table says which).
Validation is split in two (helpers.method.validation_halves): the tuning half sets tau-norm's and logit
adjustment's tau and every classifier-only stage's learning rate (helpers.method.classifier_lr), the ranking half gives every method's validation score (`val_balanced_top1`), which
picks claim (1)'s rival and guards against under-trained models.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..method import metrics, predictions, stages
from . import logit_adjustment, ood_evidence, rebalancing
from ..method import validation_halves
from ..method.checkpoints import checkpoint_path, load_checkpoint, load_stage_model
from ..method.losses import BalancedSoftmaxLoss, LDAMLoss
from ..method.model import ShakeShakeNet
from ..method.training import INIT, model_rng, train_stage, warmup_steps

THREE = ["stage1", "stage2", "stage3a", "stage3b"]
# method -> path of stage folders, TTA (views None = the run's `tta_views`; family), kind, post-hoc step
METHODS = {
    "plain CE": dict(path=["plain"], kind="method"),
    "cRT": dict(path=["plain", "crt"], kind="method"),
    "tau-norm": dict(path=["plain"], kind="method", post="tau"),
    "logit adjustment": dict(path=["plain"], kind="method", post="la"),
    "LWS": dict(path=["plain", "lws"], kind="method"),
    "balanced fine-tune + cRT": dict(path=["stage1", "stage3a_from1", "stage3b_from1"], kind="method", extra=True),
    "Balanced Softmax": dict(path=["balanced_softmax"], kind="method", extra=True),
    "LDAM-DRW": dict(path=["ldam_drw"], kind="method"),
    "cRT, frozen BN": dict(path=["plain", "crt_frozen_bn"], kind="variant", extra=True),
    "LWS, frozen BN": dict(path=["plain", "lws_frozen_bn"], kind="variant", extra=True),
    "three-stage": dict(path=THREE, kind="method"),
    "three-stage, TTA off": dict(path=THREE, kind="tta", views=1),
    "three-stage, 12-view rotation TTA": dict(path=THREE, kind="tta", family="rotation"),
    "w/o stage 2": dict(path=["stage1", "stage3a_from1", "stage3b_from1"], kind="ablation"),
    "w/o 3a": dict(path=["stage1", "stage2_plus3a", "stage3b_from2plus"], kind="ablation"),
    "w/o 3b": dict(path=["stage1", "stage2", "stage3a_plus3b"], kind="ablation"),
}
# The "two-stage methods" of the fact sheet's claim: a representation, then a re-balancing of the decision
# (Kang et al.'s three, logit adjustment) or a balanced fine-tune and classifier re-training.
TWO_STAGE = ["cRT", "tau-norm", "LWS", "logit adjustment", "balanced fine-tune + cRT"]
UNDER_TRAINED = 0.2                            # validation balanced top-1 under twice chance (10 classes)


def method_names(kinds=("method", "variant", "tta", "ablation"), extras: bool = True) -> list[str]:
    """The rows of these kinds; `extras=False` leaves out the rows marked extra (each a training of its own
    beyond Kang et al.'s: notebook 04 trains them only with `notebook_ablations`, the comparison always)."""
    return [m for m, spec in METHODS.items() if spec["kind"] in kinds and (extras or not spec.get("extra"))]


def _one_stage(bundle, settings, run_dir, stage: str, progress: bool, loss_fn=None):
    """A one-stage method on the long-tailed set from stage 1's initial weights, the full-model budget."""
    with model_rng(settings.seed, INIT):            # the same initial weights as stage 1
        model = ShakeShakeNet(in_channels=1, num_classes=10)
    train_stage(model, bundle.train, stage=stage, run_dir=run_dir, settings=settings,
                steps=stages.steps_of(bundle, settings, stage), lr=settings.stage1_lr, loss_fn=loss_fn,
                val_set=bundle.val, progress=progress)
    return model


def train_plain(bundle, settings, run_dir, progress=True):
    return _one_stage(bundle, settings, run_dir, "plain", progress)


def train_balanced_softmax(bundle, settings, run_dir, progress=True):
    return _one_stage(bundle, settings, run_dir, "balanced_softmax", progress,
                      BalancedSoftmaxLoss(bundle.class_counts("train")))


def train_ldam_drw(bundle, settings, run_dir, progress=True):
    counts = bundle.class_counts("train")
    with model_rng(settings.seed, INIT):            # stage 1's (and plain CE's) initial backbone ...
        backbone = {k: v for k, v in ShakeShakeNet(in_channels=1, num_classes=10).state_dict().items()
                    if not k.startswith("fc.")}
    with model_rng(settings.seed, "ldam_drw"):      # ... under a normed head of its own
        model = ShakeShakeNet(in_channels=1, num_classes=10, normed_classifier=True)
    model.load_state_dict({**model.state_dict(), **backbone})
    loss = LDAMLoss(counts, settings.ldam_max_margin, settings.ldam_scale)
    steps = stages.steps_of(bundle, settings, "ldam_drw")
    warmup = warmup_steps(settings, steps)
    switch = lambda step, total: loss.set_step(step, total, counts, settings.drw_start_fraction, settings.drw_beta, warmup)
    train_stage(model, bundle.train, stage="ldam_drw", run_dir=run_dir, settings=settings, steps=steps,
                lr=settings.stage1_lr, loss_fn=loss, on_step=switch, val_set=bundle.val, progress=progress)
    return model


def train_decoupled(bundle, settings, run_dir, progress=True, variants=True):
    """cRT and LWS on the plain-CE backbone, BatchNorm in train mode, and (`variants`) frozen; tau-norm needs
    no training."""
    for name, train in (("crt", rebalancing.train_crt), ("lws", rebalancing.train_lws)):
        train(bundle, settings, run_dir, stages.steps_of(bundle, settings, name), progress, name, "train")
        if variants:
            train(bundle, settings, run_dir, stages.steps_of(bundle, settings, f"{name}_frozen_bn"), progress,
                  f"{name}_frozen_bn", "frozen")


def train_finetune_crt(bundle, settings, run_dir, progress=True):
    """Stage 1 -> 3a -> 3b, stage 2's steps given to 3a: the "balanced fine-tune + cRT" rival."""
    stages.stage3a(bundle, settings, run_dir, source="stage1", stage="stage3a_from1", progress=progress)
    stages.stage3b(bundle, settings, run_dir, source="stage3a_from1", stage="stage3b_from1", progress=progress)


def train_ablations(bundle, settings, run_dir, progress=True):
    """The three-stage method with a stage taken out and its steps given to its neighbour ("w/o stage 2" is the
    "balanced fine-tune + cRT" rival, trained with the methods)."""
    stages.stage2(bundle, settings, run_dir, source="stage1", stage="stage2_plus3a", progress=progress)
    stages.stage3b(bundle, settings, run_dir, source="stage2_plus3a", stage="stage3b_from2plus", progress=progress)
    stages.stage3a(bundle, settings, run_dir, source="stage2", stage="stage3a_plus3b", progress=progress)


def train_three_stage(bundle, settings, run_dir, progress=True):
    for step in (stages.stage1, stages.stage2, stages.stage3a, stages.stage3b):
        step(bundle, settings, run_dir, progress=progress)


def train_all(bundle, settings, run_dir, progress=True, ablations=True, extras=True):
    """Everything the comparison table needs, resuming whatever is already in `run_dir`; `extras=False` leaves
    out the rows marked extra (METHODS), `ablations=False` the ablations."""
    train_three_stage(bundle, settings, run_dir, progress)
    train_plain(bundle, settings, run_dir, progress)
    train_decoupled(bundle, settings, run_dir, progress, variants=extras)
    if extras or ablations:                         # the rival's path is the "w/o stage 2" ablation's too
        train_finetune_crt(bundle, settings, run_dir, progress)
    if extras:
        train_balanced_softmax(bundle, settings, run_dir, progress)
    train_ldam_drw(bundle, settings, run_dir, progress)
    if ablations:
        train_ablations(bundle, settings, run_dir, progress)


def stage_cost(run_dir, stage: str) -> dict:
    """What a finished stage folder spent: full-model and classifier-only steps, image-passes, seconds.

    Read from the stage's metrics.csv, which train_stage writes beside every checkpoint with the same
    rows (the checkpoint, with its optimizer state, is 15-30 MB to load for a few numbers)."""
    path = checkpoint_path(run_dir, stage)
    table = path.parent / "metrics.csv"
    rows = pd.read_csv(table).to_dict("records") if table.is_file() else load_checkpoint(path)["metrics"]
    steps = sum(r["steps"] for r in rows)
    classifier = rows[0].get("trainable") == "classifier"
    return {"full_steps": 0 if classifier else steps, "classifier_steps": steps if classifier else 0,
            "image_passes": sum(r["images"] for r in rows), "train_seconds": sum(r["seconds"] for r in rows)}


def path_cost(run_dir, path) -> dict:
    costs = [stage_cost(run_dir, st) for st in path]
    return {k: sum(c[k] for c in costs) for k in costs[0]}


def final_model(run_dir, stage: str):
    """The finished model of a stage folder, built from the architecture its checkpoint records."""
    return load_stage_model(run_dir, stage)


def _probabilities(bundle, settings, run_dir, spec, cache: dict, tune=None):
    """(val, test) class probabilities of a method, 10-way; cached per (final stage, views, family, post).
    A post-hoc step's tau is chosen on the validation chips `tune` (the tuning half)."""
    k = spec.get("views") or settings.tta_views
    family = spec.get("family", "levels")
    key = (spec["path"][-1], k, family, spec.get("post"))
    if key not in cache:
        if spec.get("post") == "tau":
            val, test, tau, _ = rebalancing.tau_norm_predictions(bundle, settings, run_dir, k, family, tune)
            cache[key] = (val, test, {"tau": tau})
        elif spec.get("post") == "la":
            val, test, tau = logit_adjustment.la_predictions(bundle, settings, run_dir, k, family, tune)
            cache[key] = (val, test, {"la_tau": tau})
        else:
            stage = spec["path"][-1]
            run = lambda ds: predictions.probabilities(run_dir, stage, ds, settings, k, family, bundle.hflip)
            cache[key] = (run(bundle.val), run(bundle.test), {})
    return (*cache[key], k, family)


def evaluate_methods(bundle, settings, run_dir, methods=None, test_predictions: dict | None = None) -> pd.DataFrame:
    """One row per method: test and validation balanced top-1, shot groups, uniformity, steps and cost.
    `test_predictions`, when given, receives every method's predicted class of each test chip (the bootstrap's input)."""
    rows, cache = [], {}
    y_val, y_test = bundle.val.targets.numpy(), bundle.test.targets.numpy()
    tune, rank = validation_halves.halves(y_val, settings.data_seed)
    counts = bundle.class_counts("train")
    plan = stages.plan(bundle, settings)
    for name in methods or list(METHODS):
        spec = METHODS[name]
        val, test, extra, k, family = _probabilities(bundle, settings, run_dir, spec, cache, tune)
        s = metrics.summary(y_test, test.argmax(1).numpy())
        if test_predictions is not None:
            test_predictions[name] = test.argmax(1).numpy()
        v = metrics.summary(y_val[rank], val[rank].argmax(1).numpy())["balanced_top1"]     # the ranking half
        gets = [f"{plan[st]['made_of'][0]} gets {plan[st]['gets']}'s steps" for st in spec["path"] if plan[st]["gets"]]
        rows.append({"method": name, "kind": spec["kind"], "balanced_top1": s["balanced_top1"], "top1": s["top1"],
                     "classes_measured": s["classes_measured"],
                     "val_balanced_top1": v, "val_half": "ranking", "under_trained": bool(v < UNDER_TRAINED),
                     **{f"{g}_shot": a for g, a in metrics.shot_groups(s["per_class"], counts).items()},
                     **{f"{g}_shot_classes": n for g, n in metrics.shot_group_sizes(s["per_class"], counts).items()},
                     "distance_from_uniform": s["distance_from_uniform"], "tta_views": k, "tta_family": family,
                     **ood_evidence.columns(bundle, settings, run_dir, spec, k, family, extra, s["top1"]),
                     **path_cost(run_dir, spec["path"]), "budget_note": "; ".join(gets), **extra,
                     **{f"acc_class{c}": a for c, a in enumerate(s["per_class"])},
                     **{f"share_class{c}": p for c, p in enumerate(s["predicted_share"])}})
    return pd.DataFrame(rows)


def ood_scores(bundle, settings, run_dir, row) -> dict:
    """{"in-distribution", "OOD"}: the test scores of a row of `evaluate_methods` by its chosen OOD score."""
    spec = METHODS[row["method"]]
    k, family = int(row["tta_views"]), row["tta_family"]
    extra = {"tau": row.get("tau"), "la_tau": row.get("la_tau")}
    return ood_evidence.scores(bundle, settings, run_dir, spec, k, family, extra, row["ood_score"])


def aggregate(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every numeric column, one row per method (order kept).

    `under_trained` becomes the number of seeds under twice chance on validation, and the method is
    marked under-trained when its mean validation balanced top-1 is.
    """
    order = list(dict.fromkeys(per_seed["method"]))
    table = per_seed.assign(under_trained=per_seed["under_trained"].astype(int))
    numeric = table.drop(columns=["method", "seed"], errors="ignore").select_dtypes("number").columns
    g = table.groupby("method", sort=False)
    out = g[list(numeric)].mean().add_suffix("_mean").join(g[list(numeric)].std(ddof=1).add_suffix("_std"))
    out = out.join(g.size().rename("seeds")).join(g["under_trained"].sum().rename("seeds_under_trained"))
    for col in ("kind", "budget_note", "tta_family", "many_shot_classes", "medium_shot_classes", "few_shot_classes",
                "ood_score", "val_half"):
        if col in table.columns:
            out = out.join(g[col].first())
    out["under_trained"] = out["val_balanced_top1_mean"] < UNDER_TRAINED
    if "three-stage" in out.index and "seed" in table.columns:
        out = out.join(paired_with_three_stage(table))
        if "auroc" in table.columns:          # OOD detection (ood_evidence), where the data has OOD chips
            out = out.join(paired_with_three_stage(table, column="auroc").add_prefix("auroc_"))
    return out.loc[order].reset_index()


def with_bootstrap(summary: pd.DataFrame, predictions: list, resamples: int = 2000) -> pd.DataFrame:
    """`summary` with three-stage's gap to every method by the two-level bootstrap (statistics.bootstrap_paired):
    boot_gap, boot_lo, boot_hi, boot_p. `predictions`: one table per seed, a `label` column and a column of
    predicted classes per method (the same test chips in every seed); unchanged when there is none."""
    from .statistics import bootstrap_paired
    if not predictions or "three-stage" not in predictions[0].columns:
        return summary
    labels = predictions[0]["label"].to_numpy()
    correct = lambda m: np.stack([(p[m].to_numpy() == labels) for p in predictions])
    rows = {}
    for method in summary["method"]:
        if method != "three-stage" and all(method in p.columns for p in predictions):
            r = bootstrap_paired(correct("three-stage"), correct(method), labels, resamples=resamples)
            rows[method] = {f"boot_{k}": r[k] for k in ("gap", "lo", "hi", "p")}
    return summary.join(pd.DataFrame.from_dict(rows, orient="index"), on="method") if rows else summary


def tta_gains(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per TTA variant, the gain over TTA off in balanced top-1, mean ± std over seeds."""
    wide = per_seed.pivot_table(index="seed", columns="method", values="balanced_top1")
    off = "three-stage, TTA off"
    rows = []
    for name in ("three-stage", "three-stage, 12-view rotation TTA"):
        if name in wide and off in wide:
            gain = (wide[name] - wide[off]).to_numpy()
            rows.append({"tta": name, "gain_mean": float(gain.mean()),
                         "gain_std": float(gain.std(ddof=1)) if len(gain) > 1 else float("nan"), "seeds": len(gain)})
    return pd.DataFrame(rows)


def paired_with_three_stage(per_seed: pd.DataFrame, column: str = "balanced_top1") -> pd.DataFrame:
    """For every method, three-stage - method in `column`, paired by seed: paired_gap, paired_lo and
    paired_hi (95% t-interval), paired_p (paired t-test) and paired_seeds (verdicts.paired)."""
    from .statistics import paired
    wide = per_seed.pivot_table(index="seed", columns="method", values=column)
    rows = {}
    for method in wide.columns:
        both = wide[["three-stage", method]].dropna()
        r = paired(both["three-stage"], both[method]) if method != "three-stage" else {}
        rows[method] = {f"paired_{k if k != 'pairs' else 'seeds'}": v for k, v in r.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def best_two_stage(table: pd.DataFrame, column: str = "val_balanced_top1_mean") -> str:
    """The two-stage method with the best *validation* score (never chosen on test)."""
    two = table[table["method"].isin(TWO_STAGE)]
    return str(two.loc[two[column].idxmax(), "method"])
