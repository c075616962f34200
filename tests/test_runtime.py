"""benchmark/runtime.py: precision, layout and determinism switches; the throughput and packing harness parts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import transforms as T

from benchmark import runtime
from benchmark.perf import packing, reference_loop, throughput


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


def test_prepared_model_is_channels_last_and_compiling_keeps_the_plain_state_dict() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(16, 2))
    plain = runtime.Runtime(torch.device("cpu"), False, torch.channels_last, compile=False, deterministic=False)
    forward = runtime.prepare_model(model, plain)
    assert forward is model and model[0].weight.is_contiguous(memory_format=torch.channels_last)
    compiled = runtime.prepare_model(model, runtime.Runtime(torch.device("cpu"), False, torch.channels_last,
                                                            compile=True, deterministic=False))
    assert compiled is not model  # compiled lazily, on its first call; checkpoints keep the model's own keys
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_reference_transforms_apply_the_same_augmentations() -> None:
    photo = reference_loop.transforms_for(
        {"crop": 448, "hflip": True, "erase": {"p": 0.5, "area": [0.02, 0.3], "aspect": [0.3, 3.33]}},
        512, [0.5] * 3, [0.2] * 3)
    kinds = [type(t) for t in photo.transforms]
    assert kinds == [T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize, T.RandomErasing]
    assert photo.transforms[0].size == (448, 448) and photo.transforms[-1].scale == (0.02, 0.3)
    cifar = reference_loop.transforms_for({"hflip": True, "max_shift": 5, "shift_fill": "nearest"}, 32,
                                          [0.5] * 3, [0.2] * 3)
    shift = cifar.transforms[1]
    assert isinstance(shift, T.RandomCrop) and shift.size == (32, 32) and shift.padding == 5
    assert shift.padding_mode == "edge"


def test_throughput_trains_both_loops_on_digits() -> None:
    result = throughput.run(True, ["digits"], device="cpu")
    (case,) = result["cases"]
    assert case["name"] == "digits" and case["model"] == "small_cnn" and case["input"] == [1, 8, 8]
    assert case["ours_images_per_s"] > 0 and case["reference_images_per_s"] > 0
    assert case["speedup"] == pytest.approx(case["ours_images_per_s"] / case["reference_images_per_s"], rel=0.01)
    assert case["reference"]["precision"] == "fp32" and case["gflops_per_image"] > 0
    with pytest.raises(ValueError, match="unknown throughput case"):
        throughput.run(True, ["imagenet"], device="cpu")


@pytest.mark.slow
def test_packing_part_trains_every_layout() -> None:
    result = packing.run(True, cells=2, packs=[2])
    assert [x["seeds_per_job"] for x in result["layouts"]] == [1, 2]
    assert [x["processes"] for x in result["layouts"]] == [2, 1]
    assert result["layouts"][0]["vs_one_per_process"] == 1.0
    assert all(x["cells_per_hour"] > 0 for x in result["layouts"])
