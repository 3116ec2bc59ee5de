"""Figure 2 (notebook 05): penultimate features per stage, their 2-D embeddings, and how well they separate."""
from __future__ import annotations

from .evaluation import load_final
from ..method.inference import features as penultimate_features


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
    subset = torch.utils.data.Subset(bundle.test, indices)
    return {stage: penultimate_features(load_final(run_dir, stage), subset, device=settings.device,
                                         precision=settings.precision).numpy()
            for stage in stages}


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
    keep, folds = cross_val_classes(y)
    if folds < 2:
        return float("nan")
    x, y = np.asarray(x)[keep], np.asarray(y)[keep]
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(min(5, len(y) - len(y) // folds - 1)), x, y, cv=cv).mean())


def cross_val_classes(labels) -> tuple:
    """(mask of the points whose class has 2 or more of them, folds): a class with a single point cannot be
    cross-validated, so it is left out of a kNN score (folds = the smallest kept class, at most 5)."""
    import numpy as np
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    kept = np.flatnonzero(counts >= 2)
    return np.isin(labels, kept), int(min(5, counts[kept].min())) if len(kept) else 0


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


def _silhouette(x, y) -> float:
    """The silhouette by class; NaN where it is undefined (it needs 2 to n - 1 classes among n points)."""
    import numpy as np
    from sklearn.metrics import silhouette_score
    return float(silhouette_score(x, y)) if 2 <= len(np.unique(y)) <= len(y) - 1 else float("nan")


def _separation_row(stage, x, y, tails, embeddings) -> dict:
    row = {"stage": stage, "silhouette, all 10 classes": _silhouette(x, y),
           "silhouette, tails 1-9": _silhouette(x[tails], y[tails]),
           "kNN accuracy, features": _knn_accuracy(x, y)}
    for method, emb in (embeddings or {}).items():
        row[f"kNN accuracy, {method}"] = _knn_accuracy(emb[stage], y)
    return row


def _judged(holds, values):
    """True/False, or "not measured" where a silhouette is undefined (too few test chips a class)."""
    return "not measured" if values.isna().any() else bool(holds)


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
         "consistent": _judged(t["stage1"] <= min(t["stage2"], t["stage3b"]), t),
         "test": "tails least separated after stage 1"},
        {"panel": "after stage 2", "seed says": "the tail classes separated",
         "measured": f"tails silhouette {t['stage1']:.2f} -> {t['stage2']:.2f}",
         "consistent": _judged(t["stage2"] > t["stage1"], t), "test": "tails silhouette rises from stage 1 to 2"},
        {"panel": "after stage 3", "seed says": "all ten classes separated",
         "measured": (f"all-class silhouette {a['stage3b']:.2f} (stage 1: {a['stage1']:.2f}, stage 2: {a['stage2']:.2f}); "
                      f"kNN accuracy {k['stage3b']:.2f}"),
         "consistent": _judged(a["stage3b"] > max(a["stage1"], a["stage2"]), a),
         "test": "all-class silhouette highest after stage 3"},
    ]
    return pd.DataFrame(rows)

