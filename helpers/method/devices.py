"""Where the arithmetic runs and in which precision: one choice for training and inference alike.

* `pick_device`: "auto" is CUDA, then Apple's MPS, then the CPU.
* `resolve_precision`: what the `precision` setting means on a device.  "auto" is bf16 autocast on
  CUDA cards with bf16 (fp16 with a GradScaler on older cards) and on CPUs that compute bf16 in
  hardware (AVX512-BF16 or AMX: Intel Xeon since Cooper/Sapphire Rapids, AMD Zen 4 and later),
  and fp32 everywhere else, where bf16 would only be emulated and slower.  torch is asked what the
  CPU supports (its cpuinfo-based checks); no CPU flags are parsed here.
* `autocast`: the context manager a forward pass runs under for a resolved precision.

bf16 autocast keeps the weights, the optimizer and the loss in fp32; convolutions and the
classifier run in bf16 (torch's autocast op lists).  docs/evidence.md "Precision" has the measured speed and
the accuracy parity with fp32.
"""
from __future__ import annotations

import contextlib

import torch

from ..settings.config import PRECISIONS, SettingsError


def pick_device(device="auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; a device that is not here is a SettingsError."""
    if isinstance(device, torch.device):
        return device
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    try:
        picked = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SettingsError(f"setting 'device' must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps}.get(picked.type, True)
    if not available or (picked.type == "cuda" and (picked.index or 0) >= torch.cuda.device_count()):
        raise SettingsError(f"device {device!r} is not available on this machine; use device='auto' (picks what is there) or 'cpu'")
    return picked


def cpu_has_native_bf16() -> bool:
    """Does this CPU compute bf16 in hardware (AVX512-BF16 or AMX tiles), as torch's cpuinfo sees it?"""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def resolve_precision(precision: str, device) -> str:
    """The precision a setting means on `device`: "fp32", "bf16" or "fp16" (see the module docstring)."""
    if precision not in PRECISIONS:
        raise SettingsError(f"setting 'precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = pick_device(device).type
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if kind == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and kind != "cuda":
        raise SettingsError(f"precision 'fp16' needs a CUDA device (this run uses {kind}); use 'auto', 'bf16' or 'fp32'")
    if precision == "bf16" and kind not in ("cpu", "cuda"):
        raise SettingsError(f"precision 'bf16' runs on the CPU or CUDA, not on {kind}; use 'auto' or 'fp32'")
    return precision


DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device):
    """The autocast context of a *resolved* precision on `device` (a no-op for fp32)."""
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(pick_device(device).type, dtype=dtype)


def needs_grad_scaler(precision: str) -> bool:
    return precision == "fp16"
