"""What a grid costs before it runs: `python -m benchmark estimate --configfile X [--gpu NAME] [--gpus N]`.

Per cell (all cells of a (dataset, method, samples per class) cost the same):
- training images = epochs x steps per epoch x batch size (steps as the trainer computes them: with
  `auto`, the full training pool / batch size, whatever the samples per class);
- evaluation images = the test set once + the validation split after every epoch (when there is one);
- FLOPs per image of the cell's model at its input size (the training crop, or the stored image side),
  counted by torch.utils.flop_counter on the meta device: forward + backward for a training image,
  forward for an evaluated one (matrix products and convolutions; normalisation and activations are
  not counted, as usual);
- seconds, from one of two sources, named on every line:
  `measured`: the speed harness's training throughput on this GPU for this model, input and precision
  (results/perf/**/throughput*.json, written by `python -m perf --parts throughput` on the GPU, see
  docs/performance.md): training images / (images per second), evaluation at the same FLOP rate;
  `peak x f`: all FLOPs at the fraction f (PEAK_FRACTION unless --peak-fraction) of the GPU's dense
  bf16 peak (GPU_BF16_PEAK_TFLOPS below).
Wall time on N GPUs: the packs (a job trains its cells one after the other) scheduled longest first,
each on the GPU that is free first (one job per GPU). Not counted: job start-up (about 2 s per job,
docs/performance.md), data preparation, early stopping (`patience` can only shorten a cell), and any
per-step work of a method beyond one forward and backward of its model (flagged per line).

With a `tune:` block in the config (the tuning stage), its trials are estimated the same way:
per (dataset, method, samples per class), `trials` x seeds x epochs of training (the block's own
`epochs`, else the cell's), read defensively: a block without a positive `trials` count is named and
left out. For a successive-halving search this is the upper bound (every trial run to the end).
"""

from __future__ import annotations

import functools
import heapq
import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.config import ConfigError, load_config
from benchmark.grid import Grid, resolved_precision
from benchmark.registry import MODELS, dataset_module
from benchmark.validation import validation_count

# Fraction of the dense bf16 peak a cell's training step reaches where nothing was measured. NVIDIA's
# ResNet-50 v1.5 (PyTorch, AMP, DALI) trains at 2,470 img/s on one A100 (DeepLearningExamples README):
# 2,470 x 24.6 GFLOP (forward + backward at 224 px) = 61 TFLOP/s, 20% of the A100's 312. In MLPerf Training
# v3.0 (Dell, 16 GPUs) ResNet-50 trains 1.8x faster on H100 SXM than on A100: 110 TFLOP/s, 11% of the H100's
# 989 (normalisation and activations are bound by memory, not by the tensor cores). 11% is taken for every
# GPU: an estimate for an A100 is then pessimistic by about 2x.
PEAK_FRACTION = 0.11
# A training step takes at least this long however small the model: eager PyTorch launches about a hundred
# kernels per step (forward, backward, clipping, SGD), some microseconds each. Only matters for tiny models.
STEP_FLOOR_S = 1e-3
THROUGHPUT_FILES = "results/perf/**/throughput*.json"
# (channels, side) of the stored images of the datasets whose size is fixed by their data; the others
# are stored at config/datasets.yaml's `resolution` with 3 channels. A prepared dataset's metadata wins.
FIXED_SHAPES = {"digits": (1, 8), "mnist5k": (1, 28), "cifar100": (3, 32)}


# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by device-name fragment.
GPU_BF16_PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0,
                        "H100 NVL": 835.0, "A100": 312.0, "L40S": 362.1, "A10": 125.0}


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (torch.cuda.get_device_name); None for others and CPUs.

    The first fragment the name contains wins, so the longer names come first ("A100" before "A10").
    """
    return next((peak for key, peak in GPU_BF16_PEAK_TFLOPS.items() if key in device_name), None)


class EstimateError(ConfigError):
    """A GPU or option the estimate cannot use; one line naming it and the fix (printed as a config error is)."""


def gpu_peak(name: str) -> tuple[str, float]:
    """(the name as the peak table spells it, its dense bf16 TFLOP/s) for a GPU name or part of one."""
    peak = bf16_peak_tflops(name)
    if peak is not None:
        return next(key for key in GPU_BF16_PEAK_TFLOPS if key in name), peak
    # "H100" is a part of the table's names ("H100 SXM", ...): the first, the SXM part, is taken
    matches = [key for key in GPU_BF16_PEAK_TFLOPS if name.lower() in key.lower()]
    if not matches:
        raise EstimateError(f"unknown GPU {name!r}; use one of {', '.join(GPU_BF16_PEAK_TFLOPS)} (or a part of one)")
    return matches[0], GPU_BF16_PEAK_TFLOPS[matches[0]]


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs of a dataset: stored image (channels, side), pool, test set, classes."""

    channels: int
    side: int
    pool: int
    test: int
    classes: int
    per_class: tuple[int, ...] | None  # training images per class, when the dataset is prepared


