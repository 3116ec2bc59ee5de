"""Section 4: CPU inference speed-ups for Shake-Shake in eval (torch.inference_mode, BatchNorm folding,
channels_last, torch.compile), each checked against the baseline's logits and predictions, and timed
round-robin with helpers.evidence.speed."""
from __future__ import annotations

import copy
import time

import torch

from helpers.evidence import speed
from helpers.method.model import shake_shake_26_2x32d

from .common import latency_timing, log, take, throughput_timing, tp_batch_for, tp_stats
from .variants import calibrate_bn, fold_bn


def one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]



def bench_speedups(size: int, test_x: torch.Tensor, P, do_compile: bool) -> dict:
    torch.manual_seed(0)
    base = shake_shake_26_2x32d(1, 10)
    calibrate_bn(base, test_x, P["calib_batch"], P["calib_batches"])
    folded = fold_bn(base)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
    CL = torch.channels_last

    def no_grad(m, channels_last=False):
        def fn(x):
            with torch.no_grad():
                return m(x.contiguous(memory_format=CL) if channels_last else x)
        return fn

    def inference(m, channels_last=False):
        def fn(x):
            with torch.inference_mode():
                return m(x.contiguous(memory_format=CL) if channels_last else x)
        return fn

    variants = {
        "baseline (no_grad)": no_grad(base),
        "inference_mode": inference(base),
        "BN folded": no_grad(folded),
        "channels_last": no_grad(cl, True),
        "BN folded + channels_last + inference_mode": inference(folded_cl, True),
    }
    x1, xb = take(test_x, 1), take(test_x, tp_batch_for(size, P))
    xc = xb                      # the output check runs on the throughput batch, and is its warm-up
    compile_info = {}
    if do_compile:
        name = "torch.compile (inductor, dynamic=False)"
        try:
            # first calls compile (one graph per input shape); then again after torch._dynamo.reset(), when the
            # compiled kernels come from the on-disk cache, as in a later session
            for cache in ("cold", "warm"):
                torch._dynamo.reset()
                fn = no_grad(torch.compile(copy.deepcopy(base), dynamic=False))
                for label, x in (("batch 1", x1), (f"batch {len(xb)}", xb)):
                    t0 = time.perf_counter()
                    fn(x)
                    compile_info.setdefault(cache, {})[label] = time.perf_counter() - t0
                    log(f"[4] {size}px torch.compile first call at {label}, {cache} cache: "
                        f"{compile_info[cache][label]:.1f} s")
            variants[name] = fn
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            compile_info["error"] = one_line(e)
            log(f"[4] {size}px torch.compile failed: {compile_info['error']}")
    else:
        compile_info["skipped"] = "not run (--compile off; off by default with --quick)"

    # same outputs?
    ref = variants["baseline (no_grad)"](xc)
    checks = {}
    for name, fn in variants.items():
        out = fn(xc).clone()
        diff = (out - ref).abs().max().item()
        agree = (out.argmax(1) == ref.argmax(1)).float().mean().item()
        checks[name] = {"max_abs_diff": diff, "max_abs_logit": ref.abs().max().item(),
                        "argmax_agreement": agree, "ok": agree == 1.0 and diff <= 1e-4}
    log(f"[4] {size}px output checks: " + ", ".join(f"{n}: {c['max_abs_diff']:.1e}/{100 * c['argmax_agreement']:.0f}%"
                                                     for n, c in checks.items()))

    # each variant sets its own autograd mode and memory format (that is what is compared)
    lat_t = speed.round_robin({n: (fn, x1) for n, fn in variants.items()}, inference_mode=False, **latency_timing(P))
    tp_t = speed.round_robin({n: (fn, xb) for n, fn in variants.items()}, inference_mode=False,
                             **throughput_timing(P, warmup=0))
    res = {"variants": {}, "compile": compile_info, "check_images": len(xc), "throughput_batch": len(xb)}
    b_lat, b_tp = speed.stats(lat_t["baseline (no_grad)"]), tp_stats(tp_t["baseline (no_grad)"], len(xb))
    for name in variants:
        lat, tp = speed.stats(lat_t[name]), tp_stats(tp_t[name], len(xb))
        sp_lat = b_lat["median_ms"] / lat["median_ms"]
        sp_tp = tp["images_per_s"] / b_tp["images_per_s"]
        res["variants"][name] = {"latency": lat, "throughput": tp, "speedup_latency": sp_lat, "speedup_throughput": sp_tp,
                                 "check": checks[name], "latency_times_s": lat_t[name], "throughput_times_s": tp_t[name]}
        log(f"[4] {size}px {name}: latency {lat['median_ms']:.2f} ms ({sp_lat:.2f}x), "
            f"{tp['images_per_s']:.0f} img/s ({sp_tp:.2f}x)")
    return res

