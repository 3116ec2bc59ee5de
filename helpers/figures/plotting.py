"""Every figure of the course: one function per kind of plot, one look for all of them.

Each function draws, saves a PNG into `<run_dir>/figures/<name>.png`, shows the figure (inline in
a notebook; nothing happens in a script) and returns the saved path.  Class 0 (the head class,
"sedan" on MAVOC) is always red; the nine tail classes get the nine other colours of tab10,
so a class has the same colour in every figure of the course.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

HEAD_RED = "#d62728"
_TAB10 = [matplotlib.colormaps["tab10"](i) for i in range(10)]
TAIL_COLOURS = [c for i, c in enumerate(_TAB10) if i != 3]        # tab10 without its red
CLASS_COLOURS = [HEAD_RED] + TAIL_COLOURS
# tab10 without its red (the head class's): nine series, so the budget sweep's nine methods never share one
SERIES_COLOURS = ["#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#bcbd22", "#e377c2"]
DPI = 130

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                     "axes.spines.right": False, "axes.titleweight": "bold", "legend.frameon": False})


def class_colour(c: int):
    return CLASS_COLOURS[c % 10]


def tick_labels(class_names, classes=None) -> list[str]:
    classes = range(len(class_names)) if classes is None else classes
    return [f"{c}: {class_names[c]}" for c in classes]


def _colour_head_tick(ax, classes, axis="x") -> None:
    """Write the class-0 tick label in red, like its points and bars."""
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    for label, c in zip(labels, classes):
        if c == 0:
            label.set_color(HEAD_RED)


def save_show(fig, run_dir, name: str) -> Path:
    """Save `fig` as <run_dir>/figures/<name>.png, show it, close it; returns the path."""
    folder = Path(run_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    if "inline" in matplotlib.get_backend():
        plt.show()
    plt.close(fig)
    return path


# ---------------------------------------------------------------- 00 data audit
def class_counts(counts, class_names, run_dir, name="class_counts", title="Training images per class", log=True):
    counts = np.asarray(counts)
    classes = list(range(len(counts)))
    fig, ax = plt.subplots(figsize=(9, 4))
    bars = ax.bar(classes, counts, color=[class_colour(c) for c in classes])
    ax.bar_label(bars, labels=[f"{n:,}" for n in counts], fontsize=8, padding=2)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(classes, tick_labels(class_names, classes), rotation=35, ha="right")
    _colour_head_tick(ax, classes)
    ax.set_xlabel("class")
    ax.set_ylabel("images" + (" (log scale)" if log else ""))
    ax.set_title(title)
    return save_show(fig, run_dir, name)


def chip_grid(chips, class_names, run_dir, name="example_chips", title="Example chips per class"):
    """`chips[c]` is a list of 2-D uint8 arrays of class c (any size); one row per class."""
    rows, cols = len(chips), max(len(r) for r in chips)
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 * cols + 1.9, 1.0 * rows + 0.8), squeeze=False,
                             gridspec_kw={"wspace": 0.06, "hspace": 0.06, "left": 1.9 / (cols + 1.9),
                                          "right": 0.99, "top": 1 - 0.5 / (rows + 0.8), "bottom": 0.3 / (rows + 0.8)})
    for c, row in enumerate(chips):
        for j in range(cols):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(j < len(row))
                spine.set_color(class_colour(c))
            if j < len(row):
                ax.imshow(row[j], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[c, 0].set_ylabel(tick_labels(class_names)[c], rotation=0, ha="right", va="center", fontsize=8,
                              color=class_colour(c) if c == 0 else "black")
    fig.suptitle(title, fontweight="bold", y=1 - 0.1 / (rows + 0.8), va="top")
    fig.supxlabel("examples (grey level 0-255; radar range direction is down)", fontsize=9, y=0.0)
    return save_show(fig, run_dir, name)


def intensity_histograms(pixels, class_names, run_dir, name="intensity_histograms",
                         title="Pixel intensity per class (speckle statistics)"):
    """`pixels[c]` is a 1-D array of the grey levels (0-255) of class c's chips."""
    fig, axes = plt.subplots(2, 5, figsize=(14, 5.2), sharex=True, sharey=True)
    bins = np.arange(0, 257, 4)
    for c, ax in enumerate(axes.flat):
        values = np.asarray(pixels[c], dtype=float)
        ax.hist(values, bins=bins, density=True, color=class_colour(c), alpha=0.85)
        ax.axvline(values.mean(), color="black", lw=1, ls="--", label="mean")
        ax.set_yscale("log")
        ax.set_title(tick_labels(class_names)[c], fontsize=9, color=HEAD_RED if c == 0 else "black")
        ax.text(0.97, 0.95, f"mean {values.mean():.0f}\nstd {values.std():.0f}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8)
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.supxlabel("grey level (0-255)")
    fig.supylabel("density (log scale)")
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return save_show(fig, run_dir, name)


def split_sizes(table, run_dir, name="split_sizes", title="Images per split and class"):
    """`table`: DataFrame indexed by class name with one column per split."""
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(table))
    width = 0.8 / len(table.columns)
    for i, split in enumerate(table.columns):
        ax.bar(x + (i - (len(table.columns) - 1) / 2) * width, table[split], width, label=split,
               color=SERIES_COLOURS[i + 1])
    ax.set_yscale("log")
    ax.set_xticks(x, table.index, rotation=35, ha="right")
    _colour_head_tick(ax, range(len(table)))
    ax.set_xlabel("class")
    ax.set_ylabel("images (log scale)")
    ax.set_title(title)
    ax.legend(title="split")
    return save_show(fig, run_dir, name)