def data_shape(dataset: str, root: Path = Path(".")) -> DataShape:
    """From the prepared metadata when the dataset is prepared, else from its published facts and settings."""
    metadata = root / "data" / "prepared" / dataset / "metadata.json"
    if metadata.exists():
        meta = json.loads(metadata.read_text())
        height, _, channels = meta["image_shape"]
        return DataShape(channels, height, meta["num_train"], meta["num_test"], len(meta["classes"]),
                         tuple(meta["train_per_class"]))
    facts = dataset_module(dataset).FACTS
    if dataset in FIXED_SHAPES:
        channels, side = FIXED_SHAPES[dataset]
    else:
        import yaml

        settings = yaml.safe_load((root / "config" / "datasets.yaml").read_text()).get(dataset) or {}
        if "resolution" not in settings:
            raise EstimateError(f"config/datasets.yaml gives no `resolution` for {dataset}; add it, or prepare the "
                                "dataset (its metadata has the image size)")
        channels, side = 3, int(settings["resolution"])
    return DataShape(channels, side, facts.train, facts.test, facts.classes, None)


@functools.cache
def model_flops(model: str, channels: int, side: int, classes: int) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of one image through model `model` at channels x side x side."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.targets import load

    with torch.device("meta"):
        net = load(MODELS[model])(channels, classes)
        x = torch.empty(2, channels, side, side)
    counts = []
    for backward in (False, True):
        counter = FlopCounterMode(display=False)
        with counter:
            out = net(x)
            if backward:
                out.sum().backward()
        counts.append(counter.get_total_flops() / 2)
    return counts[0], counts[1]


def measured(gpu: str, model: str, shape: list[int], precision: str, root: Path = Path(".")) -> dict | None:
    """The speed harness's case for this GPU, model, input [C, H, W] and precision, with its file; None if none."""
    for path in sorted(root.glob(THROUGHPUT_FILES)):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        result = data.get("result", data)
        if gpu.lower() not in str(result.get("device", "")).lower():
            continue
        for case in result.get("cases", []):
            if (case.get("model") == model and list(case.get("input", [])) == shape
                    and case.get("precision") == precision and case.get("ours_images_per_s")):
                return {**case, "file": str(path.relative_to(root))}
    return None


@dataclass
class Line:
    """The cost of the cells of one (dataset, method, samples per class), or of its tuning trials."""

    dataset: str
    method: str
    spc: str
    cells: int
    input: str  # "3x448"
    gflop_train: float  # forward + backward of one training image
    gflop_eval: float  # forward of one evaluated image
    train_images: int  # per cell
    eval_images: int  # per cell
    seconds: float  # per cell
    source: str
    note: str = ""

    @property
    def pflop(self) -> float:
        """PFLOP per cell."""
        return (self.train_images * self.gflop_train + self.eval_images * self.gflop_eval) / 1e6


def cell_seconds(train_images: int, eval_images: int, flops: tuple[float, float], rate: dict,
                 train_steps: int = 0) -> float:
    """Seconds of one cell at `rate`: {"images_per_s": ...} (measured) or {"flops_per_s": ...} (peak x f, with
    at least STEP_FLOOR_S per training step)."""
    forward, train = flops
    if "images_per_s" in rate:
        return (train_images + eval_images * forward / train) / rate["images_per_s"]
    return max(train_images * train / rate["flops_per_s"], train_steps * STEP_FLOOR_S) + \
        eval_images * forward / rate["flops_per_s"]


def steps(train: dict, data: DataShape, spc) -> int:
    from benchmark.train.data import steps_per_epoch

    subset = data.pool if spc == "all" else data.classes * int(spc)
    return steps_per_epoch(train, data.pool, subset, spc)


