"""Out-of-distribution detection of every method of the comparison (PBVS 2023-2025).

For a method (a path of stage folders, its TTA, its post-hoc step), the logits of its test-time views
on four sets: validation and the OOD chips that choose the score (ood_val), test and the OOD chips
that measure it (ood_test).  Its row gains:
  auroc_msp, auroc_max_logit, auroc_energy   test ID against ood_test, each OOD score (helpers.method.ood);
  ood_score                                  the score the `ood_score` setting picks ("auto": the best
                                             validation AUROC, on val against ood_val, never on test);
  auroc, fpr95                               that score's test AUROC and FPR at 95 % TPR;
  challenge_total                            0.75 x test top-1 + 0.25 x auroc.
Data without OOD chips (digits-lt, the 2021 archive) gets no such columns.
"""
from __future__ import annotations

import math

from ..method import ood, predictions
from .logit_adjustment import adjusted, log_prior
from .rebalancing import tau_normalise
from .statistics import holm


def method_logits(bundle, settings, run_dir, spec: dict, k: int, family: str, extra: dict,
                  which=("val", "ood_val", "test", "ood_test")) -> dict:
    """The method's view logits (views x N x C) on each set of `which` (of val, ood_val, test, ood_test)."""
    stage = spec["path"][-1]
    every = {"val": bundle.val, "ood_val": bundle.ood_val, "test": bundle.test, "ood_test": bundle.ood_test}
    sets = {name: every[name] for name in which}
    if spec.get("post") == "tau":      # tau-norm: the plain-CE features on the tau-normalised, bias-free classifier
        weight = predictions.stage_model(run_dir, stage)[0].fc.weight.detach().float().cpu()
        w = tau_normalise(weight, extra["tau"])
        feats = lambda ds: predictions.view_features(run_dir, stage, ds, settings, k, family, bundle.hflip).float()
        return {name: feats(ds) @ w.T for name, ds in sets.items() if ds is not None}
    out = {name: predictions.view_logits(run_dir, stage, ds, settings, k, family, bundle.hflip)
           for name, ds in sets.items() if ds is not None}
    if spec.get("post") == "la":       # logit adjustment: the plain-CE logits minus tau x log prior
        prior_log = log_prior(bundle.class_counts("train"))
        out = {name: adjusted(v, prior_log, extra["la_tau"]) for name, v in out.items()}
    return out


def columns(bundle, settings, run_dir, spec: dict, k: int, family: str, extra: dict, top1: float) -> dict:
    """The OOD columns of a method's row (see the module docstring); {} without OOD chips."""
    if not bundle.has_ood:
        return {}
    logits = method_logits(bundle, settings, run_dir, spec, k, family, extra)
    measured = ood.table(logits["test"], logits["ood_test"])
    chosen, _ = ood.choose(settings.ood_score, logits["val"], logits.get("ood_val"))
    auroc = measured[chosen]["auroc"]
    return {**{f"auroc_{name}": v["auroc"] for name, v in measured.items()}, "ood_score": chosen,
            "auroc": auroc, "fpr95": measured[chosen]["fpr95"], "challenge_total": ood.challenge_total(top1, auroc)}


def scores(bundle, settings, run_dir, spec: dict, k: int, family: str, extra: dict, name: str) -> dict:
    """{"in-distribution": test scores, "OOD": ood_test scores} of the OOD score `name` (for histograms)."""
    logits = method_logits(bundle, settings, run_dir, spec, k, family, extra, which=("test", "ood_test"))
    return {"in-distribution": ood.score(logits["test"], name), "OOD": ood.score(logits["ood_test"], name)}


def _cell(r, col: str, digits: int = 3) -> str:
    m, s = r.get(f"{col}_mean", r.get(col)), r.get(f"{col}_std")
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "–"
    return f"{m:.{digits}f}" + ("" if s is None or (isinstance(s, float) and math.isnan(s)) else f" ± {s:.{digits}f}")


def markdown(table) -> str:
    """The OOD table of a comparison (per-seed rows or their aggregate); "" without OOD columns."""
    if not any(c.startswith("auroc") for c in table.columns):
        return ""
    paired = "auroc_paired_gap" in table.columns
    head = ["method", "OOD score (chosen on validation)", "AUROC", "FPR at 95 % TPR", "challenge total",
            "AUROC msp / max logit / energy"] + (["three-stage minus it, AUROC [95% CI], p"] if paired else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for _, r in table.iterrows():
        cells = [r["method"], str(r.get("ood_score", "–")), _cell(r, "auroc"), _cell(r, "fpr95"), _cell(r, "challenge_total"),
                 " / ".join(_cell(r, f"auroc_{n}") for n in ood.SCORES)]
        if paired:
            gap, lo, hi, p = (r.get(f"auroc_paired_{x}") for x in ("gap", "lo", "hi", "p"))
            cells.append("–" if gap is None or math.isnan(gap) else
                         f"{gap:+.3f}" + ("" if math.isnan(p) else f" [{lo:+.3f}, {hi:+.3f}], p {p:.3f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict(table) -> str:
    """Whether three-stage helps or harms OOD detection against every other method of the table (its rows of
    kind "method": not the TTA variants or the ablations), computed from it: its paired interval where there
    is one, and, since the sentence states one verdict per rival, Holm's correction across them (helps /
    harms only with the interval clear of 0 and the corrected p under 0.05)."""
    if "auroc_mean" not in table.columns and "auroc" not in table.columns:
        return "no OOD set: nothing to say about OOD detection on this data"
    col = "auroc_mean" if "auroc_mean" in table.columns else "auroc"
    by = table.set_index("method")
    rivals = [m for m in by.index if m != "three-stage" and by.loc[m].get("kind", "method") == "method"]
    rivals = rivals if "three-stage" in by.index else []
    paired = "auroc_paired_lo" in by.columns and "auroc_paired_p" in by.columns
    tested = [m for m in rivals if paired and not math.isnan(by.loc[m, "auroc_paired_lo"])]
    adjusted = dict(zip(tested, holm([by.loc[m, "auroc_paired_p"] for m in tested])))
    out = []
    for rival in rivals:
        gap = by.loc["three-stage", col] - by.loc[rival, col]
        text = f"three-stage minus {rival}: {gap:+.3f} AUROC"
        if rival in adjusted:
            lo, hi, q = by.loc[rival, "auroc_paired_lo"], by.loc[rival, "auroc_paired_hi"], adjusted[rival]
            word = "helps" if lo > 0 and q < 0.05 else ("harms" if hi < 0 and q < 0.05 else "inconclusive")
            text += f" [{lo:+.3f}, {hi:+.3f}], Holm p {q:.3f}: {word}"
        else:
            text += " (one seed: no interval, not evidence)"
        out.append(text)
    if len(tested) > 1:
        out.append(f"Holm-corrected over {len(tested)} rivals")
    return "; ".join(out) if out else "three-stage or its rivals are missing from the table"
