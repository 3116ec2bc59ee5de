"""Shake-Shake-26 2x32d (Gastaldi, 2017), S-S-I variant, written out because it is a subject of the course.

"S-S-I" means: Shake in the forward pass (random mix of the two branches), Shake in the
backward pass (an *independent* random mix for the gradient), drawn per Image.  At eval
time the two branches are simply averaged, so inference is deterministic.

Depth 26 = 2 + 3 stages x 4 blocks x 2 convs; widths 32, 64, 128 ("2x32d": two branches,
32 filters in the first stage).  With 1 input channel and 10 classes: 2,922,874 parameters.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ShakeShake(torch.autograd.Function):
    """Mix two branches with alpha in the forward pass and an independent beta in the backward pass."""

    @staticmethod
    def forward(ctx, x1, x2, alpha, beta):
        ctx.save_for_backward(beta)
        return alpha * x1 + (1 - alpha) * x2

    @staticmethod
    def backward(ctx, grad):
        (beta,) = ctx.saved_tensors
        return beta * grad, (1 - beta) * grad, None, None


def shake(x1: torch.Tensor, x2: torch.Tensor, training: bool) -> torch.Tensor:
    """S-S-I in training (one alpha and one beta per image), plain average at eval."""
    if not training:
        return 0.5 * (x1 + x2)
    shape = (x1.size(0), 1, 1, 1)
    alpha = torch.rand(shape, device=x1.device, dtype=x1.dtype)
    beta = torch.rand(shape, device=x1.device, dtype=x1.dtype)
    return ShakeShake.apply(x1, x2, alpha, beta)


class Branch(nn.Sequential):
    """One residual branch: ReLU-Conv3x3-BN-ReLU-Conv3x3-BN."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class Shortcut(nn.Module):
    """Gastaldi's downsampling shortcut: two 1x1 convs on pixel grids offset by one, concatenated."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(cin, cout - cout // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(x)
        y1 = F.avg_pool2d(x, 1, self.stride)
        y2 = F.avg_pool2d(F.pad(x, (-1, 1, -1, 1)), 1, self.stride)
        return self.bn(torch.cat([self.conv1(y1), self.conv2(y2)], dim=1))


class ShakeBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.branch1 = Branch(cin, cout, stride)
        self.branch2 = Branch(cin, cout, stride)
        self.shortcut = nn.Identity() if (cin == cout and stride == 1) else Shortcut(cin, cout, stride)

    def forward(self, x):
        return self.shortcut(x) + shake(self.branch1(x), self.branch2(x), self.training)


class NormedLinear(nn.Linear):
    """Cosine classifier (normalised features and weights), used with the LDAM loss as in Cao et al."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x):
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


class ScaledLinear(nn.Linear):
    """LWS (Kang et al., ICLR 2020): a fixed linear classifier whose class logits are scaled by learned f_c."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.scales = nn.Parameter(torch.ones(out_features))

    def forward(self, x):
        return super().forward(x) * self.scales


class ShakeShakeNet(nn.Module):
    """Shake-Shake ResNet for small images; `features` gives the penultimate (pooled) features."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, depth: int = 26, base_width: int = 32,
                 normed_classifier: bool = False, weight_scaling: bool = False):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 (26, 32, ...), got {depth}")
        blocks = (depth - 2) // 6
        self.arch = dict(in_channels=in_channels, num_classes=num_classes, depth=depth, base_width=base_width,
                         normed_classifier=normed_classifier, weight_scaling=weight_scaling)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        layers, cin = [], 16
        for stage, width in enumerate([base_width, 2 * base_width, 4 * base_width]):
            for b in range(blocks):
                stride = 2 if (stage > 0 and b == 0) else 1
                layers.append(ShakeBlock(cin, width, stride))
                cin = width
        self.blocks = nn.Sequential(*layers)
        head = NormedLinear if normed_classifier else (ScaledLinear if weight_scaling else nn.Linear)
        self.fc = head(cin, num_classes)
        self.feature_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.fc.bias is not None:
            nn.init.zeros_(self.fc.bias)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (after the last ReLU and global average pooling), used for t-SNE/UMAP."""
        x = F.relu(self.blocks(self.stem(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def remap_head(self, num_classes: int, keep: dict[int, int]) -> None:
        """Replace the classifier by a `num_classes`-way one, copying old row i to new row keep[i].

        Stage 1 -> 2: keep={1: 0, ..., 9: 8} (drop class 0).  Stage 2 -> 3: keep={0: 1, ..., 8: 9}
        (grow 9 -> 10; the new class-0 row starts fresh, the nine trained rows are kept).
        """
        old = self.fc
        new = type(old)(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
        if new.bias is not None:
            nn.init.zeros_(new.bias)
        with torch.no_grad():
            for src, dst in keep.items():
                new.weight[dst] = old.weight[src]
                if new.bias is not None:
                    new.bias[dst] = old.bias[src]
        self.fc = new
        self.arch["num_classes"] = num_classes

    def add_weight_scaling(self) -> list:
        """LWS: keep the trained classifier, add per-class scales (initialised to 1); returns them to train."""
        old = self.fc
        new = ScaledLinear(old.in_features, old.out_features).to(old.weight.device, old.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            new.bias.copy_(old.bias)
        self.fc = new
        self.arch["weight_scaling"] = True
        return [new.scales]

    def reset_classifier(self) -> None:
        """A freshly initialised classifier of the same size (cRT re-trains from scratch)."""
        self.fc.reset_parameters()
        if self.fc.bias is not None:
            nn.init.zeros_(self.fc.bias)


def shake_shake_26_2x32d(in_channels: int = 1, num_classes: int = 10) -> ShakeShakeNet:
    return ShakeShakeNet(in_channels=in_channels, num_classes=num_classes, depth=26, base_width=32)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
