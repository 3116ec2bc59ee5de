"""The augmentation of each data set: what changes a chip without changing its class.

Training: a reflect-padded random crop (a shift of up to 1/8 of the chip), and, where a left-right
flip keeps the label, a random flip. For SAR a left-right (azimuth) flip keeps the radar's range
direction and so the side of the shadow; up-down flips and rotations would move the shadow to the
wrong side and are never used. Digits get no flips at all (a mirrored 2 is no 2).
"""
from __future__ import annotations

from torchvision.transforms import v2


# Data sets on which a left-right flip changes the class (a mirrored 2 is no 2); SAR chips keep it.
NO_FLIP = {"digits-lt"}


def flip_keeps_label(data: str) -> bool:
    return data not in NO_FLIP


def train_transform(image_size: int, mean: float, std: float, hflip: bool = True):
    """Label-preserving augmentation: small shifts, and for SAR chips azimuth (left-right) flips.

    Up-down flips and rotations are avoided on SAR: they would move the radar shadow to the wrong
    side. Digits get no flips at all (`NO_FLIP`).
    """
    flips = [v2.RandomHorizontalFlip()] if hflip else []
    return v2.Compose([v2.RandomCrop(image_size, padding=max(1, image_size // 8), padding_mode="reflect"),
                       *flips, v2.Normalize([mean], [std])])


def eval_transform(mean: float, std: float):
    return v2.Normalize([mean], [std])
