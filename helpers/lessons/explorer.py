"""Interactive explorers for notebooks 04 and 05 (ipywidgets), with a static figure in headless runs.

* `prediction_explorer`: pick a stage and a number of TTA views; see the confusion matrix and a
  browser of the misclassified test chips with their true and predicted class.
* `embedding_explorer`: re-embed the cached penultimate features with another t-SNE perplexity or
  UMAP neighbour count, without retraining anything.

A run is *interactive* when a front end that can show widgets executes the cell (JupyterLab,
Notebook, VS Code). papermill (the course runner, the tests) cannot: there the explorers draw one
static figure instead, saved in <run_dir>/figures/ like every other figure. Set SAR_HEADLESS=1 to
force the static figure, SAR_HEADLESS=0 to force the widgets.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..figures import feature_plots, plotting as plots

FEATURES_FILE = "features.npz"


def is_interactive() -> bool:
    """True in a kernel driven by a widget-capable front end; False under papermill/nbclient or in scripts.

    nbclient (used by papermill) executes cells with allow_stdin=False; the notebook front ends send
    allow_stdin=True, which ipykernel keeps as `kernel._allow_stdin` during the cell.
    """
    forced = os.environ.get("SAR_HEADLESS")
    if forced in ("0", "1"):
        return forced == "0"
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))


# ====================================================================== 04: predictions
class PredictionCache:
    """Test-set predictions of each (stage, TTA views), from the saved checkpoints (helpers.method.predictions
    computes each once per process)."""

    def __init__(self, run_dir, bundle, settings):
        self.run_dir, self.bundle, self.settings = Path(run_dir), bundle, settings
        self.y_true = bundle.test.targets.numpy()

    def __call__(self, stage: str, k: int) -> np.ndarray:
        from ..method.predictions import labels
        return labels(self.run_dir, stage, self.bundle.test, self.settings, k)


def mistakes(y_true, y_pred, true_class=None) -> np.ndarray:
    """Indices of the misclassified test chips (of one true class if given), in test-set order."""
    wrong = np.asarray(y_true) != np.asarray(y_pred)
    if true_class is not None:
        wrong &= np.asarray(y_true) == true_class
    return np.flatnonzero(wrong)


def prediction_figure(y_true, y_pred, images, class_names, title: str, true_class=None, page: int = 0,
                      per_page: int = 24):
    """Confusion matrix (rows sum to 1) beside a grid of misclassified chips, `true -> predicted` above each."""
    import matplotlib.pyplot as plt

    from ..method.metrics import confusion
    idx = mistakes(y_true, y_pred, true_class)
    shown = idx[page * per_page:(page + 1) * per_page]
    fig = plt.figure(figsize=(15, 6.5), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.15])
    ax = left.subplots()
    cm = confusion(y_true, y_pred)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, plots.tick_labels(class_names), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, plots.tick_labels(class_names), fontsize=8)
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6.5, color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    left.suptitle(title, fontweight="bold", fontsize=10)
    cols = 6
    axes = right.subplots(max(1, -(-per_page // cols)), cols, squeeze=False)
    for j, a in enumerate(axes.ravel()):
        a.set_axis_off()
        if j < len(shown):
            i = shown[j]
            a.imshow(images[i, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            a.set_title(f"#{i}: {y_true[i]} -> {y_pred[i]}", fontsize=8, color=plots.class_colour(int(y_pred[i])))
    which = "all classes" if true_class is None else f"true class {plots.tick_labels(class_names)[true_class]}"
    end = min(len(idx), (page + 1) * per_page)
    right.suptitle(f"misclassified test chips ({which}): {page * per_page + min(1, len(shown))}-{end} of "
                   f"{len(idx)}; title: true -> predicted", fontsize=10)
    return fig


def static_prediction_view(cache: PredictionCache, stage: str, k: int, run_dir, name="misclassified_chips"):
    """The headless fallback: one saved figure for (stage, k)."""
    y_pred = cache(stage, k)
    fig = prediction_figure(cache.y_true, y_pred, cache.bundle.test.images.numpy(), cache.bundle.class_names,
                            title=f"{stage}, {k} TTA view(s): balanced top-1 "
                                  f"{_balanced(cache.y_true, y_pred):.3f}")
    return plots.save_show(fig, run_dir, name)


def _balanced(y_true, y_pred) -> float:
    from ..method.metrics import summary
    return summary(y_true, y_pred)["balanced_top1"]


def prediction_explorer(run_dir, bundle, settings, stages=("stage1", "stage2", "stage3a", "stage3b")):
    """Widgets over stage x TTA views x true class x page; the static figure of the final model when headless."""
    cache = PredictionCache(run_dir, bundle, settings)
    if not is_interactive():
        print("headless run (no widget front end): a static view of the final model; open the notebook "
              "in JupyterLab to explore every stage and TTA setting")
        return static_prediction_view(cache, stages[-1], settings.tta_views, run_dir)
    import ipywidgets as w
    import matplotlib.pyplot as plt
    names = plots.tick_labels(bundle.class_names)
    stage = w.Dropdown(options=list(stages), value=stages[-1], description="stage")
    views = w.ToggleButtons(options=list(range(1, settings.tta_views + 1)), value=settings.tta_views,
                            description="TTA views")
    true_class = w.Dropdown(options=[("all classes", -1)] + [(n, c) for c, n in enumerate(names)], value=-1,
                            description="true class")
    page = w.IntSlider(0, 0, 0, description="page")
    out = w.Output()

    def draw(*_):
        y_pred = cache(stage.value, views.value)
        tc = None if true_class.value < 0 else true_class.value
        page.max = max(0, (len(mistakes(cache.y_true, y_pred, tc)) - 1) // 24)
        with out:
            out.clear_output(wait=True)
            prediction_figure(cache.y_true, y_pred, bundle.test.images.numpy(), bundle.class_names,
                              title=f"{stage.value}, {views.value} TTA view(s): balanced top-1 "
                                    f"{_balanced(cache.y_true, y_pred):.3f}", true_class=tc,
                              page=min(page.value, page.max))
            plt.show()

    for control in (stage, views, true_class, page):
        control.observe(draw, names="value")
    draw()
    return w.VBox([w.HBox([stage, views]), w.HBox([true_class, page]), out])   # shown as the cell's result


# ====================================================================== 05: embeddings
def cache_features(run_dir, features: dict, labels) -> Path:
    """Save each stage's penultimate features (and the labels) so they can be re-embedded later."""
    path = Path(run_dir) / FEATURES_FILE
    np.savez_compressed(path, labels=np.asarray(labels), **features)
    return path


