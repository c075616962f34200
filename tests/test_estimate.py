"""`python -m benchmark estimate` against a hand computation."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmark import estimate as est
from benchmark.config import validate

# SmallCNN on one 8x8 grey image, 10 classes (benchmark/models/small_cnn.py), FLOPs = 2 x multiply-adds:
#   conv 1->16 3x3 at 8x8: 1*16*9*64 = 9,216 MACs; conv 16->32 at 8x8: 294,912; max pool to 4x4;
#   conv 32->64 at 4x4: 294,912; linear 64->10: 640. Forward: 2 * 599,680 = 1,199,360 FLOPs.
#   Backward: weight gradients of every layer (= forward) and input gradients of all but the first
#   conv (the image needs none): 1,199,360 + 1,199,360 - 18,432 = 2,380,288. Training: 3,579,648.
FORWARD, TRAIN = 1_199_360, 3_579_648


def config(**top) -> dict:
    return validate({
        "grid": "est", "datasets": ["digits"], "methods": ["softmax_ce"], "samples_per_class": [5, "all"],
        "seeds": [0, 1], "seeds_per_job": 2, "tracking": False,
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.1, "validation_fraction": 0.2},
        "dataset_settings": {"digits": {"model": "small_cnn"}}, **top,
    })


# Per cell: 10 epochs x ceil(1297 pool / 64) = 21 steps x 64 = 13,440 training images. Evaluation: the 500
# test images + 10 epochs of validation: at 5 per class round(0.2 * 5) = 1 image of each of 10 classes
# (600 in all); with all images (not prepared here: 20% of the 1,297 pool) 259 (3,090 in all).
TRAIN_IMAGES, EVAL = 13_440, {"5": 600, "all": 3_090}


def test_model_flops_by_hand():
    assert est.model_flops("small_cnn", 1, 8, 10) == (FORWARD, TRAIN)


def test_peak_fraction_seconds_by_hand(tmp_path):
    result = est.estimate(config(), "H200", gpus=1, fraction=1e-6, root=tmp_path)
    assert (result.gpu, result.peak_tflops) == ("H200", 989.4)
    rate = 1e-6 * 989.4e12  # FLOP/s
    five, every = result.lines
    assert (five.spc, five.cells, five.input, five.train_images, five.eval_images) == ("5", 2, "1x8", TRAIN_IMAGES, 600)
    assert every.eval_images == 3_090
    # (13,440 * 3,579,648 + 600 * 1,199,360) / 989.4e6 = 48,830,085,120 / 989.4e6 = 49.353 s
    assert five.seconds == pytest.approx(49.353, abs=1e-3)
    assert five.seconds == pytest.approx((TRAIN_IMAGES * TRAIN + 600 * FORWARD) / rate)
    assert five.source == "peak x 1e-06" and five.pflop == pytest.approx((TRAIN_IMAGES * TRAIN + 600 * FORWARD) / 1e15)
    assert result.gpu_hours(result.lines) == pytest.approx(2 * (five.seconds + every.seconds) / 3600)
    assert result.wall_s == pytest.approx(2 * five.seconds + 2 * every.seconds)  # one GPU: every pack in turn


def test_a_tiny_model_costs_at_least_a_millisecond_per_step(tmp_path):
    five = est.estimate(config(), "H100", fraction=0.5, root=tmp_path).lines[0]
    # 210 steps: the step floor dominates the FLOPs (3.6 MFLOP x 64 images per step at 247 TFLOP/s)
    assert five.seconds == pytest.approx(210 * est.STEP_FLOOR_S + 600 * FORWARD / (0.5 * 989.4e12))


def throughput_file(root, device: str = "NVIDIA H200", precision: str = "bf16", images_per_s: float = 1000.0):
    path = root / "results" / "perf" / "gpu" / "throughput.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    case = {"name": "digits", "model": "small_cnn", "input": [1, 8, 8], "precision": precision,
            "ours_images_per_s": images_per_s, "batch_size": 64}
    path.write_text(json.dumps({"part": "throughput", "result": {"device": device, "cases": [case]}}))


def test_measured_throughput_by_hand_and_wall_time_on_two_gpus(tmp_path):
    throughput_file(tmp_path)
    result = est.estimate(config(), "H200", gpus=2, root=tmp_path)
    five, every = result.lines
    # 13,440 / 1,000 img/s + 600 evaluated images at the same FLOP rate: 600 * (1,199,360 / 3,579,648) / 1,000
    assert five.seconds == pytest.approx(13.44 + 0.6 * FORWARD / TRAIN) == pytest.approx(13.6410, abs=1e-4)
    assert every.seconds == pytest.approx(13.44 + 3.09 * FORWARD / TRAIN)
    assert five.source == "measured 1,000 img/s (results/perf/gpu/throughput.json)"
    # two packs of two cells each, one per GPU: the longer pack (all) sets the wall time
    assert result.wall_s == pytest.approx(2 * every.seconds)


@pytest.mark.parametrize(("device", "precision", "gpu"), [("NVIDIA H100 80GB HBM3", "bf16", "H200"),
                                                          ("NVIDIA H200", "fp32", "H200")])
def test_a_measurement_of_another_gpu_or_precision_is_not_used(tmp_path, device, precision, gpu):
    throughput_file(tmp_path, device, precision)
    assert est.estimate(config(), gpu, root=tmp_path).lines[0].source == f"peak x {est.PEAK_FRACTION:g}"


def test_makespan_is_longest_first_on_the_first_free_gpu():
    assert est.makespan([3, 5, 3, 4, 3], 2) == 10  # 5 | 4, then 3 -> 7, 3 -> 8, 3 -> 10
    assert est.makespan([3, 5, 3, 4, 3], 1) == 18
    assert est.makespan([2, 2], 8) == 2


@pytest.mark.parametrize(("name", "found"), [("H100", ("H100 SXM", 989.4)), ("h200", ("H200", 989.4)),
                                             ("NVIDIA H100 PCIe", ("H100 PCIe", 756.0)), ("A10", ("A10", 125.0)),
                                             ("a100", ("A100", 312.0))])
def test_gpu_names(name, found):
    assert est.gpu_peak(name) == found


def test_unknown_gpu_is_one_line():
    with pytest.raises(est.EstimateError, match=r"^unknown GPU 'V100'; use one of H200, H100 SXM"):
        est.gpu_peak("V100")


def _tuned(strategy: str) -> dict:
    tune = {"strategy": strategy, "space": {"lr": {"log": [0.01, 1.0], "points": 4}}, "seeds": [0, 1], "epochs": 5,
            "validation_fraction": 0.2, "objective_epochs": 1, "validation": "carved",
            "halving": {"eta": 2, "min_epochs": 1}}
    return {**config(), "tune": tune}


def test_tuning_trials_of_the_grid_strategy_by_hand(tmp_path):
    result = est.estimate(config(), "H200", fraction=1e-6, tune=_tuned("grid")["tune"], root=tmp_path)
    five = result.tune_lines[0]
    # 4 points x 1 split x 2 seeds = 8 trials; 5 epochs x 21 steps x 64 = 6,720 images; 5 epochs x 10
    # validation images (round(0.2 x 5) = 1 per class)
    assert (five.cells, five.train_images, five.eval_images) == (8, 6_720, 50)
    assert five.seconds == pytest.approx((6_720 * TRAIN + 50 * FORWARD) / 989.4e6)
    assert result.tune_wall_s == pytest.approx(8 * (five.seconds + result.tune_lines[1].seconds))
    text = est.render("est", result)
    assert "tuning: 16 trial runs" in text and "tuning + grid:" in text and "grid: every point" in text


def test_successive_halving_is_counted_by_its_rungs(tmp_path):
    result = est.estimate(config(), "H200", fraction=1e-6, tune=_tuned("halving")["tune"], root=tmp_path)
    five = result.tune_lines[0]
    # rungs of 1, 2, 4, 5 epochs keep 4, 2, 1, 1 points of 2 runs: 8 + 2 x 2 x 1 + 1 x 2 x 2 + 1 x 2 x 1 = 18
    # epochs over 8 trial runs, 2.25 epochs each on average
    assert five.cells == 8 and five.train_images == pytest.approx(2.25 * 21 * 64)
    assert "successive halving" in est.render("est", result)


def test_cli_reads_the_tune_block(tmp_path, monkeypatch, capsys):
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(_tuned("grid")))
    monkeypatch.chdir(tmp_path)
    est.main(["grid.yaml"], None, "H100", 4, None)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("grid est on H100 SXM (989.4 TFLOP/s dense bf16), 4 GPUs")
    assert "total: 4 cells" in out and "tuning: 16 trial runs" in out


def test_an_fp32_grid_is_told_the_bf16_peak_overstates_it(tmp_path):
    result = est.estimate(config(precision="fp32"), "H200", root=tmp_path)
    assert result.precision == "fp32" and "the bf16 peak overstates its speed" in est.render("est", result)
    assert "overstates" not in est.render("est", est.estimate(config(), "H200", root=tmp_path))


@pytest.mark.parametrize("name,peak", [
    ("NVIDIA H200", 989.4), ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A10", 125.0), ("NVIDIA GeForce RTX 3090", None)])
def test_bf16_peak_is_looked_up_by_the_gpu_name(name, peak) -> None:
    assert est.bf16_peak_tflops(name) == peak
