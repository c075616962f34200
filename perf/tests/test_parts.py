"""The throughput part (our loop, the plain reference loop, the ablation, the bf16 peaks), the packing part
and the tracking part.

Checks that the real loops ran the steps they report and that the result has the layout the summary
reads; never how fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import benchmark.train.loop
from perf import packing, reference_loop, throughput, tracking


# The reference loop is torchvision's pipeline, and importing torchvision costs ~2.5 s: these are slow tests.
@pytest.mark.slow
def test_reference_transforms_apply_the_same_augmentations() -> None:
    from torchvision import transforms as T

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


@pytest.mark.slow
def test_reference_steps_cycle_the_loader_and_train() -> None:
    # 8 images in batches of 4 are 2 batches per pass: 5 steps need 3 passes over the loader
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 4, 4, 1), dtype=np.uint8)
    labels = np.arange(8) % 2
    batches = reference_loop.loader(images, labels, np.arange(8), {}, [0.5], [0.25], batch_size=4, num_workers=0,
                                    pin_memory=False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    seen: list[tuple[int, ...]] = []
    model.register_forward_hook(lambda _m, inputs, _out: seen.append(tuple(inputs[0].shape)))
    train = {"lr": 0.1, "optimizer": {"momentum": 0.9, "weight_decay": 0.0}, "grad_clip_norm": 5.0}
    before = model[1].weight.detach().clone()
    last = reference_loop.train_steps(model, reference_loop.sgd(model, train), batches, train, torch.device("cpu"), 5)
    assert seen == [(4, 1, 4, 4)] * 5
    assert np.isfinite(last) and not torch.equal(model[1].weight, before)


def _count_steps(monkeypatch) -> dict[str, list]:
    """Spy on both loops: each call of our train step, and the step counts asked of the reference loop."""
    calls: dict[str, list] = {"ours": [], "reference": []}
    ours_step, reference_steps = benchmark.train.loop.train_step, reference_loop.train_steps

    def counted_step(*args, **kwargs):
        calls["ours"].append(1)
        return ours_step(*args, **kwargs)

    def counted_reference(*args):
        calls["reference"].append(args[-1])
        return reference_steps(*args)

    monkeypatch.setattr(benchmark.train.loop, "train_step", counted_step)  # ours() imports it when it runs
    monkeypatch.setattr(reference_loop, "train_steps", counted_reference)
    return calls


@pytest.mark.slow
def test_throughput_runs_both_loops_on_digits(monkeypatch) -> None:
    calls = _count_steps(monkeypatch)
    result = throughput.run(True, ["digits"], device="cpu")
    (case,) = result["cases"]
    warmup, steps = throughput.CASES["digits"]["quick"]
    assert (case["warmup_steps"], case["steps"]) == (warmup, steps)
    assert len(calls["ours"]) == warmup + steps and calls["reference"] == [warmup, steps]
    assert case["name"] == "digits" and case["model"] == "small_cnn" and case["input"] == [1, 8, 8]
    assert case["data"] == "digits (real)" and case["batch_size"] == 64
    assert case["reference"] == {"precision": "fp32", "memory_format": "contiguous", "dataloader_workers": 0}
    assert case["gflops_per_image"] > 0 and case["bf16_peak_tflops"] is None and case["peak_fraction"] is None
    assert case["ablation"] == []  # quick mode leaves it out
    assert result["device"] == "cpu"
    with pytest.raises(ValueError, match="unknown throughput case"):
        throughput.run(True, ["imagenet"], device="cpu")


@pytest.mark.slow
def test_throughput_ablation_sets_precision_and_layout_by_hand(monkeypatch) -> None:
    calls = _count_steps(monkeypatch)
    monkeypatch.setitem(throughput.CASES, "digits", {**throughput.CASES["digits"], "steps": (1, 2)})
    case = throughput.run_case("digits", torch.device("cpu"), quick=False)
    # the runtime's own choice, then the three hand-set layouts: 4 runs of our loop, 1 + 2 steps each
    assert len(calls["ours"]) == 4 * 3 and calls["reference"] == [1, 2]
    assert [(a["precision"], a["memory_format"]) for a in case["ablation"]] == [
        ("fp32", "contiguous"), ("fp32", "channels_last"), ("bf16", "channels_last")]


@pytest.mark.slow
def test_packing_part_trains_every_layout() -> None:
    result = packing.run(True, cells=2, packs=[2])
    assert [x["seeds_per_job"] for x in result["layouts"]] == [1, 2]
    assert [x["processes"] for x in result["layouts"]] == [2, 1]
    assert [x["cells_written"] for x in result["layouts"]] == [2, 2]
    assert result["epochs"] == 1 and result["cell"] == "digits/cosine/spc10"


@pytest.mark.slow
def test_tracking_part_times_the_tracker_in_every_mode(monkeypatch) -> None:
    from benchmark.tracking import FLUSH_S

    monkeypatch.delenv("BENCHMARK_TRACKING_FLUSH_S", raising=False)
    result = tracking.run(True, cells=1, epochs=2)
    modes = result["modes"]
    assert list(modes) == ["off", "flush_default", "flush_0"]
    assert [m["flush_s"] for m in modes.values()] == [FLUSH_S, FLUSH_S, 0.0]  # the child saw each mode's setting
    assert all(m["cells"] == 1 and m["epochs"] == 2 for m in modes.values())
    # no store: nothing sent; the default: the 2 epochs buffered and sent at the end; 0: each epoch, then the end
    assert [m["flushes"] for m in modes.values()] == [0, 1, 3]
    assert result["epochs_per_cell"] == 2 and modes["off"]["epoch_s_vs_off"] == 1.0
