"""MobileFaceNet (Chen et al., 2018): a 1M-parameter face backbone for real time on a CPU.

112x112 input -> 7x7 map -> global depthwise convolution (GDC) -> 512-D feature.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, p: int = 0, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            ConvBN(cin, hidden, 1),
            ConvBN(hidden, hidden, 3, stride, 1, groups=hidden),
            ConvBN(hidden, cout, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# (expansion, out channels, repeats, first stride), from the paper's Table 1.
SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNet(nn.Module):
    def __init__(self, input_px: int = 112) -> None:
        super().__init__()
        if input_px % 16:
            raise ValueError(f"MobileFaceNet needs an input side divisible by 16 (112 usual), got {input_px}")
        layers: list[nn.Module] = [ConvBN(3, 64, 3, 2, 1), ConvBN(64, 64, 3, 1, 1, groups=64)]
        cin = 64
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [ConvBN(cin, 512, 1), ConvBN(512, 512, input_px // 16, groups=512, act=False)]  # GDC
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)
