"""The training protocol, checked on real components: a batch's labels are its images' labels (before and
after augmentation), the optimiser moves every parameter, the validation split is carved out of the
training subset only, the test set is seen once after training and never for selection, and a pack writes
each cell's own result into that cell's folder.

The label checks use a prepared dataset whose images carry their label in their pixels: every pixel of an
image of class c is 20 + 20 c, so after a crop, flip or zero-filled shift the brightest pixel still says c.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.cell_runs import CPU, run_cell, settings_for
from fixtures.configs import minimal_config

import benchmark.train.build as build_module
import benchmark.train.loop as loop_module
import benchmark.train.record as record_module
from benchmark.augment import augment
from benchmark.data.prepared import load_prepared, write_prepared
from benchmark.data.subsets import draw_subset
from benchmark.grid import Grid
from benchmark.packs import run_pack
from benchmark.train import Cell, train_cell
from benchmark.train.build import build_cell
from benchmark.train.data import DeviceData

CLASSES, PER_CLASS, TEST_PER_CLASS = 10, 12, 4
AUGMENT = {"crop": 10, "hflip": True, "max_shift": 2}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """A prepared dataset of 12 x 12 grey images whose every pixel is 20 + 20 * label."""
    root = tmp_path_factory.mktemp("labelled") / "prepared"
    labels = np.tile(np.arange(CLASSES), PER_CLASS + TEST_PER_CLASS)
    images = np.broadcast_to((20 + 20 * labels).astype(np.uint8)[:, None, None, None], (labels.size, 12, 12, 1))
    n_train = CLASSES * PER_CLASS
    write_prepared(root, "labelled", np.ascontiguousarray(images), labels, np.arange(n_train),
                   np.arange(n_train, labels.size), [str(c) for c in range(CLASSES)])
    return root


def decode(x: torch.Tensor, data: DeviceData) -> list[int]:
    """The label each normalised image of `x` carries in its pixels."""
    pixels = x * data.std + data.mean
    return [round((float(img.max()) - 20) / 20) for img in pixels]


def test_every_training_batch_carries_its_images_labels(labelled, monkeypatch):
    """Through the real loop with crops, flips and shifts: what the objective gets is (images, their labels)."""
    checked = []
    build_method = build_module.build_method

    def watched(settings, context):
        method = build_method(settings, context)
        hook = method.train_batch

        def train_batch(x, y, epoch):
            data = DeviceData(load_prepared(labelled), x.device)
            assert decode(x, data) == y.tolist()
            assert x.shape[-2:] == (10, 10)
            checked.append(len(y))
            return hook(x, y, epoch)

        method.train_batch = train_batch
        return method

    monkeypatch.setattr(build_module, "build_method", watched)
    settings = settings_for("softmax_ce", train={"epochs": 2, "steps_per_epoch": 3, "batch_size": 16},
                            augment=AUGMENT)
    train_cell(Cell("labelled", "softmax_ce", 6, 0, 0), settings, CPU, labelled)
    assert checked == [16] * 6


def test_evaluation_batches_keep_the_order_of_their_images(labelled):
    prepared = load_prepared(labelled)
    data = DeviceData(prepared, torch.device("cpu"))
    settings = settings_for("softmax_ce", augment=AUGMENT)["augment"]
    idx = np.random.default_rng(0).permutation(prepared.test_idx)
    seen = [label for x in data.eval_batches(idx, settings, 7, torch.contiguous_format) for label in decode(x, data)]
    assert seen == prepared.labels[idx].tolist()


def test_augmentation_moves_no_image_to_another_place_in_the_batch():
    """Image i is i + 1 everywhere: after crop, flip and shift each output holds only 0 (fill) and i + 1."""
    n = 64
    x = (torch.arange(1, n + 1, dtype=torch.uint8)[:, None, None, None]).expand(n, 3, 16, 16).contiguous()
    settings = settings_for("softmax_ce", augment={"crop": 12, "hflip": True, "max_shift": 3})["augment"]
    out = augment(x, settings, torch.Generator().manual_seed(0))
    assert out.shape == (n, 3, 12, 12)
    for i in range(n):
        assert set(out[i].unique().tolist()) <= {0.0, float(i + 1)} and out[i].max() == i + 1, i


def test_training_moves_every_parameter_each_epoch(digits, monkeypatch):
    built = {}
    build_method = build_module.build_method

    def keep(settings, context):
        built["method"] = build_method(settings, context)
        built["initial"] = {k: v.clone() for k, v in built["method"].named_parameters()}
        return built["method"]

    states = []
    monkeypatch.setattr(build_module, "build_method", keep)
    settings = settings_for("cosine_ce", train={"epochs": 2, "steps_per_epoch": 3, "batch_size": 16})
    run_cell(digits, settings, "cosine_ce", spc=5,
             on_epoch=lambda run, progress, metrics: states.append(
                 {k: v.detach().clone() for k, v in run.method.named_parameters()}))
    for before, after in zip([built["initial"], states[0]], states, strict=True):
        assert [k for k in before if torch.equal(before[k], after[k])] == []  # the CE head's included


# --------------------------------------------------------------------------- splits and the test set

@pytest.mark.parametrize("spc", [5, "all"])
def test_validation_is_carved_out_of_the_training_subset(digits, spc):
    settings = settings_for("softmax_ce", train={"validation_fraction": 0.2, "select": "best_val"})
    run = build_cell(Cell("digits", "softmax_ce", spc, 1, 0), settings, CPU, digits)
    prepared = run.prepared
    train, val, test = set(run.train_idx.tolist()), set(run.val_idx.tolist()), set(prepared.test_idx.tolist())
    assert not train & val and not train & test and not val & test
    subset = draw_subset(prepared.labels, prepared.train_idx, spc, "digits", 1)
    assert sorted(train | val) == sorted(subset.tolist())  # the whole subset, nothing else
    per_class = np.bincount(prepared.labels[run.val_idx], minlength=10)
    expected = 1 if spc == 5 else None  # round(0.2 * 5)
    assert (per_class == expected).all() if expected else (per_class >= 24).all()
    other_seed = build_cell(Cell("digits", "softmax_ce", spc, 1, 7), settings, CPU, digits)
    assert np.array_equal(other_seed.val_idx, run.val_idx)  # seeds vary the init, not the data
    if spc == 5:
        other_split = build_cell(Cell("digits", "softmax_ce", spc, 2, 0), settings, CPU, digits)
        assert not np.array_equal(other_split.train_idx, run.train_idx)  # splits draw other subsets


def test_the_test_set_is_seen_once_after_training_and_never_for_selection(digits, monkeypatch):
    calls = []
    for where, module in (("loop", loop_module), ("record", record_module)):
        real = module.predict_images

        def spy(run, idx, real=real, where=where):
            calls.append((where, np.asarray(idx).copy(), run))
            return real(run, idx)

        monkeypatch.setattr(module, "predict_images", spy)
    settings = settings_for("softmax_ce", train={"epochs": 3, "steps_per_epoch": 2, "batch_size": 16,
                                                 "validation_fraction": 0.2, "select": "best_val"})
    result = run_cell(digits, settings, "softmax_ce", spc=10)
    where = [w for w, _, _ in calls]
    assert where == ["loop"] * 3 + ["record"]  # one validation per epoch, then the test, once
    run = calls[0][2]
    for _, idx, _ in calls[:-1]:
        assert np.array_equal(idx, run.val_idx) and not set(idx.tolist()) & set(run.prepared.test_idx.tolist())
    assert np.array_equal(calls[-1][1], run.prepared.test_idx)
    assert result["validation"]["images"] == run.val_idx.size == 20


# --------------------------------------------------------------------------- a pack's records

def test_a_pack_writes_each_cells_own_result_in_its_own_folder(digits, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the pack's folder is relative, as in the workflow
    handler = signal.getsignal(signal.SIGTERM)
    config = minimal_config(seeds=[0, 1], seeds_per_job=2, device="cpu", precision="fp32",
                            train={"lr": 0.05, "epochs": 1, "steps_per_epoch": 3, "batch_size": 16})
    (pack,) = Grid(config).packs
    spec = {**pack.spec(), "data": str(digits)}
    try:
        run_pack(spec, Path(pack.marker), CPU, context={})
    finally:
        signal.signal(signal.SIGTERM, handler)
    marker = json.loads(Path(pack.marker).read_text())
    records = {seed: json.loads(Path(pack.configuration.record(0, seed)).read_text()) for seed in (0, 1)}
    assert [c["record"] for c in marker["cells"]] == pack.records
    for seed, record in records.items():
        assert record["cell"] == pack.configuration.coordinates(0, seed)
        assert record["identity"] == marker["identity"] and record["identity"]["settings"] == pack.configuration.key
        alone = run_cell(digits, pack.configuration.settings, "softmax_ce", spc=5, seed=seed)
        assert record["curves"] == alone["curves"] and record["test_accuracy"] == alone["test_accuracy"]
    assert records[0]["curves"] != records[1]["curves"]  # two seeds, two results
    first = capsys.readouterr().out.splitlines()
    assert [line for line in first if "test accuracy" in line and "kept" not in line] and "kept" not in "".join(first)
    try:  # the same pack again: both records are kept, not retrained, and the console says so
        run_pack(spec, Path(pack.marker), CPU, context={})
    finally:
        signal.signal(signal.SIGTERM, handler)
    lines = [line for line in capsys.readouterr().out.splitlines() if "test accuracy" in line]
    assert len(lines) == 2 and all("epochs kept from an earlier run" in line for line in lines), lines
    assert json.loads(Path(pack.configuration.record(0, 0)).read_text()) == records[0]
