"""How a cell's tensors run on its device: precision, memory layout, cuDNN, compilation, determinism.

Chosen once per process from the cell's settings (`precision`, `compile`, `deterministic` in the
config) and the hardware:

- precision `auto` trains under bf16 autocast where the hardware computes bf16 natively (CUDA
  devices that support it; CPUs with AVX512-BF16 or AMX), fp32 elsewhere. On this project's 2-core
  EPYC, bf16 + channels_last trains the wide ResNet-110 2.4x faster than fp32 (the speed harness,
  python -m perf). `fp32` and `bf16` force one or the other.
- Images and convolution weights are channels_last (NHWC), the layout oneDNN and cuDNN are fastest
  with; the prepared arrays are already NHWC, so no copy is needed for it.
- On CUDA, cuDNN autotunes its kernels (benchmark mode) and fp32 leftovers use TF32, unless
  `deterministic: true`, which also makes PyTorch refuse nondeterministic kernels: bit-reproducible
  on the same GPU, at a speed cost. `precision: fp32` keeps TF32 off.
  On CPU, training is deterministic either way.
- `compile: true` wraps the model in torch.compile (off by default: compiling takes tens of seconds
  per process, which only pays off for long cells on a GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from benchmark.device import cpu_has_native_bf16


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast: bool  # bf16 autocast of the forward pass
    memory_format: torch.memory_format
    compile: bool
    deterministic: bool

    @property
    def precision(self) -> str:
        return "bf16" if self.autocast else "fp32"

    def describe(self) -> dict:
        layout = "channels_last" if self.memory_format == torch.channels_last else "contiguous"
        return {"precision": self.precision, "memory_format": layout, "compile": self.compile,
                "deterministic": self.deterministic}


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_native_bf16()


def configure(settings: dict, device: torch.device) -> Runtime:
    """Set the process-wide switches for `device` and return what the cell runs with."""
    precision = settings.get("precision", "auto")
    autocast = precision == "bf16" or (precision == "auto" and native_bf16(device))
    deterministic = bool(settings.get("deterministic", False))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        # TF32 for what autocast leaves in fp32, unless the user asked for real fp32 or determinism
        tf32 = precision != "fp32" and not deterministic
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible results; read when its handle is created.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
    return Runtime(device=device, autocast=autocast, memory_format=torch.channels_last,
                   compile=bool(settings.get("compile", False)), deterministic=deterministic)


def prepare_model(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """The model on the runtime's device and layout, compiled if asked; returns what to call."""
    model = model.to(runtime.device, memory_format=runtime.memory_format)
    if runtime.compile:
        return torch.compile(model)
    return model
