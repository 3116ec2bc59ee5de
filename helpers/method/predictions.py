"""Predictions of a run's stage models, each computed once per process.

Notebook 04 asks for the same predictions many times: every stage with and without TTA, the final
model again for its confusion matrix and explorer, each baseline on validation and test, tau-norm
on the plain-CE model's features. Here the penultimate features of every test-time view are
computed once per (backbone, data set, TTA family, precision) and kept:

* the `levels` views are nested (k views are the first k of 3), so the largest k serves every k;
* a backbone is recognised by its weights and BatchNorm statistics, so models that share one
  (plain CE, and cRT and LWS while their backbone is frozen with its statistics) share the pass;
* logits are the model's own classifier on those features, under the same autocast as inference
  (helpers/method/devices.py): softmax(fc(features(view))), averaged over the views, as `inference.predict`.

A checkpoint rewritten on disk (another training) is read again: the key holds its modification time.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch
import torch.nn.functional as F

from . import inference
from .checkpoints import checkpoint_path, load_stage_model
from .devices import autocast, pick_device, resolve_precision

MAX_VIEWS = {"levels": 3, "rotation": 12}
# Least recently used first; bounded, so that a comparison over many seeds and budgets in one process
# does not keep every model it has ever scored (a model is about 12 MB).
KEEP_MODELS, KEEP_FEATURES = 16, 64
_MODELS: OrderedDict = OrderedDict()     # (checkpoint, mtime) -> (model, backbone fingerprint)
_FEATURES: OrderedDict = OrderedDict()   # (fingerprint, data set, family, flip, precision, device) -> (data set, views x N x D)


def _remember(cache: OrderedDict, key, value, keep: int):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > keep:
        cache.popitem(last=False)
    return value


def clear() -> None:
    _MODELS.clear()
    _FEATURES.clear()


def _fingerprint(model) -> str:
    """A hash of everything but the classifier: weights and BatchNorm running statistics."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        if not name.startswith("fc."):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def stage_model(run_dir, stage: str):
    """(model, backbone fingerprint) of a finished stage folder, loaded once per checkpoint version."""
    path = checkpoint_path(run_dir, stage)
    key = (str(path), path.stat().st_mtime_ns) if path.exists() else (str(path), None)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    model = load_stage_model(run_dir, stage)           # a missing or unfinished stage: its one-line error
    return _remember(_MODELS, key, (model, _fingerprint(model)), KEEP_MODELS)


def view_features(run_dir, stage: str, dataset, settings, k: int | None = None, family: str = "levels",
                  flip: bool = True) -> torch.Tensor:
    """Penultimate features (views x N x D) of a stage's model on `dataset`: the first k `levels` views
    (k=None: all of them), or all 12 `rotation` views."""
    model, fingerprint = stage_model(run_dir, stage)
    key = (fingerprint, id(dataset), len(dataset), family, flip, settings.precision, str(settings.device))
    hit = _FEATURES.get(key)
    if hit is None or hit[0] is not dataset:            # the data set itself is kept, so its id is not reused
        feats = inference.view_features(model, dataset, MAX_VIEWS[family], settings.device, family=family,
                                        flip=flip, precision=settings.precision)
        hit = _remember(_FEATURES, key, (dataset, feats), KEEP_FEATURES)
    else:
        _FEATURES.move_to_end(key)
    return hit[1][:k] if family == "levels" and k is not None else hit[1]


def _view_logits(run_dir, stage: str, dataset, settings, k: int, family: str, flip: bool) -> torch.Tensor:
    model, _ = stage_model(run_dir, stage)
    used = view_features(run_dir, stage, dataset, settings, k, family, flip)
    device = pick_device(settings.device)
    precision = resolve_precision(settings.precision, device)
    model.to(device).eval()
    with torch.inference_mode(), autocast(precision, device):
        # one view at a time, as inference.predict does (a 3-d input takes another bf16 kernel, other rounding)
        return torch.stack([model.fc(v.to(device)) for v in used]).float()


def probabilities(run_dir, stage: str, dataset, settings, k: int, family: str = "levels",
                  flip: bool = True) -> torch.Tensor:
    """Class probabilities (N x C) averaged over the first k views (all 12 of `rotation`)."""
    return F.softmax(_view_logits(run_dir, stage, dataset, settings, k, family, flip), dim=-1).mean(0).cpu()


def view_logits(run_dir, stage: str, dataset, settings, k: int, family: str = "levels",
                flip: bool = True) -> torch.Tensor:
    """The logits (views x N x C) behind `probabilities`, for the OOD scores (helpers.method.ood)."""
    return _view_logits(run_dir, stage, dataset, settings, k, family, flip).cpu()


def labels(run_dir, stage: str, dataset, settings, k: int = 1):
    """Predicted class per image (10-way, numpy); a 9-way stage-2 model's labels are mapped back to 1-9."""
    from ..datasets.data import flip_keeps_label
    from .samplers import to_original
    pred = probabilities(run_dir, stage, dataset, settings, k, flip=flip_keeps_label(settings.data)).argmax(1).numpy()
    return to_original(pred) if stage_model(run_dir, stage)[0].num_classes == 9 else pred
