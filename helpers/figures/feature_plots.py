"""Figure 2's plots (notebook 05): the penultimate features embedded per stage, and their separation scores.

Same look as `helpers.figures.plotting` (class 0 red, a class keeps its colour in every figure).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .plotting import SERIES_COLOURS, class_colour, save_show, tick_labels


def embedding_panels(embeddings: dict, labels, class_names, run_dir, method: str, name: str, scores=None):
    """One row of panels (e.g. stage 1, 2, 3), points coloured by class, class 0 red and drawn first."""
    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(embeddings), figsize=(5.2 * len(embeddings), 5.0), squeeze=False)
    for ax, (title, xy) in zip(axes[0], embeddings.items()):
        for c in range(len(class_names)):
            m = labels == c
            ax.scatter(xy[m, 0], xy[m, 1], s=12, color=class_colour(c), alpha=0.85, linewidths=0,
                       label=tick_labels(class_names)[c])
        if scores is not None and title in scores:
            title = f"{title}\n{scores[title]}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"{method} 1")
        ax.set_ylabel(f"{method} 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(True)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=5, fontsize=9, markerscale=2, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"Penultimate features of test images, {method} (class 0 in red)", fontweight="bold")
    fig.tight_layout()
    return save_show(fig, run_dir, name)


def separation(table, run_dir, name="separation_scores", title="How well the classes separate, per stage"):
    """`table`: DataFrame with columns stage and score columns (one panel per score)."""
    scores = [c for c in table.columns if c != "stage"]
    fig, axes = plt.subplots(1, len(scores), figsize=(3.6 * len(scores), 3.6), squeeze=False)
    for ax, col in zip(axes[0], scores):
        bars = ax.bar(table["stage"], table[col], color=SERIES_COLOURS[1:1 + len(table)])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("model after")
        ax.set_ylabel("score")
        lo = min(0.0, float(table[col].min()) * 1.2)
        ax.set_ylim(lo, max(1.0 if "accuracy" in col else 0.1, float(table[col].max()) * 1.25))
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return save_show(fig, run_dir, name)