# ---------------------------------------------------------------- training
def learning_curves(history, stage: str, run_dir, name=None):
    """Loss, training accuracy (per epoch) and validation balanced top-1 (where measured) against optimizer steps."""
    h = history.copy()
    x = h["steps"].cumsum() if "steps" in h else h["epoch"]
    xlabel = "optimizer step" if "steps" in h else "epoch"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(x, h["train_loss"], ".-", color="#1f77b4", label="training loss")
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("loss")
    ax1.set_title(f"{stage}: training loss")
    ax1.legend()
    ax2.plot(x, h["train_acc"], ".-", color="#7f7f7f", label="training accuracy (augmented batches)")
    if "val_balanced_top1" in h:
        measured = h["val_balanced_top1"].notna()
        ax2.plot(x[measured], h.loc[measured, "val_balanced_top1"], "s-", color="#2ca02c", label="validation balanced top-1")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("accuracy")
    ax2.set_title(f"{stage}: accuracy")
    ax2.legend(loc="lower right", fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xlim(0, float(x.max()) * 1.02 + 0.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    return save_show(fig, run_dir, name or f"{stage}_learning_curves")


def per_class_bars(series: dict, class_names, run_dir, name: str, classes=None,
                   title="Per-class test accuracy", ylabel="accuracy (recall) on the test set"):
    """Grouped bars: `series` maps a label (e.g. 'stage 1') to per-class accuracies over `classes`.

    With one series the bars take the class colours (class 0 red); with several, one colour per series.
    """
    classes = list(range(len(class_names))) if classes is None else list(classes)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(classes) + 0.6 * len(series)), 4.2))
    x = np.arange(len(classes))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        colour = [class_colour(c) for c in classes] if len(series) == 1 else SERIES_COLOURS[i % len(SERIES_COLOURS)]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, color=colour,
               label=f"{label} (mean {values.mean():.2f})")
    ax.axhline(0.1, color="black", lw=0.8, ls=":", label="chance (1/10)")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(x, tick_labels(class_names, classes), rotation=35, ha="right")
    _colour_head_tick(ax, classes)
    ax.set_xlabel("class")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_show(fig, run_dir, name)


def balanced_set(originals, copies, class_names, run_dir, name="stage3_balanced_set",
                 title="The stage-3 balanced set: original images and augmented copies"):
    classes = list(range(len(originals)))
    fig, ax = plt.subplots(figsize=(9, 4))
    from matplotlib.patches import Patch
    ax.bar(classes, originals, color=[class_colour(c) for c in classes])
    ax.bar(classes, copies, bottom=originals, color="white", edgecolor=[class_colour(c) for c in classes], hatch="///")
    handles = [Patch(facecolor="#7f7f7f", label="distinct training images"),
               Patch(facecolor="white", edgecolor="#7f7f7f", hatch="///", label="repeated draws (augmented copies)")]
    ax.set_xticks(classes, tick_labels(class_names, classes), rotation=35, ha="right")
    _colour_head_tick(ax, classes)
    ax.set_xlabel("class")
    ax.set_ylabel("images in the balanced set")
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return save_show(fig, run_dir, name)


# ---------------------------------------------------------------- evaluation
def stage_scores(table, run_dir, name="stage_scores", title="Balanced top-1 on the test set after each stage"):
    """`table`: DataFrame with columns stage, tta (label), balanced_top1."""
    order = table.sort_values("tta_views", kind="stable")["tta"].unique()
    pivot = table.pivot(index="stage", columns="tta", values="balanced_top1")
    pivot = pivot.loc[list(dict.fromkeys(table["stage"])), list(order)]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(pivot))
    width = 0.8 / len(pivot.columns)
    for i, col in enumerate(pivot.columns):
        bars = ax.bar(x + (i - (len(pivot.columns) - 1) / 2) * width, pivot[col], width, label=col,
                      color=SERIES_COLOURS[i + 1])
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.axhline(0.1, color="black", lw=0.8, ls=":", label="chance")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(x, pivot.index)
    ax.set_xlabel("model after stage")
    ax.set_ylabel("balanced top-1")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_show(fig, run_dir, name)


def confusion(cm, class_names, run_dir, name="confusion_matrix", title="Confusion matrix (rows sum to 1)"):
    from sklearn.metrics import ConfusionMatrixDisplay
    fig, ax = plt.subplots(figsize=(8.5, 7.5), layout="constrained")
    ConfusionMatrixDisplay(cm, display_labels=tick_labels(class_names)).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=True, xticks_rotation=45)
    ax.grid(False)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.suptitle(title, fontweight="bold")
    _colour_head_tick(ax, range(len(class_names)), "x")
    _colour_head_tick(ax, range(len(class_names)), "y")
    for text in ax.texts:
        text.set_fontsize(7)
    return save_show(fig, run_dir, name)


def distribution_vs_uniform(shares, class_names, distance: float, run_dir, name="predicted_distribution",
                            title="Predicted classes on the (class-balanced) test set"):
    classes = list(range(len(shares)))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(classes, shares, color=[class_colour(c) for c in classes])
    ax.axhline(1 / len(classes), color="black", ls="--", lw=1.2, label=f"uniform: 1/{len(classes)} of the predictions each")
    ax.set_xticks(classes, tick_labels(class_names, classes), rotation=35, ha="right")
    _colour_head_tick(ax, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("share of test predictions")
    ax.set_title(f"{title}\ntotal-variation distance from uniform = {distance:.3f}")
    ax.legend(fontsize=8)
    return save_show(fig, run_dir, name)
