"""ResNets of the paper, always randomly initialised (the study trains without pre-training).

- `resnet50`: torchvision's ResNet-50 (CUB, NABirds, Cars, Flowers-102, MIT67 in the paper).
- `cifar_resnet110_wide`: the official code's "resnet-110-wfc" for CIFAR-100: ResNet-110 with
  twice the standard widths.

Neither constructor has a weights argument, so pre-trained weights cannot be requested.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResNet50(nn.Module):
    """torchvision's ResNet-50 split into `features` (everything up to the global average pool) and `head`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.head = net.fc
        net.fc = nn.Identity()
        self.features = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet50(in_channels: int, output_dim: int) -> nn.Module:
    """ResNet-50 (torchvision layout), random init, global average pool, linear(output_dim).

    torchvision's ResNet-50 is "v1.5" (stride 2 in the 3x3 conv of a bottleneck); the Keras
    ResNet50 of the official code strides the first 1x1 conv (v1). For in_channels != 3 the stem
    conv is replaced by one with the same shape and init.
    """
    import torchvision  # here, not at module level: importing it costs ~1.4 s per cell job

    model = torchvision.models.resnet50(weights=None, num_classes=output_dim)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return ResNet50(model)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, then ReLU (post-activation, He et al. 2016a).

    When the block halves the resolution and widens, the shortcut is parameter-free as in the
    official Keras model: 2x2 average pooling, then zero channels padded on both sides.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.pad = (cout - cin) // 2, cout - cin - (cout - cin) // 2

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride)
        if self.pad != (0, 0):
            x = F.pad(x, (0, 0, 0, 0, *self.pad))  # (W, H, C) pairs: pad only channels
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3 conv stem -> 3 stages of `blocks` basic blocks (strides 1, 2, 2) -> GAP -> linear.

    Depth = 6 * blocks + 2 (blocks = 18: ResNet-110). Convs use He (Kaiming normal, fan_out)
    init, BatchNorm starts at identity; the official Keras code used Keras' default Glorot
    uniform init and conv biases instead.
    """

    def __init__(self, in_channels: int, output_dim: int, blocks: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        cin = widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks):
                layers.append(BasicBlock(cin, width, stride=2 if stage > 0 and i == 0 else 1))
                cin = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(cin, output_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cifar_resnet110_wide(in_channels: int, output_dim: int) -> CifarResNet:
    """ResNet-110 for 32x32 inputs with widths 32/64/128 (the official "resnet-110-wfc")."""
    return CifarResNet(in_channels, output_dim, blocks=18, widths=(32, 64, 128))
