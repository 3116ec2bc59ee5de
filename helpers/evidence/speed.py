"""Size and speed of a model: the one implementation used by notebook 04 and by `make benchmark`.

* size: parameters and the bytes of the saved state_dict (torch.save into memory);
* MACs: multiply-accumulates of one image, counted by torch.utils.flop_counter (FLOPs / 2);
* latency: eval mode, inference_mode, timed with torch.utils.benchmark.  The model and its input
  are put in the *same* memory format: by default the one `helpers.method.inference` uses on that device
  (channels_last on the CPU), so the time is that of the course's own inference.  Several models
  are timed round-robin (one Timer call of `number` runs each, in turn), so that a change of load
  on a shared machine hits them all alike.  `precision` (the setting's value) puts every forward
  pass under the autocast inference uses (helpers/method/devices.py).
"""
from __future__ import annotations

import io
import math
import statistics

import torch
from torch.utils import benchmark

from ..method.devices import autocast, resolve_precision
from ..method.inference import as_device, memory_format_for


def state_dict_bytes(model) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def state_dict_megabytes(model) -> float:
    """Size of the saved state_dict, in MiB (2^20 bytes)."""
    return state_dict_bytes(model) / 2**20


@torch.inference_mode()
def macs_per_image(model, shape) -> int:
    """Multiply-accumulates of one forward pass of one image of `shape` (C, H, W) or (1, C, H, W)."""
    from torch.utils.flop_counter import FlopCounterMode
    shape = tuple(shape)[-3:]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *shape, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2


def prepare(model, x, device="cpu", memory_format=None):
    """(model, x) in eval mode on `device`, both in `memory_format` (default: inference's for the device)."""
    device = as_device(device)
    memory_format = memory_format or memory_format_for(device)
    model = model.to(device, memory_format=memory_format).eval()
    return model, x.to(device).contiguous(memory_format=memory_format)


def round_robin(calls: dict, *, rounds: int, number: int = 1, warmup: int = 1, budget_s: float = 0.0,
                cap_s: float = 0.0, inference_mode: bool = True) -> dict[str, list[float]]:
    """Seconds per call of every `name -> (fn, x)`, timed in turn with torch.utils.benchmark.Timer.

    Each round times `number` calls of each fn (one value per round, the mean of its calls); at least
    `rounds` rounds, more (up to 8x) until the slowest has had `budget_s` seconds, but no more than 2
    rounds once it has had `cap_s` seconds (cap_s > 0: a heavily loaded machine).
    `inference_mode=False` leaves the autograd mode to the fns (to compare no_grad with inference_mode).
    """
    import contextlib
    mode = torch.inference_mode if inference_mode else contextlib.nullcontext
    timers = {}
    for name, (fn, x) in calls.items():
        with mode():
            for _ in range(warmup):
                fn(x)
        timers[name] = benchmark.Timer(stmt="fn(x)", globals={"fn": fn, "x": x}, num_threads=torch.get_num_threads())
    times = {name: [] for name in calls}
    spent = dict.fromkeys(calls, 0.0)
    r = 0
    while True:
        slowest = max(spent.values())
        if cap_s and r >= min(2, rounds) and slowest >= cap_s:
            break
        if not (r < rounds or (slowest < budget_s and r < 8 * rounds)):
            break
        for name, timer in timers.items():
            with mode():
                seconds = timer.timeit(number).mean
            times[name].append(seconds)
            spent[name] += seconds * number
        r += 1
    return times


def stats(times: list[float]) -> dict:
    """Median, p90, mean and minimum of per-call times, in milliseconds."""
    s = sorted(times)
    p90 = s[min(len(s) - 1, math.ceil(0.9 * len(s)) - 1)]
    return {"n": len(s), "median_ms": 1e3 * statistics.median(s), "p90_ms": 1e3 * p90,
            "mean_ms": 1e3 * statistics.fmean(s), "min_ms": 1e3 * s[0]}


def under(model, precision: str, device):
    """The model's forward pass under the autocast of the `precision` setting on `device` (as inference runs it)."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return model

    def forward(x):
        with autocast(resolved, device):
            return model(x)
    return forward


def latencies(models: dict, inputs: dict, device="cpu", memory_format=None, precision: str = "fp32",
              **timing) -> dict[str, list[float]]:
    """Seconds per forward pass of each model on its input (`name -> model`, `name -> x`), round-robin,
    under the autocast of `precision` (the setting's value)."""
    calls = {}
    for name, model in models.items():
        m, x = prepare(model, inputs[name], device, memory_format)
        calls[name] = (under(m, precision, device), x)
    return round_robin(calls, **timing)


def size_and_latency(models: dict, sizes, device="cpu", inputs=None, memory_format=None,
                     rounds: int = 10, number: int = 3, warmup: int = 3, precision: str = "fp32", **timing):
    """One row per model and input size: parameters, state_dict MiB, MACs, median seconds per image.

    `models`: name -> (model, input channels).  `inputs`: optional size -> one-channel images to time
    on (else random); the chip is repeated to the model's channel count outside the timing.
    """
    import pandas as pd

    from ..method.model import count_parameters
    device = as_device(device)
    rows = []
    for s in sizes:
        chip = inputs[s][:1] if inputs is not None else torch.randn(1, 1, s, s)
        named = {name: m for name, (m, _) in models.items()}
        xs = {name: chip.expand(-1, c, -1, -1).clone() for name, (_, c) in models.items()}
        times = latencies(named, xs, device, memory_format, precision, rounds=rounds, number=number, warmup=warmup,
                          **timing)
        for name, (model, c) in models.items():
            rows.append({"model": name, "input": f"1x{c}x{s}x{s}", "parameters": count_parameters(model),
                         "state_dict MiB": state_dict_megabytes(model), "GMACs": macs_per_image(model, (c, s, s)) / 1e9,
                         "median s / image": statistics.median(times[name])})
    return pd.DataFrame(rows)


def resnet50(num_classes: int = 10):
    """torchvision's ResNet-50 as shipped (random weights, 3-channel input), the seed's reference."""
    import torchvision
    return torchvision.models.resnet50(weights=None, num_classes=num_classes)
