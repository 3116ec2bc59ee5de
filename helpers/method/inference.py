"""Inference: one loop over a data set that gives logits, TTA-averaged probabilities, penultimate
features or predicted labels.  The test-time views themselves are defined in `helpers.method.tta`.

On the CPU the model and its inputs run in channels_last memory format (benchmarks/benchmark.py
measured 1.2-1.5x the throughput for identical predictions); elsewhere in the default format.
`helpers.evidence.speed` times models in the same format, so a latency is that of the inference done here.
Every function runs under the autocast of the `precision` setting it is given (helpers/method/devices.py),
so that inference computes as the run's training did.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .devices import autocast, pick_device, resolve_precision


def as_device(device) -> torch.device:
    """A torch.device from "auto", "cpu", "cuda", ... or a torch.device."""
    return pick_device(device)


def memory_format_for(device) -> torch.memory_format:
    """The memory format inference uses on `device`: channels_last on the CPU and CUDA, the default elsewhere."""
    return torch.channels_last if as_device(device).type in ("cpu", "cuda") else torch.contiguous_format


def _each_batch(model, dataset, device, batch_size: int, memory_format, fn, precision: str = "fp32") -> torch.Tensor:
    """fn(batch) for every batch of `dataset` in order (eval mode, under the autocast of the `precision`
    setting on `device`), concatenated on the CPU as float."""
    model.eval()
    resolved = resolve_precision(precision, device)
    out = []
    for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        with autocast(resolved, device):
            out.append(fn(x.to(device).contiguous(memory_format=memory_format)).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def predict_logits(model, dataset, device, batch_size: int = 256, channels_last: bool = False,
                   precision: str = "fp32") -> torch.Tensor:
    """Logits of every image, the model left where it is (the training loop's validation pass)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return _each_batch(model, dataset, device, batch_size, memory_format, model, precision)


@torch.inference_mode()
def predict(model, dataset, k: int = 3, device="auto", batch_size: int = 256, family: str = "levels",
            flip: bool = True, precision: str = "fp32") -> torch.Tensor:
    """Class probabilities (N x C) averaged over the test-time views (`helpers.method.tta`); k=1 is plain inference.

    `flip=False` where a left-right flip changes the class (digits): level 2 is then a shift.
    `precision` is the setting's value ("auto", "fp32", ...), as in training.
    """
    from .tta import family_views
    device = as_device(device)
    memory_format = memory_format_for(device)
    model.to(device, memory_format=memory_format)
    return _each_batch(model, dataset, device, batch_size, memory_format,
                       lambda x: torch.stack([F.softmax(model(v).float(), 1)
                                              for v in family_views(x, k, family, flip)]).mean(0), precision)


@torch.inference_mode()
def view_logits(model, dataset, k: int = 3, device="auto", batch_size: int = 256, family: str = "levels",
                flip: bool = True, precision: str = "fp32") -> torch.Tensor:
    """Logits of every test-time view of every image (views x N x C), for the OOD scores
    (`helpers.method.ood`); their softmax averaged over the views is `predict`'s output."""
    from .tta import family_views
    device = as_device(device)
    memory_format = memory_format_for(device)
    model.to(device, memory_format=memory_format)
    out = _each_batch(model, dataset, device, batch_size, memory_format,
                      lambda x: torch.stack([model(v) for v in family_views(x, k, family, flip)]).transpose(0, 1),
                      precision)
    return out.transpose(0, 1)


@torch.inference_mode()
def view_features(model, dataset, k: int = 3, device="auto", batch_size: int = 256, family: str = "levels",
                  flip: bool = True, precision: str = "fp32") -> torch.Tensor:
    """Penultimate features of every test-time view of every image (views x N x D), for tau-normalisation."""
    from .tta import family_views
    device = as_device(device)
    memory_format = memory_format_for(device)
    model.to(device, memory_format=memory_format)
    out = _each_batch(model, dataset, device, batch_size, memory_format,
                      lambda x: torch.stack([model.features(v) for v in family_views(x, k, family, flip)]).transpose(0, 1),
                      precision)
    return out.transpose(0, 1)


@torch.inference_mode()
def features(model, dataset, device="auto", batch_size: int = 256, precision: str = "fp32") -> torch.Tensor:
    """Penultimate features of every image (no augmentation), for t-SNE / UMAP."""
    device = as_device(device)
    memory_format = memory_format_for(device)
    model.to(device, memory_format=memory_format)
    return _each_batch(model, dataset, device, batch_size, memory_format, model.features, precision)


def predict_labels(model, dataset, settings, k: int = 1):
    """Predicted class per image (10-way, numpy); a 9-way stage-2 model's labels are mapped back to 1-9."""
    from ..datasets.data import flip_keeps_label
    from .samplers import to_original
    pred = predict(model, dataset, k=k, device=settings.device, flip=flip_keeps_label(settings.data),
                   precision=settings.precision).argmax(1).numpy()
    return to_original(pred) if model.num_classes == 9 else pred