def load_features(run_dir) -> tuple[dict, np.ndarray]:
    path = Path(run_dir) / FEATURES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run notebooks/05_feature_plots.ipynb first (same run folder)")
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "labels"}, f["labels"]


def embed_one(x, method: str, param: float, seed: int = 0) -> np.ndarray:
    """2-D embedding of one feature matrix: t-SNE with perplexity `param`, or UMAP with `param` neighbours."""
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
    x = StandardScaler().fit_transform(x)
    n = len(x)
    with threadpool_limits(1):
        if method == "t-SNE":
            from sklearn.manifold import TSNE
            return TSNE(2, perplexity=float(min(param, (n - 1) / 3)), init="pca", random_state=seed).fit_transform(x)
        if method == "UMAP":
            import umap
            return umap.UMAP(n_neighbors=int(min(param, n - 1)), min_dist=0.1, random_state=seed,
                             n_jobs=1).fit_transform(x)
    raise ValueError(f"method must be 't-SNE' or 'UMAP', got {method!r}")


def thin(n: int, max_points: int | None) -> np.ndarray:
    """Every k-th of n points, at most `max_points` (the cached points are class-balanced, so these stay so)."""
    step = 1 if not max_points or n <= max_points else -(-n // max_points)
    return np.arange(0, n, step)


def reembed(features: dict, labels, class_names, run_dir, method: str, param: float, seed: int = 0,
            name: str | None = None, max_points: int | None = None):
    """Every stage's cached features re-embedded with one setting, drawn like Figure 2."""
    what = "perplexity" if method == "t-SNE" else "neighbours"
    keep = thin(len(labels), max_points)
    panels = {f"{stage}, {what} {param:g}": embed_one(f[keep], method, param, seed) for stage, f in features.items()}
    return feature_plots.embedding_panels(panels, np.asarray(labels)[keep], class_names, run_dir, method=method,
                                  name=name or f"reembed_{method.lower().replace('-', '')}_{param:g}")


def embedding_explorer(features: dict, labels, class_names, run_dir, seed: int = 0, fallback=("t-SNE", 5),
                       max_points: int = 600):
    """A method menu, a slider and a button; headless: one static re-embedding (`fallback`) of at most
    `max_points` points, so that the batch run stays cheap."""
    if not is_interactive():
        print(f"headless run: a static re-embedding ({fallback[0]}, {fallback[1]}, at most {max_points} points); "
              f"open the notebook in JupyterLab to try other settings")
        return reembed(features, labels, class_names, run_dir, *fallback, seed=seed, max_points=max_points)
    import ipywidgets as w
    method = w.ToggleButtons(options=["t-SNE", "UMAP"], description="method")
    param = w.IntSlider(30, 2, 100, description="perplexity")
    go = w.Button(description="re-embed", button_style="primary")
    out = w.Output()

    def relabel(change):
        param.description = "perplexity" if change["new"] == "t-SNE" else "neighbours"
        param.value = 30 if change["new"] == "t-SNE" else 15

    def run(_):
        with out:
            out.clear_output(wait=True)
            print(f"embedding {len(labels)} points x {len(features)} stages ...")
            reembed(features, labels, class_names, run_dir, method.value, param.value, seed=seed,
                    name="reembed_explorer")

    method.observe(relabel, names="value")
    go.on_click(run)
    return w.VBox([w.HBox([method, param, go]), out])   # shown as the cell's result