def validation_images(spc, fraction: float, data: DataShape) -> int:
    """Images a cell validates on after every epoch (benchmark/validation.py, per class)."""
    if fraction == 0:
        return 0
    if spc != "all":
        return data.classes * validation_count(int(spc), fraction)
    if data.per_class is not None:
        return sum(validation_count(n, fraction) for n in data.per_class)
    return round(fraction * data.pool)


def tune_budget(tune: dict, config: dict) -> tuple[dict | None, str]:
    """The trials one (dataset, method, spc) trains under the config's `tune:` block: {runs (trial cells),
    epochs (of a full trial), epochs_total (every trial's epochs: successive halving trains fewer),
    validation_fraction}, and a note saying how they were counted."""
    from benchmark.tuning import halving_epochs, points

    n = len(points(tune["space"]))
    runs = len(config["splits"]) * len(tune["seeds"])
    epochs = tune.get("epochs") or config["train"]["epochs"]
    if tune["strategy"] == "halving":
        total, note = halving_epochs(n, runs, epochs, tune["halving"]), "successive halving: rungs counted exactly"
    else:
        total, note = n * runs * epochs, "grid: every point x run trained to its last epoch"
    return {"runs": n * runs, "epochs": epochs, "epochs_total": total,
            "validation_fraction": tune["validation_fraction"]}, f"tuning ({note})"


@dataclass
class Estimate:
    gpu: str
    peak_tflops: float
    fraction: float
    gpus: int
    lines: list[Line]
    tune_lines: list[Line]
    tune_note: str
    wall_s: float
    tune_wall_s: float
    precision: str = "bf16"

    def gpu_hours(self, lines: list[Line]) -> float:
        return sum(line.cells * line.seconds for line in lines) / 3600.0


def makespan(jobs: list[float], gpus: int) -> float:
    """Wall time of independent jobs on `gpus` GPUs: longest first, each on the GPU that is free first."""
    free = [0.0] * max(1, gpus)
    for seconds in sorted(jobs, reverse=True):
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def estimate(config: dict, gpu: str, gpus: int = 1, fraction: float | None = None, tune: dict | None = None,
             root: Path = Path(".")) -> Estimate:
    """The cost of every cell of `config` (validated) and of its tuning trials on `gpus` GPUs named `gpu`."""
    fraction = PEAK_FRACTION if fraction is None else fraction
    name, peak = gpu_peak(gpu)
    precision = resolved_precision(config["precision"], "cuda")
    grid = Grid(config)
    shapes = {dataset: data_shape(dataset, root) for dataset in config["datasets"]}
    budget, tune_note = tune_budget(tune, config) if tune is not None else (None, "")
    lines, tune_lines, seconds_of = [], [], {}
    for c in grid.configurations:
        data, train = shapes[c.dataset], c.settings["train"]
        side = int(c.settings["augment"].get("crop") or data.side)
        flops = model_flops(c.settings["model"], data.channels, side, data.classes)
        case = measured(gpu, c.settings["model"], [data.channels, side, side], precision, root)
        if case is not None:
            rate = {"images_per_s": case["ours_images_per_s"]}
            source = f"measured {case['ours_images_per_s']:,.0f} img/s ({case['file']})"
        else:
            rate = {"flops_per_s": fraction * peak * 1e12}
            source = f"peak x {fraction:g}"
        note = "" if c.settings["method_target"].startswith("benchmark.losses.") else \
            "the method's own per-step work is not counted"
        epoch_steps = steps(train, data, c.spc)
        per_epoch = epoch_steps * train["batch_size"]
        val = validation_images(c.spc, train["validation_fraction"], data)
        train_images, eval_images = train["epochs"] * per_epoch, data.test + train["epochs"] * val
        cells = len(grid.runs)
        line = Line(c.dataset, c.method, str(c.spc), cells, f"{data.channels}x{side}", flops[1] / 1e9,
                    flops[0] / 1e9, train_images, eval_images,
                    cell_seconds(train_images, eval_images, flops, rate, train["epochs"] * epoch_steps), source, note)
        lines.append(line)
        seconds_of[c.folder] = line.seconds
        if budget is not None:  # one line per (dataset, method, spc): its trials as `runs` cells of average epochs
            epochs = budget["epochs_total"] / budget["runs"]
            t_train = epochs * per_epoch
            t_eval = epochs * validation_images(c.spc, budget["validation_fraction"], data)
            tune_lines.append(Line(c.dataset, c.method, str(c.spc), budget["runs"], line.input,
                                   line.gflop_train, line.gflop_eval, t_train, t_eval,
                                   cell_seconds(t_train, t_eval, flops, rate, epochs * epoch_steps), source, note))
    wall = makespan([seconds_of[p.configuration.folder] * len(p.runs) for p in grid.packs
                     if p.configuration.folder in seconds_of], gpus)  # the cells; trials are counted below
    tune_wall = makespan([t.seconds for t in tune_lines for _ in range(t.cells)], gpus)
    return Estimate(name, peak, fraction, gpus, lines, tune_lines, tune_note, wall, tune_wall, precision)


