"""Scores of the trained models (notebooks 01-04): per stage and class, with and without TTA; size and
speed against ResNet-50; and the seed's three claims next to what the run measured."""
from __future__ import annotations

from ..settings import config
from ..settings.catalog import STAGES
from ..settings.paths import resolve_path

UNIFORM_THRESHOLD = 0.1     # "near uniform": total-variation distance below this
SEED_CLAIMS = {"three_stage_top1": 0.2234, "two_stage_top1": 0.2109, "model_mb": 11.2,
               "latency_s": 0.0146, "resnet50_latency_s": 0.0225}


def load_final(run_dir, stage: str):
    from ..evidence.experiments import final_model
    return final_model(run_dir, stage)


def stage_summary(run_dir, stage: str, bundle, settings, k: int = 1, save: bool = True) -> dict:
    """Test-set scores of a stage's model (k TTA views); saved as <run_dir>/<stage>_test.json.

    A stage-2 (9-way) model never predicts class 0, so its class-0 test images count as wrong.
    """
    from ..method import metrics, predictions
    y = bundle.test.targets.numpy()
    s = metrics.summary(y, predictions.labels(run_dir, stage, bundle.test, settings, k))
    tail = [a for a in s["per_class"][1:] if a == a]               # the measured tail classes (NaN != NaN)
    s["tail_balanced_top1"] = float(sum(tail) / len(tail)) if tail else float("nan")
    s.update(stage=stage, tta_views=k, test_images=int(len(y)))
    if save:
        from ..method.runs import save_metrics
        save_metrics(s, run_dir, f"{stage}_test.json")
    return s


def measured_banner(bundle) -> str:
    """A warning (Markdown) when the test set does not measure every class, else ""."""
    counts = bundle.class_counts("test")
    missing = [c for c in range(len(counts)) if counts[c] == 0]
    if not missing:
        return ""
    k = len(counts) - len(missing)
    return (f"**The test set measures only {k} of {len(counts)} classes** (no test chip of class "
            f"{', '.join(map(str, missing))}). Every balanced top-1 below is the mean over those {k} classes and "
            f"says so; their accuracy is *not measured*, and no verdict on this data is evidence.")


def scores_table(summaries: dict, class_names):
    """Per-class accuracy of several models side by side (rows: classes); a class with no test chip
    reads "not measured", and the last row names the balanced top-1 over the classes measured."""
    import pandas as pd

    from ..method.metrics import not_measured
    table = pd.DataFrame({name: s["per_class"] for name, s in summaries.items()},
                         index=[f"{c}: {n}" for c, n in enumerate(class_names)])
    table.loc[next(iter(summaries.values()))["balanced_label"]] = [s["balanced_top1"] for s in summaries.values()]
    return not_measured(table.round(3))


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
                         "classes_measured": s["classes_measured"], "distance_from_uniform": s["distance_from_uniform"],
                         "per_class": s["per_class"], "predicted_share": s["predicted_share"]})
    return pd.DataFrame(rows)


def stage_table(stages_table):
    """evaluate_stages' rows as one row per stage, no-TTA and TTA columns side by side."""
    t = stages_table.copy()
    order = t.sort_values("tta_views", kind="stable")["tta"].unique()
    wide = t.pivot(index="stage", columns="tta", values=["balanced_top1", "top1"]).loc[STAGES]
    wide = wide.reindex(columns=[(m, k) for m in ("balanced_top1", "top1") for k in order])
    from ..method.metrics import balanced_label
    label = balanced_label(int(t["classes_measured"].min())) if "classes_measured" in t else "balanced top-1"
    wide.columns = [f"{label if m == 'balanced_top1' else 'top-1'}, {k}" for m, k in wide.columns]
    return wide.round(3)


def final_predictions(bundle, settings, run_dir, stage: str = "stage3b"):
    """Labels and TTA predictions of the final model on the test set."""
    from ..method import predictions
    return bundle.test.targets.numpy(), predictions.labels(run_dir, stage, bundle.test, settings, k=settings.tta_views)


