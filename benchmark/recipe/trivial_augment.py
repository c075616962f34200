"""TrivialAugment wide on a batch of images, one op per image, without a per-sample Python loop.

TrivialAugment (Mueller & Hutter, "TrivialAugment: Tuning-free Yet State-of-the-Art Data
Augmentation", ICCV 2021, arXiv 2103.10158), "wide" search space as torchvision's
`TrivialAugmentWide` defines it: per image one op drawn uniformly from OPS and one strength bin
b uniform over 0..30; the magnitude is the op's range at bin b, negated with probability 1/2 for
the signed ops:

    ShearX/Y     m = +-0.99 b/30          shear factor (the pixel at row y moves by m y)
    TranslateX/Y m = +-32 b/30            whole pixels (int(m)), absolute, whatever the image size
    Rotate       m = +-135 b/30           degrees, counter-clockwise for m > 0, about the centre
    Brightness, Color, Contrast, Sharpness: factor f = 1 + m, m = +-0.99 b/30
    Posterize    bits = round(8 - b / 5)  8 -> 2 bits kept
    Solarize     threshold 255 (1 - b/30)  pixels >= threshold are inverted
    Identity, AutoContrast, Equalize: no magnitude

Pixels outside a geometric op's source are 0 (torchvision's default fill); interpolation is
nearest (torchvision's default) or bilinear.

Batching: the images are sorted by their op (one host sync for the op counts), each op runs
once on its contiguous sub-batch with per-image parameters, and the results are put back in
the original order. The five geometric ops share one grid_sample with per-image matrices.
Inputs are uint8 or float pixels in 0..255, (N, C, H, W) with C = 1 or 3. Every op computes in
float32; for uint8 input the intermediate roundings torchvision applies to uint8 (floored grey,
rounded blur, truncating casts) are applied too, so results match its single-image ops. Float
input is not rounded (Equalize, a 256-bin histogram op, and Posterize quantise it). Written
without torchvision, which the training path does not import.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

OPS = (
    "Identity", "AutoContrast", "Equalize",
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",  # contiguous: one grid_sample for all
    "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
)
NUM_BINS = 31
SIGNED = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness")
_TOP = {"ShearX": 0.99, "ShearY": 0.99, "TranslateX": 32.0, "TranslateY": 32.0, "Rotate": 135.0,
        "Brightness": 0.99, "Color": 0.99, "Contrast": 0.99, "Sharpness": 0.99}
_GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


def magnitude_table(num_bins: int = NUM_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(OPS), num_bins) unsigned magnitudes per op and bin, and (len(OPS),) whether each op is signed."""
    table = torch.zeros(len(OPS), num_bins)
    for name, top in _TOP.items():
        table[OPS.index(name)] = torch.linspace(0.0, top, num_bins)
    # torchvision's Posterize bins: 8 - b / ((num_bins - 1) / 6), rounded (no ties for 31 bins).
    table[OPS.index("Posterize")] = (8 - torch.arange(num_bins) / ((num_bins - 1) / 6)).round()
    table[OPS.index("Solarize")] = torch.linspace(1.0, 0.0, num_bins)
    signed = torch.tensor([name in SIGNED for name in OPS])
    return table, signed


