"""Harmonic networks: convolutions whose filters are learned combinations of a fixed DCT basis.

Ulicny, Krylov, Dahyot, "Harmonic Networks with Limited Training Samples" (EUSIPCO 2019,
arXiv 1905.00135) and "Harmonic Convolutional Networks based on Discrete Cosine Transform"
(Pattern Recognition 2022, arXiv 2001.06570); used on small data by GEM (Brigato et al.,
"A Close Look at Deep Learning with Small Data", arXiv 2003.12843 / the `gem` benchmark).

- `dct_filters`: the k x k DCT-II basis, optionally truncated to the low frequencies.
- `Harm2d`: a drop-in replacement for nn.Conv2d in two forms: the harmonic block (fixed depthwise
  DCT conv -> BatchNorm without affine -> learned 1x1 conv) and the linear form (one conv whose
  filter is a learned combination of the DCT filters).
- `harmonize`: GEM's recipe applied to any built model; `harmonic_*` constructors for the registry.

The DCT bank is a buffer, never a parameter: it stays out of the optimiser and of weight decay
(the official code stores it as an nn.Parameter with requires_grad=False, which optimisers built
from model.parameters() still receive).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.resnet import cifar_resnet110_wide, resnet50
from benchmark.models.small_cnn import SmallCNN


def dct_frequencies(k: int, level: int | None = None) -> list[tuple[int, int]]:
    """The (i, j) frequency pairs of a k x k bank, row-major, keeping i + j < level when a level is given.

    Count: level (level + 1) / 2 for level <= k, else k^2 - r (r + 1) / 2 with r = 2k - 1 - level
    (all k^2 from level 2k - 1 on, since i + j <= 2k - 2).
    """
    if k < 1:
        raise ValueError(f"DCT size must be at least 1, got {k}")
    if level is not None and level < 1:
        raise ValueError(f"DCT level must be at least 1 (1 keeps only the DC filter), got {level}")
    return [(i, j) for i in range(k) for j in range(k) if level is None or i + j < level]


def dct_filters(k: int, level: int | None = None, l1_norm: bool = True) -> torch.Tensor:
    """The DCT-II filter bank of shape (nf, k, k), float32.

    filter_(i, j)[x, y] = cos(pi (x + 1/2) i / k) * cos(pi (y + 1/2) j / k), x the row and y the
    column of the kernel; filters in the order of `dct_frequencies`, the DC filter (0, 0) first.
    With l1_norm every filter is divided by the sum of its absolute values (the official default,
    so every filter has the same L1 gain); without it the raw cosine products are returned (an
    orthogonal, not orthonormal, basis: ||filter_(i, j)||^2 = k^2 / 4 * (2 if i = 0) * (2 if j = 0)).
    The official code scales the unnormalised variant to the orthonormal DCT instead.
    """
    freq = torch.arange(k, dtype=torch.float64)
    pos = torch.arange(k, dtype=torch.float64) + 0.5
    cos = torch.cos(math.pi * freq[:, None] * pos[None, :] / k)  # cos[i, x]
    bank = torch.stack([torch.outer(cos[i], cos[j]) for i, j in dct_frequencies(k, level)])
    if l1_norm:
        bank = bank / bank.abs().sum(dim=(1, 2), keepdim=True)
    return bank.float()


def _pair(value: int | tuple[int, ...], name: str) -> int:
    size = (value, value) if isinstance(value, int) else tuple(value)
    if len(size) != 2 or size[0] != size[1]:
        raise ValueError(f"harmonic convolutions need a square {name}, got {value}")
    return size[0]


class Harm2d(nn.Module):
    """A convolution with filters spanned by the DCT basis, same interface as nn.Conv2d.

    Linear form (use_bn=False): y = conv(x, W) + b with W[o, c] = sum_f a[o, c, f] * DCT_f, the
    coefficients a learned, shape (out, in / groups, nf). With the full basis (level=None) W can be
    any k x k filter, so this is a re-parameterisation of the plain conv with the same parameter count.
    Harmonic block (use_bn=True): every input channel c is filtered by each DCT_f (a fixed depthwise
    conv with the conv's stride, padding and dilation; map c * nf + f), the ni * nf maps are
    normalised by BatchNorm2d(ni * nf, affine=False), then a learned 1x1 conv, weight
    (out, ni / groups * nf, 1, 1), mixes them (Ulicny et al., arXiv 2001.06570, Sec. 3).

    The learned weights get Kaiming-normal fan_out init (fan_out = out * nf in the linear form, out in
    the block), the bias zeros, as in the official code. The coefficients are stored (out, in, nf)
    rather than the official (out, in, nf, 1, 1): same init, but a 5-D parameter would make
    model.to(memory_format=torch.channels_last) fail.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        use_bn: bool = False,
        level: int | None = None,
        l1_norm: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels ({in_channels} -> {out_channels}) must be divisible by groups ({groups})")
        k = _pair(kernel_size, "kernel")
        self.in_channels, self.out_channels, self.groups, self.use_bn = in_channels, out_channels, groups, use_bn
        self.kernel_size = (k, k)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.register_buffer("dct", dct_filters(k, level, l1_norm))
        nf = self.num_filters
        if use_bn:
            self.bn = nn.BatchNorm2d(in_channels * nf, affine=False)
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups * nf, 1, 1))
        else:
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, nf))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    @property
    def num_filters(self) -> int:
        return self.dct.shape[0]

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, use_bn: bool = False, level: int | None = None) -> Harm2d:
        """A freshly initialised Harm2d with `conv`'s shape, stride, padding, dilation, groups, bias, device, dtype."""
        if conv.padding_mode != "zeros":
            raise ValueError(f"harmonic convolutions pad with zeros, this conv uses {conv.padding_mode!r}")
        harm = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                   dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, use_bn=use_bn, level=level)
        return harm.to(device=conv.weight.device, dtype=conv.weight.dtype)

    def filters(self) -> torch.Tensor:
        """The linear form's effective conv weight (out, in / groups, k, k) = sum_f a[..., f] * DCT_f."""
        if self.use_bn:
            raise AttributeError("the harmonic block has no single filter; its 1x1 conv mixes the DCT maps")
        return torch.einsum("oif,fxy->oixy", self.weight, self.dct.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_bn:
            return F.conv2d(x, self.filters(), self.bias, self.stride, self.padding, self.dilation, self.groups)
        # Filter c * nf + f applies DCT_f to input channel c (groups = in_channels: one bank per channel).
        bank = self.dct.to(x.dtype).repeat(self.in_channels, 1, 1).unsqueeze(1)
        maps = F.conv2d(x, bank, None, self.stride, self.padding, self.dilation, self.in_channels)
        return F.conv2d(self.bn(maps), self.weight, self.bias, groups=self.groups)

    def extra_repr(self) -> str:
        form = "harmonic block (BN)" if self.use_bn else "linear"
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, filters={self.num_filters}, {form}")


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)