def read_comparison(path):
    """The multi-seed comparison table if it exists (else None)."""
    import pandas as pd
    path = resolve_path(path)
    return pd.read_csv(path) if path.is_file() else None


def multi_seed(profile: str, settings, path=None):
    """(path, table or None) of the multi-seed comparison of this run's data, profile and budget
    (`python -m helpers.compare` writes it), or of `path` when given."""
    from ..evidence import compare
    path = resolve_path(path) if path else compare.folder(profile, settings.data, settings.budget_scale) / "comparison.csv"
    return path, read_comparison(path)


def budget_sweep(profile: str, settings):
    """(folder, long table or None, verdicts or None) of this data's budget sweep (`python -m helpers.sweep`)."""
    import pandas as pd

    from ..evidence import sweep
    folder = sweep.folder(profile, settings.data)
    if not (folder / "sweep.csv").is_file():
        return folder, None, None
    return folder, pd.read_csv(folder / "sweep.csv"), pd.read_csv(folder / "verdicts.csv")


def speed_and_size(run_dir, settings, stage: str = "stage3b", rounds: int | None = None):
    """Our final model vs torchvision's ResNet-50 (10 classes, random weights, the same chip with 3 channels).

    Measured with `helpers.evidence.speed` (as `make benchmark` does) at this run's `image_size` and, if
    different, at the paper's input size too, since the cost of both networks grows differently with
    the input; in fp32 and, where the run computes in another precision, in that one too (column
    `as run`: the rows the claim uses). bf16 autocast casts the weights at every call, which a batch
    of one pays in full: its latency can be *longer* than fp32's while batches run faster.
    """
    import pandas as pd
    import torch

    from ..evidence import speed
    from ..method.devices import resolve_precision
    from ..method.inference import as_device, memory_format_for
    rounds = rounds or settings.latency_rounds
    device = as_device(settings.device)
    run_precision = resolve_precision(settings.precision, device)
    models = {"Shake-Shake-26 2x32d (ours)": (load_final(run_dir, stage), 1),
              "ResNet-50 (torchvision)": (speed.resnet50(), 3)}
    sizes = list(dict.fromkeys([settings.image_size, config.resolve("paper").image_size]))
    tables = []
    for precision in dict.fromkeys(["fp32", run_precision]):
        t = speed.size_and_latency(models, sizes, device, rounds=rounds, precision=precision)
        tables.append(t.assign(precision=precision, **{"as run": precision == run_precision}))
    fmt = "channels_last" if memory_format_for(device) == torch.channels_last else "contiguous"
    print(f"measured on {device} ({fmt} model and input; this run computes in {run_precision}), "
          f"batch of one, median of {rounds} rounds, at {' and '.join(f'{s} px' for s in sizes)}")
    return pd.concat(tables, ignore_index=True)


