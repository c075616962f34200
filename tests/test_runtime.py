"""benchmark/runtime.py: precision, layout and determinism switches (the harness parts' tests are in perf/tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark import runtime


def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert runtime.cpu_has_native_bf16(str(with_bf16)) is True
    assert runtime.cpu_has_native_bf16(str(without)) is False
    assert runtime.cpu_has_native_bf16(str(tmp_path / "absent")) is False


@pytest.mark.parametrize("precision,native,expected", [
    ("auto", True, "bf16"), ("auto", False, "fp32"), ("fp32", True, "fp32"), ("bf16", False, "bf16")])
def test_precision_auto_follows_the_hardware(monkeypatch, precision, native, expected) -> None:
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    chosen = runtime.configure({"precision": precision}, torch.device("cpu"))
    assert chosen.precision == expected
    assert chosen.describe() == {"precision": expected, "memory_format": "channels_last", "compile": False,
                                 "deterministic": False}


def test_deterministic_mode_turns_on_torch_deterministic_algorithms(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        chosen = runtime.configure({"deterministic": True}, torch.device("cpu"))
        assert chosen.deterministic and torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


@pytest.mark.slow  # torch.compile
def test_prepared_model_is_channels_last_and_compiling_keeps_the_plain_state_dict() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(16, 2))
    plain = runtime.Runtime(torch.device("cpu"), False, torch.channels_last, compile=False, deterministic=False)
    forward = runtime.prepare_model(model, plain)
    assert forward is model and model[0].weight.is_contiguous(memory_format=torch.channels_last)
    compiled = runtime.prepare_model(model, runtime.Runtime(torch.device("cpu"), False, torch.channels_last,
                                                            compile=True, deterministic=False))
    assert compiled is not model  # compiled lazily, on its first call; checkpoints keep the model's own keys
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]

