"""The evidence figures: methods side by side (one seed or mean ± std over seeds), three-stage's paired
gap to each of them with its interval, and accuracy against the training budget. Same look as every
figure of the course (`helpers.figures.plotting`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .plotting import SERIES_COLOURS, save_show

THREE_STAGE_COLOUR = "#2ca02c"


def method_bars(table, run_dir, name: str, value="balanced_top1", error=None, title="Balanced top-1 by method",
                xlabel="balanced top-1 on the test set", highlight="three-stage"):
    """Horizontal bars, one per method (`table['method']`), optional error bars from column `error`."""
    t = table.reset_index(drop=True)
    y = np.arange(len(t))[::-1]
    colours = [THREE_STAGE_COLOUR if m == highlight else ("#1f77b4" if "three-stage" in m else "#7f7f7f") for m in t["method"]]
    err = t[error].fillna(0).to_numpy() if error else None
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(t) + 1.4))
    bars = ax.barh(y, t[value], xerr=err, color=colours, capsize=4, error_kw={"elinewidth": 1})
    labels = [f"{v:.3f}" + (f" ± {e:.3f}" if err is not None else "") for v, e in zip(t[value], err if err is not None else t[value])]
    ax.bar_label(bars, labels=labels, fontsize=8, padding=6)
    ax.axvline(0.1, color="black", lw=0.8, ls=":", label="chance")
    ax.set_yticks(y, t["method"])
    ax.set_xlim(0, min(1.15, max(0.2, float((t[value] + (err if err is not None else 0)).max()) * 1.25)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("method")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return save_show(fig, run_dir, name)


def paired_gaps(summary, run_dir, rival: str | None = None, name="paired_gaps",
                title="Three-stage minus each method, paired by seed"):
    """A forest plot of a multi-seed comparison (`experiments.aggregate`'s paired columns): per method,
    three-stage's mean paired gap in test balanced top-1 (points) with its 95 % t-interval over the seeds
    (bars), green where the interval lies above 0, red below, grey across 0: each pair on its own, before
    any correction for the number of pairs (the tables give Holm's). `rival`: claim (1)'s rival, named on
    its row."""
    t = summary[(summary["method"] != "three-stage") & summary["paired_gap"].notna()].reset_index(drop=True)
    y = np.arange(len(t))[::-1]
    gap, lo, hi = (100 * t[c].to_numpy() for c in ("paired_gap", "paired_lo", "paired_hi"))
    colours = ["#2ca02c" if a > 0 else "#d62728" if b < 0 else "#7f7f7f" for a, b in zip(lo, hi)]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(t) + 1.6))
    ax.axvline(0, color="black", lw=0.8)
    for yi, g, a, b, c in zip(y, gap, lo, hi, colours):
        ax.errorbar(g, yi, xerr=[[g - a], [b - g]] if np.isfinite(a) else None, fmt="o", color=c, capsize=4)
        ax.annotate(f"{g:+.1f} [{a:+.1f}, {b:+.1f}]", (max(b, g) if np.isfinite(b) else g, yi),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    labels = [f"{m} (claim 1's rival)" if m == rival else m for m in t["method"]]
    ax.set_yticks(y, labels)
    seeds = int(t["paired_seeds"].max()) if "paired_seeds" in t and len(t) else 0
    ax.set_xlabel(f"three-stage minus the method: balanced top-1 on test, pp (mean and 95 % t-interval over {seeds} seeds)")
    ax.set_ylabel("method")
    ax.set_title(title)
    left, right = np.nanmin(np.r_[lo, gap, 0]), np.nanmax(np.r_[hi, gap, 0])
    ax.set_xlim(left - 0.05 * (right - left) - 1, right + 0.3 * (right - left) + 1)
    return save_show(fig, run_dir, name)


def budget_sweep(table, run_dir, name="budget_sweep", title="Balanced top-1 against the training budget"):
    """Accuracy vs full-model optimizer steps, one line per method, error bars = std over seeds.

    `table`: rows of (method, budget_scale, full_steps_mean, balanced_top1_mean, balanced_top1_std, seeds, under_trained).
    The methods are dodged a little along x so that their error bars do not hide each other; the
    y axis spans the data (chance is drawn only when it is near), so that gaps of a point show.
    """
    methods = list(dict.fromkeys(table["method"]))
    others = [c for c in SERIES_COLOURS if c != THREE_STAGE_COLOUR]
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for i, method in enumerate(methods):
        rows = table[table["method"] == method].sort_values("full_steps_mean")
        colour = THREE_STAGE_COLOUR if method == "three-stage" else others[i % len(others)]
        x = rows["full_steps_mean"] * 2 ** (0.04 * (i - (len(methods) - 1) / 2))
        ax.errorbar(x, rows["balanced_top1_mean"], yerr=rows["balanced_top1_std"].fillna(0), marker="o", capsize=3,
                    color=colour, lw=2.4 if method == "three-stage" else 1.2, label=method,
                    zorder=4 if method == "three-stage" else 3)
        under = rows["under_trained"].astype(bool).to_numpy()
        ax.scatter(x[under], rows["balanced_top1_mean"][under], marker="x", s=80, color="black", zorder=5)
    lo = float((table["balanced_top1_mean"] - table["balanced_top1_std"].fillna(0)).min())
    hi = float((table["balanced_top1_mean"] + table["balanced_top1_std"].fillna(0)).max())
    pad = max(0.01, 0.08 * (hi - lo))
    if lo - pad < 0.2:
        ax.axhline(0.1, color="black", lw=0.8, ls=":", label="chance")
        lo = min(lo, 0.1)
    ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    if table["under_trained"].astype(bool).any():
        ax.scatter([], [], marker="x", s=80, color="black", label="under-trained")
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    scales = table.drop_duplicates("budget_scale").sort_values("full_steps_mean")
    ax.set_xticks(scales["full_steps_mean"], [f"{s:g}x\n{f:,.0f}" for s, f in zip(scales["budget_scale"], scales["full_steps_mean"])])
    ax.set_xlabel("budget: full-model optimizer steps (classifier-only steps scale alike)")
    ax.set_ylabel("balanced top-1 (test), mean ± std")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_show(fig, run_dir, name)


def ood_histograms(scores: dict, aurocs: dict, score_names: dict, run_dir, name="ood_scores",
                   title="In-distribution confidence: test chips against OOD chips"):
    """One panel per method: histograms of its OOD score on the in-distribution test chips and on the
    OOD test chips (density, shared bins per panel), its AUROC in the panel title.

    `scores`: method -> {"in-distribution": array, "OOD": array}; `aurocs`, `score_names`: method -> value."""
    methods = list(scores)
    cols = min(3, len(methods))
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, method in zip(axes.flat, methods):
        both = np.concatenate([scores[method]["in-distribution"], scores[method]["OOD"]])
        bins = np.linspace(both.min(), both.max() + 1e-9, 25)
        ax.hist(scores[method]["in-distribution"], bins=bins, density=True, alpha=0.6, color=THREE_STAGE_COLOUR,
                label="in-distribution (test)")
        ax.hist(scores[method]["OOD"], bins=bins, density=True, alpha=0.6, color="#d62728", label="OOD (test)")
        ax.set_title(f"{method}: AUROC {aurocs[method]:.3f}", fontsize=10)
        ax.set_xlabel(score_names[method])
        ax.set_ylabel("density")
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_show(fig, run_dir, name)
