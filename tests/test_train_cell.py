"""train_cell end to end on a tiny prepared dataset: semantic embeddings from the embed verb, class
counts of the subset actually trained on, the validation split and best-epoch selection, the
test-time centre crop, weight decay on kernels only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark.train as train_module
from benchmark.__main__ import main
from benchmark.data.prepared import write_prepared
from benchmark.hierarchy import Hierarchy
from benchmark.train import Cell, model_parameter_groups, train_cell

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


def _settings(**train) -> dict:
    return {
        "model": "small_cnn",
        "augment": {"crop": 8, "hflip": True, "erase": {"p": 0.5}},
        "train": {"epochs": 3, "batch_size": 8, "steps_per_epoch": 4, "lr": 0.05, "grad_clip_norm": 10.0,
                  "optimizer": {"momentum": 0.9, "weight_decay": 5e-4},
                  "schedule": {"name": "sgdr", "first_cycle": 1, "cycle_mult": 2, "min_lr": 1e-6}, **train},
        "loss": {},
        "device": "cpu",
        "eval_batch_size": 16,
    }


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
    build_model = train_module.build_model

    def recording_model(*args, **kwargs):
        model = build_model(*args, **kwargs)
        model.register_forward_pre_hook(lambda module, inputs: seen.append((module.training, inputs[0].shape)))
        return model

    monkeypatch.setattr(train_module, "build_model", recording_model)
    settings = {**_settings(validation_fraction=0.25, select="best_val"), "hierarchy": "toy",
                "embeddings": str(emb_path)}
    metrics = train_cell(Cell("toy", "cosine_ce_semantic-toy", "all", 0), settings, toy / "prepared")

    assert metrics["status"] == "ok" and 0 <= metrics["test_accuracy"] <= 1
    # round(0.25 n) per class: 10 -> 3, 6 -> 2, 8 -> 2, 12 -> 3
    assert metrics["validation"]["images"] == 10 and metrics["train_images"] == 36 - 10
    assert len(metrics["curves"]["val_accuracy"]) == 3
    assert metrics["tested_epoch"] == metrics["validation"]["best_epoch"]
    assert metrics["validation"]["best_accuracy"] == max(metrics["curves"]["val_accuracy"])
    assert metrics["class_embeddings"]["hierarchy"] == "toy" and metrics["class_embeddings"]["shape"] == [4, 4]
    # Training sees random 8 x 8 crops; validation and test see the 8 x 8 centre crop, never 12 x 12.
    assert {shape[-2:] for _, shape in seen} == {(8, 8)}
    assert any(training for training, _ in seen) and any(not training for training, _ in seen)
    json.dumps(metrics)  # metrics.json-ready


def test_class_counts_are_those_of_the_training_subset(toy, monkeypatch):
    captured = {}
    build_loss = train_module.build_loss

    def spy(name, **kwargs):
        captured.update(kwargs)
        return build_loss(name, **kwargs)

    monkeypatch.setattr(train_module, "build_loss", spy)
    train_cell(Cell("toy", "cb_softmax", "all", 1), _settings(epochs=1, validation_fraction=0.25), toy / "prepared")
    assert captured["class_counts"] == [10 - 3, 6 - 2, 8 - 2, 12 - 3]  # the pool minus the validation images
    train_cell(Cell("toy", "cb_focal", 5, 1), _settings(epochs=1), toy / "prepared")
    assert captured["class_counts"] == [5, 5, 5, 5]


def _scripted_validation(monkeypatch, values: list[float]) -> None:
    """Validation accuracies follow `values` (the validation split has 10 images; the test set 20)."""
    scripted = iter(values)
    real = train_module.accuracy
    monkeypatch.setattr(train_module, "accuracy", lambda pred, target: next(scripted) if len(target) == 10
                        else real(pred, target))


def test_patience_stops_when_validation_stalls(toy, monkeypatch):
    _scripted_validation(monkeypatch, [0.5, 0.6, 0.6, 0.6, 0.9])
    metrics = train_cell(Cell("toy", "softmax_ce", "all", 0),
                         _settings(epochs=7, validation_fraction=0.25, patience=2), toy / "prepared")
    assert metrics["curves"]["val_accuracy"] == [0.5, 0.6, 0.6, 0.6]  # two epochs without a better one
    assert metrics["epochs_run"] == 4 and metrics["tested_epoch"] == 3  # select: last
    assert metrics["validation"]["best_epoch"] == 1


def test_best_val_restores_the_best_epoch(toy, monkeypatch):
    _scripted_validation(monkeypatch, [0.5, 0.9, 0.1])
    settings = _settings(epochs=3, validation_fraction=0.25, select="best_val")
    restored = []
    load = torch.nn.Module.load_state_dict

    def recording_load(self, state, *args, **kwargs):
        restored.append(type(self).__name__)
        return load(self, state, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "load_state_dict", recording_load)
    metrics = train_cell(Cell("toy", "cosine_ce", "all", 0), settings, toy / "prepared")
    assert metrics["tested_epoch"] == 1 and metrics["validation"]["final_accuracy"] == 0.1
    assert restored == ["SmallCNN", "CosineCrossEntropyLoss"]  # the model and the loss's CE head


def test_weight_decay_on_kernels_only():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    decayed, plain = model_parameter_groups(model, {"weight_decay_on": "kernels"})
    assert [p.shape for p in decayed["params"]] == [(4, 3, 3, 3), (2, 36)]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 4  # conv bias, BN weight and bias, linear bias
    (everything,) = model_parameter_groups(model, {"weight_decay": 1e-4})
    assert len(everything["params"]) == 6 and "weight_decay" not in everything
