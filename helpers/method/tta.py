"""Test-time augmentation: two families of views of a batch.

* `levels` (as in airbench, the fact sheet's 3 views): K=1 the chip, K=2 + its left-right flip,
  K=3 + a shift of a pixel or two. For SAR a left-right flip keeps the radar (range) direction and
  so the side of the shadow; on data where a flip changes the class (digits) level 2 is a shift the
  other way. These views lie *inside* the training augmentation (crops and, for SAR, flips).
* `rotation` (12 views, the family the fact sheet's authors used the year after): flip (or, where
  flips change the class, a 0.9 contrast) x rotation by 0, +10, -10 degrees x (as is | zoom 1.1 with
  contrast 1.1). Rotation, zoom and contrast are *not* in the training augmentation.
Contrast is applied to the normalised chip (x -> c x), i.e. around the training mean.
Softmax outputs are averaged over the views by `helpers.method.inference.predict`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

FAMILIES = ("levels", "rotation")


def views(x: torch.Tensor, k: int, flip: bool = True) -> list[torch.Tensor]:
    """The `levels` family: the first `k` (1-3) views of a batch."""
    if not 1 <= k <= 3:
        raise ValueError(f"TTA views must be 1, 2 or 3, got {k}")
    s = max(1, x.shape[-1] // 16)
    out = [x]
    if k >= 2:
        out.append(torch.flip(x, dims=[3]) if flip else
                   F.pad(x, (0, s, 0, s), mode="replicate")[..., s:, s:])
    if k >= 3:
        out.append(F.pad(x, (s, 0, s, 0), mode="replicate")[..., : x.shape[-2], : x.shape[-1]])
    return out


def rotation_views(x: torch.Tensor, flip: bool = True) -> list[torch.Tensor]:
    """The `rotation` family: 12 views (see the module docstring)."""
    bases = [x, torch.flip(x, dims=[3]) if flip else 0.9 * x]
    out = []
    for base in bases:
        for angle in (0.0, 10.0, -10.0):
            for zoom in (1.0, 1.1):
                v = base if angle == 0 and zoom == 1 else TF.affine(base, angle=angle, translate=[0, 0], scale=zoom,
                                                                       shear=[0.0, 0.0])
                out.append(v if zoom == 1 else 1.1 * v)
    return out


def family_views(x: torch.Tensor, k: int, family: str = "levels", flip: bool = True) -> list[torch.Tensor]:
    if family == "levels":
        return views(x, k, flip)
    if family == "rotation":
        return rotation_views(x, flip)
    raise ValueError(f"TTA family must be one of {FAMILIES}, got {family!r}")