def claims_table(methods, final_distance: float, speed, comparison=None, sweep=None):
    """The seed's three claims next to what was measured; claim (1) from the multi-seed table when there is one,
    with the verdict at every budget of the budget sweep (`sweep`: its verdicts table) when there is one.

    The verdict column says "held", "not held", "inconclusive" or "not evidence" (helpers.evidence.verdicts):
    one seed, or an under-trained side, is never a verdict's basis.
    """
    import pandas as pd

    from ..evidence import verdicts
    from ..evidence.experiments import TWO_STAGE, best_two_stage
    usable = comparison is not None and "three-stage" in set(comparison["method"]) \
        and bool(set(TWO_STAGE) & set(comparison["method"]))
    if usable:
        v = verdicts.claim1(comparison)
        split = "val_half" in comparison.columns
        one = {"this run": verdicts.sentence(v).replace("**", ""), "held": v["verdict"],
               "note": (f"multi-seed table, {v['seeds']} seeds paired; the rival is the best two-stage method on "
                        + ("the ranking half of validation (tau tuned on the other half)" if split else
                           "validation (a table from before validation was split: tau-norm's tau tuned on that same set)"))}
    else:
        by = methods.set_index("method")
        rival = best_two_stage(methods, column="val_balanced_top1")
        one = {"this run": (f"three-stage {by.loc['three-stage', 'balanced_top1']:.2%} vs {rival} "
                            f"{by.loc[rival, 'balanced_top1']:.2%} balanced top-1 (best two-stage by validation)"),
               "held": "not evidence", "note": "one seed: no spread to judge the gap by; run make compare"}
    if sweep is not None and len(sweep):
        one["note"] += "; " + verdicts.sweep_note(sweep)
        last = sweep.iloc[-1]
        if len(sweep) > 1 and last["verdict"] != "not evidence":    # the headline: the largest budget measured
            one = {"this run": f"at {last['budget']}, the largest budget of the sweep, vs {last['rival']}: {last['why']}",
                   "held": last["verdict"],
                   "note": one["note"] + f"; the verdict quoted is the one at {last['budget']} (1x measures convergence speed)"}
    def classes(table, column):             # tables from before the column existed measured all 10
        return int(table[column].min()) if table is not None and column in table else 10
    measured = min(classes(methods, "classes_measured"), classes(comparison, "classes_measured_mean"))
    unmeasured = f"not evidence: the test set measures only {measured} of 10 classes"
    if usable:
        c = comparison.set_index("method").loc["three-stage"]
        distance, spread = float(c["distance_from_uniform_mean"]), f" ± {float(c['distance_from_uniform_std']):.3f} ({int(c['seeds'])} seeds)"
    else:
        distance, spread = final_distance, " (this run)"
    speed = speed[speed["as run"]]                  # the precision this run computes in
    ours, resnet = speed.iloc[0], speed.iloc[1]
    at = f"input {ours['input']}, {ours['precision']}"
    if len(speed) >= 4:
        o, r = speed.iloc[2], speed.iloc[3]
        at += (f"; the paper's input {o['input']}: {o['median s / image']:.4f} vs {r['median s / image']:.4f} s/image")
    fast_small = bool(ours["median s / image"] < resnet["median s / image"] and ours["state_dict MiB"] < resnet["state_dict MiB"])
    rows = [
        {"claim": "(1) three-stage beats the best two-stage method",
         "seed": f"{SEED_CLAIMS['three_stage_top1']:.2%} vs {SEED_CLAIMS['two_stage_top1']:.2%} top-1", **one},
        {"claim": "(2) predicted classes are near uniform",
         "seed": "Figure: predictions spread evenly over the 10 classes",
         "this run": f"distance from uniform {distance:.3f}{spread} (threshold {UNIFORM_THRESHOLD})",
         "held": ("held" if distance < UNIFORM_THRESHOLD else "not held") if measured == 10 else "not evidence",
         "note": "total-variation distance of the predicted-class shares from 1/10, final model with TTA"},
        {"claim": "(3) small and faster than ResNet-50",
         "seed": (f"{SEED_CLAIMS['model_mb']} MB, {SEED_CLAIMS['latency_s']} s/image vs ResNet-50 "
                  f"{SEED_CLAIMS['resnet50_latency_s']} s/image"),
         "this run": (f"{ours['state_dict MiB']:.1f} MiB, {ours['median s / image']:.4f} s/image vs ResNet-50 "
                      f"{resnet['state_dict MiB']:.1f} MiB, {resnet['median s / image']:.4f} s/image"),
         "held": "held" if fast_small else "not held",
         "note": f"state_dict saved to memory; median single-image latency on this machine, {at}"},
    ]
    if usable:                                         # beyond the claim: is three-stage the best of all methods?
        b = verdicts.best_of_all(comparison)
        rows.insert(1, {"claim": "(1b) three-stage beats every method, not only the two-stage ones",
                        "seed": "(not claimed)", "this run": b["why"], "held": b["verdict"],
                        "note": "paired by seed against each method of the table, Holm-corrected across them"})
    if measured < 10:                                  # claims (1) and (2) are about the tail: unmeasured here
        for row in rows[:3 if usable else 2]:
            row["held"], row["note"] = "not evidence", f"{unmeasured}; " + row["note"]
    return pd.DataFrame(rows)


