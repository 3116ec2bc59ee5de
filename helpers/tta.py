"""Test-time augmentation as levels (as in airbench): K=1 plain, K=2 + azimuth flip, K=3 + a small shift.

Softmax outputs are averaged over the K views (`helpers.inference.predict`).  Both extra views keep
the label of a SAR chip: a left-right flip keeps the radar (range) direction and so the side of the
shadow; a shift of a pixel or two moves the target inside the chip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def views(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    if not 1 <= k <= 3:
        raise ValueError(f"TTA views must be 1, 2 or 3, got {k}")
    out = [x]
    if k >= 2:
        out.append(torch.flip(x, dims=[3]))
    if k >= 3:
        s = max(1, x.shape[-1] // 16)
        out.append(F.pad(x, (s, 0, s, 0), mode="replicate")[..., : x.shape[-2], : x.shape[-1]])
    return out
