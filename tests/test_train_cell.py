"""train_cell end to end on a tiny prepared dataset: semantic embeddings from the embed verb, class
counts of the subset actually trained on, the validation split and best-epoch selection (1-based
epochs), patience, the test-time centre crop, weight decay on kernels only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.cell_runs import CPU, settings_for

import benchmark.train.build as build_module
import benchmark.train.loop as loop_module
import benchmark.train.record as record_module
from benchmark.__main__ import main
from benchmark.data.prepared import write_prepared
from benchmark.hierarchy import Hierarchy
from benchmark.methods.base import model_parameter_groups
from benchmark.train import Cell, train_cell

TRAIN_PER_CLASS = [10, 6, 8, 12]
HIERARCHY = "9 7\n9 8\n7 0\n7 1\n8 2\n8 3\n"  # classes {0, 1} and {2, 3} are siblings


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A prepared 4-class dataset of 12 x 12 RGB images (imbalanced training pool), plus a hierarchy."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.repeat(np.arange(4), TRAIN_PER_CLASS), np.repeat(np.arange(4), 5)])
    images = (rng.random((labels.size, 12, 12, 3)) * 60 + labels[:, None, None, None] * 50).astype(np.uint8)
    n_train = sum(TRAIN_PER_CLASS)
    write_prepared(root / "prepared", "toy", images, labels, np.arange(n_train), np.arange(n_train, labels.size),
                   ["a", "b", "c", "d"], {"class_ids": [10, 11, 12, 13]})
    (root / "toy.txt").write_text(HIERARCHY)
    (root / "toy_ids.txt").write_text(HIERARCHY.replace(" 0\n", " 10\n").replace(" 1\n", " 11\n")
                                      .replace(" 2\n", " 12\n").replace(" 3\n", " 13\n"))
    return root


def _settings(label: str = "softmax_ce", **train) -> dict:
    return settings_for(label, train={"epochs": 3, "batch_size": 8, "steps_per_epoch": 4, "lr": 0.05,
                                      "schedule": {"name": "sgdr", "first_cycle": 1, "cycle_mult": 2}, **train},
                        augment={"crop": 8, "hflip": True, "erase": {"p": 0.5}},
                        digits={"hierarchies": ["toy"]})


def _run(toy: Path, method: str, settings: dict, spc="all", seed: int = 0, **kwargs) -> dict:
    return train_cell(Cell("toy", method, spc, 0, seed), settings, CPU, toy / "prepared", **kwargs)


def test_embed_verb_writes_embeddings_and_sidecar(toy, tmp_path):
    out = tmp_path / "emb" / "toy.npy"
    main(["embed", "--hierarchy", str(toy / "toy_ids.txt"), "--data", str(toy / "prepared"),
          "--class-ids", "metadata", "--out", str(out)])
    emb = np.load(out)
    sim = Hierarchy.from_edges([(9, 7), (9, 8), (7, 0), (7, 1), (8, 2), (8, 3)]).similarity_matrix()
    np.testing.assert_allclose(emb @ emb.T, sim, atol=1e-12)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["shape"] == [4, 4] and meta["class_ids"] == "metadata" and meta["dataset"] == "toy"
    assert len(meta["hierarchy_sha256"]) == 64
    # Leaves 10..13 are not the labels 0..3: a one-line error naming the file, no traceback.
    with pytest.raises(SystemExit, match=r"error: hierarchy .*toy_ids.txt: the leaves must be exactly"):
        main(["embed", "--hierarchy", str(toy / "toy_ids.txt"), "--data", str(toy / "prepared"),
              "--out", str(tmp_path / "bad.npy")])


def test_semantic_cell_with_validation_and_best_epoch(toy, tmp_path, monkeypatch):
    emb_path = tmp_path / "toy.npy"
    main(["embed", "--hierarchy", str(toy / "toy.txt"), "--data", str(toy / "prepared"), "--out", str(emb_path)])
    seen: list[tuple[bool, tuple[int, ...]]] = []
    embeddings = {}
    build_method = build_module.build_method

    def recording_method(settings, context):
        method = build_method(settings, context)
        embeddings["context"] = context.embeddings
        method.model.register_forward_pre_hook(lambda module, inputs: seen.append((module.training,
                                                                                   inputs[0].shape)))
        return method

    monkeypatch.setattr(build_module, "build_method", recording_method)
    settings = {**_settings("cosine_ce_semantic-toy", validation_fraction=0.25, select="best_val"),
                "embeddings": str(emb_path)}
    metrics = _run(toy, "cosine_ce_semantic-toy", settings)

    assert metrics["status"] == "ok"
    # round(0.25 n) per class: 10 -> 3, 6 -> 2, 8 -> 2, 12 -> 3
    assert metrics["validation"]["images"] == 10 and metrics["train_images"] == 36 - 10
    assert len(metrics["curves"]["val_accuracy"]) == 3 == metrics["epochs_run"]
    assert metrics["tested_epoch"] == metrics["validation"]["best_epoch"]
    assert 1 <= metrics["tested_epoch"] <= 3
    best = metrics["validation"]["best_accuracy"]
    assert best == max(metrics["curves"]["val_accuracy"])
    assert metrics["curves"]["val_accuracy"].index(best) + 1 == metrics["tested_epoch"]  # the first best, 1-based
    assert metrics["class_embeddings"]["hierarchy"] == "toy" and metrics["class_embeddings"]["shape"] == [4, 4]
    np.testing.assert_allclose(embeddings["context"].numpy(), np.load(emb_path), atol=1e-6)  # the file's
    # Training sees random 8 x 8 crops; validation and test see the 8 x 8 centre crop, never 12 x 12.
    assert {shape[-2:] for _, shape in seen} == {(8, 8)}
    assert any(training for training, _ in seen) and any(not training for training, _ in seen)
    json.dumps(metrics)  # metrics.json-ready


def test_class_counts_are_those_of_the_training_subset(toy, monkeypatch):
    captured = {}
    build_method = build_module.build_method

    def spy(settings, context):
        captured["class_counts"] = context.class_counts
        return build_method(settings, context)

    monkeypatch.setattr(build_module, "build_method", spy)
    _run(toy, "cb_softmax", _settings("cb_softmax", epochs=1, validation_fraction=0.25), seed=1)
    assert captured["class_counts"] == [10 - 3, 6 - 2, 8 - 2, 12 - 3]  # the pool minus the validation images
    _run(toy, "cb_focal", _settings("cb_focal", epochs=1), spc=5, seed=1)
    assert captured["class_counts"] == [5, 5, 5, 5]


def _scripted_validation(monkeypatch, values: list[float]) -> None:
    """Validation accuracies follow `values`."""
    scripted = iter(values)
    monkeypatch.setattr(loop_module, "validation_accuracy", lambda run: next(scripted))


def test_patience_stops_when_validation_stalls(toy, monkeypatch):
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.6, 0.6, 0.9])
    metrics = _run(toy, "softmax_ce", _settings(epochs=7, validation_fraction=0.25, patience=2))
    assert metrics["curves"]["val_accuracy"] == [0.5, 0.6, 0.6, 0.6]  # two epochs without a better one
    assert metrics["epochs_run"] == 4 and metrics["tested_epoch"] == 4  # select: last; epochs 1-based
    assert metrics["validation"]["best_epoch"] == 2 and metrics["validation"]["best_accuracy"] == 0.6
    assert metrics["validation"]["final_accuracy"] == 0.6


def test_best_val_tests_the_best_epochs_weights(toy, monkeypatch):
    _scripted_validation(monkeypatch, [0.5, 0.9, 0.1])
    states, tested = [], []

    def keep(run, progress, metrics):  # on_epoch: the weights after each epoch
        states.append({k: v.clone() for k, v in run.evaluated.state_dict().items()})

    predict_images = record_module.predict_images

    def test_time(run, idx):
        tested.append({k: v.clone() for k, v in run.evaluated.state_dict().items()})
        return predict_images(run, idx)

    monkeypatch.setattr(record_module, "predict_images", test_time)
    metrics = _run(toy, "cosine_ce", _settings("cosine_ce", epochs=3, validation_fraction=0.25, select="best_val"),
                   on_epoch=keep)
    assert metrics["tested_epoch"] == 2 and metrics["validation"]["best_epoch"] == 2
    assert metrics["validation"]["final_accuracy"] == 0.1
    (weights,) = tested
    assert len(states) == 3 and not all(torch.equal(weights[k], states[2][k]) for k in weights)
    assert all(torch.equal(weights[k], states[1][k]) for k in weights)  # epoch 2's, the loss's CE head included
    assert any(k.startswith("loss.head") for k in weights)


def test_weight_decay_on_kernels_only():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    decayed, plain = model_parameter_groups(model, "kernels")
    assert [p.shape for p in decayed["params"]] == [(4, 3, 3, 3), (2, 36)]
    assert "weight_decay" not in decayed  # the optimiser's weight decay
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4  # conv bias, BN weight and bias, linear bias
    (everything,) = model_parameter_groups(model, "all")
    assert len(everything["params"]) == 6 and "weight_decay" not in everything