def _hours(seconds: float) -> str:
    from benchmark.status import duration

    return duration(seconds)


def _gpu_time(hours: float) -> str:
    return f"{hours:,.1f} GPU-hours" if hours >= 0.1 else f"{_hours(hours * 3600)} of GPU time"


def render(grid: str, result: Estimate) -> str:
    """The estimate as a person reads it: one line per (dataset, method, spc), per dataset, the total."""
    width = max([6, *(len(x.method) for x in result.lines)])
    head = (f"{'dataset':<10} {'method':<{width}} {'spc':>4} {'cells':>5} {'input':>6} {'GFLOP/img':>9} "
            f"{'images/cell':>12} {'PFLOP/cell':>10} {'GPU time/cell':>13}  source")

    def table(lines: list[Line]) -> list[str]:
        rows = [head]
        for x in lines:
            rows.append(f"{x.dataset:<10} {x.method:<{width}} {x.spc:>4} {x.cells:>5} {x.input:>6} "
                        f"{x.gflop_train:>9.3g} {x.train_images:>12,} {x.pflop:>10.3g} {_hours(x.seconds):>13}  "
                        f"{x.source}"
                        + (f" ({x.note})" if x.note else ""))
        return rows

    gpus = f"{result.gpus} GPU" + ("s" if result.gpus > 1 else "")
    rate = f"{result.fraction:g} x {result.peak_tflops:g} = {result.fraction * result.peak_tflops:.4g} TFLOP/s"
    out = [f"grid {grid} on {result.gpu} ({result.peak_tflops:g} TFLOP/s dense bf16), {gpus}; where nothing was "
           f"measured, a cell computes at {rate}"]
    if result.precision != "bf16":
        out.append(f"(the grid computes in {result.precision}: the bf16 peak overstates its speed; measure it)")
    out.append("")
    out += table(result.lines)
    out.append("")
    datasets = list(dict.fromkeys(x.dataset for x in result.lines))
    for dataset in datasets:
        mine = [x for x in result.lines if x.dataset == dataset]
        out.append(f"{dataset}: {sum(x.cells for x in mine)} cells, {_gpu_time(result.gpu_hours(mine))}")
    total = result.gpu_hours(result.lines)
    out.append(f"total: {sum(x.cells for x in result.lines)} cells, {_gpu_time(total)}; wall time on {gpus}: "
               f"{_hours(result.wall_s)} (packs longest first, one job per GPU)")
    if result.tune_note:
        out += ["", result.tune_note]
    if result.tune_lines:
        trials = result.gpu_hours(result.tune_lines)
        out += ["", "tuning stage (the config's tune: block; 'cells' = trials x seeds per row):"]
        out += table(result.tune_lines)
        out.append(f"tuning: {sum(x.cells for x in result.tune_lines)} trial runs, {_gpu_time(trials)}; wall time "
                   f"on {gpus}: {_hours(result.tune_wall_s)} (an upper bound for successive halving)")
        out.append(f"tuning + grid: {_gpu_time(trials + total)}")
    out += ["", f"peak x f: every FLOP at f of the peak, training steps at least {STEP_FLOOR_S * 1e3:g} ms each; "
                "measured: the speed harness's images per second (results/perf)",
            "not counted: job start-up (about 2 s per job), data preparation, early stopping, a method's work "
            "beyond one forward and backward per image"]
    return "\n".join(out) + "\n"


def main(paths: list[str], base: Path | None, gpu: str, gpus: int, fraction: float | None) -> None:
    if gpus < 1:
        raise EstimateError(f"--gpus {gpus}: give at least 1")
    if fraction is not None and not 0 < fraction <= 1:
        raise EstimateError(f"--peak-fraction {fraction}: give a fraction in (0, 1]")
    config = load_config(*paths, base=base)
    result = estimate(config, gpu, gpus, fraction, config.get("tune"))
    print(render(config["grid"], result), end="")