def draw(
    n: int, generator: torch.Generator, device: torch.device | str = "cpu", num_bins: int = NUM_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image an op index (into OPS), a bin in 0..num_bins-1 and the signed magnitude, all (n,)."""
    op = torch.randint(len(OPS), (n,), generator=generator, device=device)
    bins = torch.randint(num_bins, (n,), generator=generator, device=device)
    negative = torch.rand(n, generator=generator, device=device) < 0.5
    table, signed = (t.to(device) for t in magnitude_table(num_bins))
    magnitude = table[op, bins]
    return op, bins, torch.where(signed[op] & negative, -magnitude, magnitude)


def trivial_augment_wide(
    x: torch.Tensor, generator: torch.Generator, num_bins: int = NUM_BINS, interpolation: str = "nearest"
) -> torch.Tensor:
    """TrivialAugment wide of every image of (N, C, H, W); same dtype, shape and range 0..255."""
    op, _, magnitude = draw(x.shape[0], generator, x.device, num_bins)
    return apply(x, op, magnitude, interpolation)


def apply(x: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, interpolation: str = "nearest") -> torch.Tensor:
    """Apply op[i] (index into OPS) with magnitude[i] to image i of (N, C, H, W) uint8 or float 0..255."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    discrete = not x.is_floating_point()
    order = torch.argsort(op, stable=True)
    counts = torch.bincount(op, minlength=len(OPS)).tolist()  # the only host sync
    offsets = [0, *itertools.accumulate(counts)]
    xs, ops, ms = x.index_select(0, order).float(), op.index_select(0, order), magnitude.index_select(0, order)
    out = torch.empty_like(xs)
    for name, fn in _PIXEL_OPS.items():
        lo, hi = offsets[OPS.index(name)], offsets[OPS.index(name) + 1]
        if hi > lo:
            out[lo:hi] = fn(xs[lo:hi], ms[lo:hi], discrete)
    lo, hi = offsets[OPS.index("ShearX")], offsets[OPS.index("Rotate") + 1]
    if hi > lo:
        out[lo:hi] = _geometric(xs[lo:hi], ops[lo:hi], ms[lo:hi], discrete, interpolation)
    out[:counts[0]] = xs[:counts[0]]  # Identity (op 0) stays
    unsort = torch.empty_like(order).index_copy_(0, order, torch.arange(len(order), device=order.device))
    return out.index_select(0, unsort).clamp_(0, 255).to(x.dtype)  # truncates to uint8 as torchvision's casts do


# --------------------------------------------------------------------------- geometric ops

def inverse_matrices(op: torch.Tensor, magnitude: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 2, 3) maps from output to input pixel coordinates, origin at the image centre.

    ShearX: x_in = x + m (y + H/2) (torchvision shears about the top-left corner); ShearY likewise
    with x and y swapped. TranslateX/Y by t = int(m): x_in = x - t. Rotate by a degrees
    counter-clockwise (rows grow downwards): x_in = cos a x - sin a y, y_in = sin a x + cos a y.
    """
    m = magnitude.double()  # torchvision builds its matrices in Python floats
    is_op = {name: op == OPS.index(name) for name in OPS[3:8]}
    zero = torch.zeros_like(m)
    shear_x = torch.where(is_op["ShearX"], m, zero)
    shear_y = torch.where(is_op["ShearY"], m, zero)
    shift_x = torch.where(is_op["TranslateX"], m.trunc(), zero)
    shift_y = torch.where(is_op["TranslateY"], m.trunc(), zero)
    angle = torch.where(is_op["Rotate"], torch.deg2rad(m), zero)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # At most one of shear / shift / angle is nonzero per image, so the terms simply add up.
    row0 = torch.stack([cos, -sin + shear_x, shear_x * height / 2 - shift_x], dim=1)
    row1 = torch.stack([sin + shear_y, cos, shear_y * width / 2 - shift_y], dim=1)
    return torch.stack([row0, row1], dim=1).float()


def _sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """grid_sample coordinates (N, H, W, 2) of per-image matrices theta acting on pixel centres.

    Pixel centres relative to the image centre, mapped by theta, then scaled to grid_sample's
    [-1, 1] (align_corners=False): torchvision's affine grid, so nearest sampling picks the same
    pixels. Written out per coordinate: a (HW x 3) by (3 x 2) product per image is slow as a bmm.
    """
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=theta.device)[None, None, :]
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=theta.device)[None, :, None]
    scaled = theta / torch.tensor([0.5 * width, 0.5 * height], device=theta.device)[None, :, None]
    t = scaled[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    grid = xs * t[:, :, 0] + ys * t[:, :, 1] + t[:, :, 2]  # (N, 2, H, W)
    return grid.permute(0, 2, 3, 1)


def _geometric(x: torch.Tensor, op: torch.Tensor, m: torch.Tensor, discrete: bool, interpolation: str) -> torch.Tensor:
    height, width = x.shape[-2:]
    grid = _sampling_grid(inverse_matrices(op, m, height, width), height, width)
    out = F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out.round() if discrete and interpolation != "nearest" else out


# --------------------------------------------------------------------------- colour ops

def _per_image(v: torch.Tensor) -> torch.Tensor:
    return v.float()[:, None, None, None]


def _grey(x: torch.Tensor, discrete: bool) -> torch.Tensor:
    """(N, 1, H, W) luma; floored for uint8 images, as torchvision does before blending."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    grey = (r * _GREY_WEIGHTS[0] + g * _GREY_WEIGHTS[1] + b * _GREY_WEIGHTS[2])[:, None]
    return grey.floor() if discrete else grey


def _blend(x: torch.Tensor, degenerate: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """f x + (1 - f) degenerate with f = 1 + m, clamped to 0..255.

    1 - f is written -m: torchvision computes it in double precision from m, not from float32 f.
    """
    return torch.addcmul(x * _per_image(1 + m), degenerate, _per_image(-m)).clamp(0, 255)


def _brightness(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    return (x * _per_image(1 + m)).clamp(0, 255)  # blend with black


def _color(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    if x.shape[1] == 1:  # a grey image has no saturation to change (as PIL and torchvision)
        return x
    return _blend(x, _grey(x, discrete), m)


def _contrast(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    mean = _grey(x, discrete).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, m)


def _sharpness(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Blend with a 3x3 smoothing ([1 1 1; 1 5 1; 1 1 1] / 13) of the image; the border pixels stay (PIL)."""
    c, height, width = x.shape[1:]
    if height <= 2 or width <= 2:
        return x
    kernel = torch.full((3, 3), 1.0 / 13.0, device=x.device)
    kernel[1, 1] = 5.0 / 13.0
    blurred = F.conv2d(x, kernel.expand(c, 1, 3, 3), groups=c)
    if discrete:
        blurred = blurred.round()
    out = x.clone()
    inner = x[..., 1:-1, 1:-1]
    out[..., 1:-1, 1:-1] = torch.addcmul(inner, blurred - inner, _per_image(-m))  # f inner + (1 - f) blurred
    return out.clamp(0, 255)


def _posterize(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Keep the top `bits` bits: floor(x / 2^(8 - bits)) 2^(8 - bits), i.e. x & mask for uint8."""
    step = _per_image(2.0 ** (8 - m.long()))
    return torch.floor(x / step) * step


def _solarize(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    return torch.where(x >= _per_image(255 * m), 255 - x, x)


def _autocontrast(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Stretch each channel of each image to 0..255: (x - min) / ((max - min) / 255); flat channels stay."""
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    flat = high == low
    inv_scale = torch.where(flat, 1.0, (high - low) * (1.0 / 255))  # torchvision's order of operations
    return ((x - torch.where(flat, 0.0, low)) / inv_scale).clamp(0, 255)


def _equalize(x: torch.Tensor, m: torch.Tensor, discrete: bool) -> torch.Tensor:
    """Histogram equalisation of each channel of each image with PIL's lookup table.

    With hist the channel's 256-bin histogram and step = (pixels not at the channel's largest
    value) // 255: lut[k] = min(255, (pixels below k + step // 2) // step); a channel with
    step = 0 (almost flat) stays. Float input is rounded to the 256 levels first.
    """
    n, c, height, width = x.shape
    flat = x.round().clamp(0, 255).long().reshape(n * c, height * width)
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    largest = 255 - (hist.flip(1) > 0).long().argmax(dim=1, keepdim=True)
    step = (height * width - hist.gather(1, largest)) // 255
    below = hist.cumsum(1) - hist
    lut = ((below + step // 2) // step.clamp_min(1)).clamp_(max=255)
    out = torch.where(step > 0, lut.gather(1, flat), flat)
    return out.reshape(n, c, height, width).float()


# One function per op on its sub-batch, f(images, magnitudes, discrete); Identity needs none and the
# geometric ops share _geometric.
_PIXEL_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]] = {
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Brightness": _brightness,
    "Color": _color,
    "Contrast": _contrast,
    "Sharpness": _sharpness,
    "Posterize": _posterize,
    "Solarize": _solarize,
}
