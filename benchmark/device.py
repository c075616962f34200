"""Which device a cell runs on."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

NVIDIA_GPUS = "/proc/driver/nvidia/gpus"
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cuda_present() -> bool:
    """Whether this machine has an NVIDIA GPU, answered without importing torch (the DAG must build fast)."""
    return os.path.isdir(NVIDIA_GPUS) and bool(os.listdir(NVIDIA_GPUS))


def cuda_requested(device: str) -> bool:
    """Whether cells configured with `device` will run on CUDA here."""
    return cuda_present() if device == "auto" else device.startswith("cuda")


class DeviceError(RuntimeError):
    """The device a cell asks for is not here; the message names it and the fix."""


def resolve_device(requested: str):
    """The torch.device for `requested` ('auto' picks CUDA when torch sees a GPU)."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {requested!r} requested but CUDA is not available here; use device: auto or cpu")
    return device


@cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 arithmetic instructions (otherwise bf16 autocast is emulated and slow)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool(CPU_BF16_FLAGS & set(flags))
