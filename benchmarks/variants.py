"""The models the benchmark compares, and the Shake-Shake variants it tries for faster inference.

ResNet-50 "as shipped" is torchvision's resnet50(weights=None, num_classes=10) unchanged, fed the
one-channel chip repeated to three channels (done outside the timing, as notebook 04 does).  The
"small-stem" ResNet-50 replaces conv1 by a 3x3 stride-1 conv with *one* input channel and the
max-pool by Identity (the CIFAR-style stem used for 32-px inputs).
"""
from __future__ import annotations

import copy
import math

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from helpers.evidence import speed
from helpers.method.model import Shortcut, shake_shake_26_2x32d


def resnet50_small_stem() -> nn.Module:
    net = torchvision.models.resnet50(weights=None, num_classes=10)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net



# name -> (model factory, input channels)
MODELS = {
    "Shake-Shake-26 2x32d": (lambda: shake_shake_26_2x32d(in_channels=1, num_classes=10), 1),
    "ResNet-50 as shipped (chip repeated to 3 ch)": (speed.resnet50, 3),
    "ResNet-50 small stem (1-ch 3x3/1 conv1, no max-pool)": (resnet50_small_stem, 1),
}


@torch.no_grad()
def calibrate_bn(model: nn.Module, images: torch.Tensor, batch: int = 64, batches: int = 2) -> None:
    """Give the BatchNorm layers running statistics of real chips (as after training), so that eval-mode
    activations have realistic magnitudes: the output checks below are then meaningful."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average over the calibration batches
    model.train()
    for i in range(min(batches, math.ceil(len(images) / batch))):
        model(images[i * batch:(i + 1) * batch])
    for m in bns:
        m.momentum = 0.1
    model.eval()


def fold_bn(model: nn.Module) -> nn.Module:
    """A deep copy of an eval-mode Shake-Shake net with every BatchNorm folded into the conv before it.

    Conv->BN pairs inside nn.Sequential (stem, branches) use torch's fuse_conv_bn_eval; the downsampling
    Shortcut's BN acts on the concatenation of two 1x1 convs, so its statistics are split between them.
    """
    model = copy.deepcopy(model).eval()
    for mod in list(model.modules()):
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv2d) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    mod[i] = fuse_conv_bn_eval(mod[i], mod[i + 1])
                    mod[i + 1] = nn.Identity()
        elif isinstance(mod, Shortcut):
            bn, split = mod.bn, mod.conv1.out_channels
            for conv, part in ((mod.conv1, slice(0, split)), (mod.conv2, slice(split, None))):
                conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean[part],
                                                              bn.running_var[part], bn.eps, bn.weight[part],
                                                              bn.bias[part])
            mod.bn = nn.Identity()
    left = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if left:
        raise RuntimeError(f"fold_bn left {left} BatchNorm layers")
    return model