def harmonize(model: nn.Module) -> nn.Module:
    """Turn a built model into a harmonic network in place (GEM's recipe) and return it.

    The first nn.Conv2d (in module registration order: the stem of every model here) becomes the
    BN harmonic block, every other conv with a kernel larger than 1x1 the linear form with the full
    basis (no level truncation), 1x1 convs stay as they are. Stride, padding, dilation, groups and
    bias presence are copied; the new weights are freshly initialised. Differences from GEM's code:
    GEM only converts the first conv when it is the model's first direct child, and it drops the
    bias (always bias=False), dilation and groups (its ResNets have none of them).
    """
    if any(isinstance(m, Harm2d) for m in model.modules()):
        raise ValueError("the model already contains harmonic convolutions")
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no nn.Conv2d to harmonize")
    first_name, first = convs[0]
    _replace(model, first_name, Harm2d.from_conv(first, use_bn=True))
    for name, conv in convs[1:]:
        if conv.kernel_size != (1, 1):
            _replace(model, name, Harm2d.from_conv(conv, use_bn=False))
    return model


def harmonic_small_cnn(in_channels: int, output_dim: int) -> nn.Module:
    """benchmark.models.small_cnn.SmallCNN, harmonized: a BN harmonic block, then two linear harmonic convs."""
    return harmonize(SmallCNN(in_channels, output_dim))


def harmonic_resnet50(in_channels: int, output_dim: int) -> nn.Module:
    """ResNet-50 (torchvision layout), harmonized: 7x7 stem as BN block, the 16 3x3 convs linear, 1x1 kept."""
    return harmonize(resnet50(in_channels, output_dim))


def harmonic_cifar_resnet110_wide(in_channels: int, output_dim: int) -> nn.Module:
    """The wide CIFAR ResNet-110, harmonized: stem as BN block, the 108 block convs linear."""
    return harmonize(cifar_resnet110_wide(in_channels, output_dim))
