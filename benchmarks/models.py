"""Sections 1 and 2: size, MACs, latency and throughput of Shake-Shake and the two ResNet-50s.

All measured with helpers.evidence.speed, the implementation notebook 04 uses: eval mode, inference_mode,
model and input in the memory format of the course's inference (channels_last on the CPU).
"""
from __future__ import annotations

import torch

from helpers.evidence import speed
from helpers.method.model import count_parameters

from .common import latency_timing, log, take, throughput_timing, tp_batch_for, tp_stats
from .variants import MODELS, calibrate_bn


def bench_models(sizes, test_x, P) -> dict:
    out = {"size": {}, "speed": {}}
    for name, (make, c) in MODELS.items():
        torch.manual_seed(0)
        model = make().eval()
        nbytes = speed.state_dict_bytes(model)
        out["size"][name] = {"parameters": count_parameters(model), "state_dict_bytes": nbytes,
                             "state_dict_MB": nbytes / 1e6, "state_dict_MiB": nbytes / 2**20,
                             "macs_per_image": {str(s): speed.macs_per_image(model, (c, s, s)) for s in sizes}}
        log(f"[1] {name}: {out['size'][name]['parameters']:,} parameters, {nbytes / 1e6:.2f} MB")
    for s in sizes:
        x1, xb = take(test_x[s], 1), take(test_x[s], tp_batch_for(s, P))
        models, channels = {}, {}
        for name, (make, c) in MODELS.items():
            torch.manual_seed(0)
            models[name], channels[name] = make().eval(), c
            if name.startswith("Shake"):
                calibrate_bn(models[name], test_x[s], P["calib_batch"], P["calib_batches"])
        # the one-channel chip repeated to the model's channels, outside the timing
        chans = lambda x: {name: x.expand(-1, c, -1, -1).clone() for name, c in channels.items()}
        lat_t = speed.latencies(models, chans(x1), "cpu", **latency_timing(P))
        log(f"[2] {s}px latency done")
        tp_t = speed.latencies(models, chans(xb), "cpu", **throughput_timing(P))
        for name in models:
            lat, tp = speed.stats(lat_t[name]), tp_stats(tp_t[name], len(xb))
            out["speed"].setdefault(str(s), {})[name] = {"latency": lat, "throughput": tp, "latency_times_s": lat_t[name],
                                                         "throughput_times_s": tp_t[name]}
            log(f"[2] {s}px {name}: latency median {lat['median_ms']:.2f} ms (p90 {lat['p90_ms']:.2f}), "
                f"throughput {tp['images_per_s']:.0f} img/s (batch {tp['batch']})")
        del models
    return out
