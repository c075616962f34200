"""Grid configuration: the default validates into 75 cells; every mistake is a one-line ConfigError."""

from __future__ import annotations

import copy
import re

import pytest

from benchmark.config import (
    REPO_ROOT,
    ConfigError,
    cell_dir,
    cell_settings,
    cells,
    load_config,
    table_rows,
    train_settings,
    validate,
)

CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"


@pytest.fixture(scope="module")
def default_config() -> dict:
    return load_config(CONFIG_PATH)


@pytest.fixture
def config(default_config) -> dict:
    return copy.deepcopy(default_config)


def test_default_config_validates_into_75_cells(default_config):
    grid = cells(default_config)
    assert len(grid) == 75
    assert len(set(grid)) == 75
    assert {c[0] for c in grid} == {"digits"}
    assert {c[1] for c in grid} == {"softmax_ce", "label_smoothing", "mse", "cosine", "cosine_ce"}
    assert {c[2] for c in grid} == {5, 10, 20, 50, "all"}
    assert {c[3] for c in grid} == {0, 1, 2}
    assert cell_dir("digits", "cosine", 5, 2) == "results/cells/digits/cosine/spc5/seed2"
    assert cell_dir("digits", "mse", "all", 0) == "results/cells/digits/mse/spcall/seed0"


def test_validate_returns_config_unchanged(config):
    before = copy.deepcopy(config)
    assert validate(config) == before


def test_train_settings_resolve_per_loss_lr_and_merge_defaults(default_config):
    train = train_settings(default_config, "digits", "cosine")
    assert train["lr"] == 0.5
    assert train_settings(default_config, "digits", "mse")["lr"] == 0.01
    assert train["epochs"] == 10 and train["batch_size"] == 64  # from the defaults
    assert train["optimizer"] == {"momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}
    settings = cell_settings(default_config, "digits", "cosine_ce")
    assert settings["loss"] == {"ce_weight": 0.1, "head_weight_decay": 5e-4}
    assert settings["model"] == "small_cnn"
    assert settings["augment"] == {"hflip": False, "max_shift": 1}
    assert cell_settings(default_config, "digits", "mse")["loss"] == {}


def test_lr_default_used_when_loss_missing_from_map(config):
    config["dataset_settings"]["digits"]["train"]["lr"] = {"cosine": 0.3, "default": 0.02}
    validate(config)
    assert train_settings(config, "digits", "cosine")["lr"] == 0.3
    assert train_settings(config, "digits", "mse")["lr"] == 0.02


def test_top_level_lr_map_without_default_is_fine_when_dataset_overrides(config):
    config["train"]["lr"] = {"softmax_ce": 0.1}
    validate(config)  # digits' own lr map names every loss


def test_largest_allowed_samples_per_class(config):
    config["samples_per_class"] = [124, "all"]
    validate(config)


def _set(path: str, value):
    """A mutation setting the dotted `path` (creating nothing: every parent must exist)."""
    def mutate(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


def _drop(path: str):
    def mutate(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        del node[last]
    return mutate


def _both(*mutations):
    def mutate(config: dict) -> None:
        for m in mutations:
            m(config)
    return mutate


# (id, mutation, strings the one-line message must contain)
ERROR_CASES = [
    ("unknown-dataset", _set("datasets", ["digits", "mnist"]), ["datasets[1]", "'mnist'", "digits"]),
    ("unknown-loss", _set("losses", ["cosine", "triplet"]), ["losses[1]", "'triplet'", "cosine_ce"]),
    ("unknown-top-level-key", _set("learning_rate", 0.1), ["'learning_rate'", "top level"]),
    ("unknown-nested-key", _set("train.optimizer.foo", 1), ["train.optimizer", "'foo'", "momentum"]),
    ("unknown-dataset-train-key", _set("dataset_settings.digits.train.epoch", 3),
     ["dataset_settings.digits.train", "'epoch'"]),
    ("unknown-augment-key", _set("dataset_settings.digits.augment.rotate", 10),
     ["dataset_settings.digits.augment", "'rotate'"]),
    ("spc-zero", _set("samples_per_class", [5, 0]), ["samples_per_class[1]", "0"]),
    ("spc-negative", _set("samples_per_class", [-5]), ["samples_per_class[0]", "-5"]),
    ("spc-string", _set("samples_per_class", ["five"]), ["samples_per_class[0]", "'five'", "'all'"]),
    ("spc-too-large", _set("samples_per_class", [5, 200]), ["samples_per_class", "200", "digits", "124"]),
    ("spc-just-too-large", _set("samples_per_class", [125]), ["samples_per_class", "125", "124"]),
    ("spc-duplicate", _set("samples_per_class", [5, 5]), ["samples_per_class"]),
    ("empty-datasets", _set("datasets", []), ["'datasets'", "[]"]),
    ("empty-losses", _set("losses", []), ["'losses'", "[]"]),
    ("empty-seeds", _set("seeds", []), ["'seeds'", "[]"]),
    ("empty-spc", _set("samples_per_class", []), ["'samples_per_class'", "[]"]),
    ("seeds-string", _set("seeds", "0"), ["'seeds'", "'0'", "array"]),
    ("seed-negative", _set("seeds", [0, -1]), ["seeds[1]", "-1"]),
    ("seed-float", _set("seeds", [0, 1.5]), ["seeds[1]", "1.5"]),
    ("epochs-float", _set("train.epochs", 1.5), ["train.epochs", "1.5", "integer"]),
    ("epochs-zero", _set("train.epochs", 0), ["train.epochs", "0"]),
    ("batch-size-string", _set("train.batch_size", "64"), ["train.batch_size", "'64'"]),
    ("momentum-one", _set("train.optimizer.momentum", 1.0), ["train.optimizer.momentum", "1.0"]),
    ("bad-device", _set("device", "gpu"), ["'device'", "'gpu'", "cuda:N"]),
    ("bad-device-index", _set("device", "cuda:x"), ["'device'", "'cuda:x'"]),
    ("bad-precision", _set("precision", "fp16"), ["'precision'", "'fp16'", "bf16"]),
    ("bad-schedule", _set("train.schedule.name", "step"), ["train.schedule.name", "'step'", "sgdr"]),
    ("bad-model", _set("dataset_settings.digits.model", "resnet9000"),
     ["dataset_settings.digits.model", "'resnet9000'", "small_cnn"]),
    ("missing-dataset-settings", _drop("dataset_settings.digits"), ["dataset_settings", "'digits'"]),
    ("settings-for-unknown-dataset", _set("dataset_settings.mnist", {"model": "small_cnn"}),
     ["dataset_settings", "'mnist'"]),
    ("missing-model", _drop("dataset_settings.digits.model"), ["dataset_settings.digits", "'model'"]),
    ("lr-map-without-loss-or-default", _set("dataset_settings.digits.train.lr", {"softmax_ce": 0.1}),
     ["train.lr", "'label_smoothing'", "default"]),
    ("top-lr-map-without-loss-or-default",
     _both(_drop("dataset_settings.digits.train.lr"), _set("train.lr", {"cosine": 0.1})),
     ["train.lr", "'softmax_ce'", "default"]),
    ("lr-negative", _set("dataset_settings.digits.train.lr", -0.1),
     ["dataset_settings.digits.train.lr", "-0.1"]),
    ("lr-map-negative", _set("train.lr", {"default": -1}), ["train.lr", "-1"]),
    ("bad-loss-settings-key", _set("loss_settings.cosine_ce.lambda", 0.1),
     ["loss_settings.cosine_ce", "'lambda'", "ce_weight"]),
    ("loss-settings-key-of-other-loss", _set("loss_settings.cosine", {"epsilon": 0.1}),
     ["loss_settings.cosine", "'epsilon'"]),
    ("loss-settings-unknown-loss", _set("loss_settings.triplet", {}), ["loss_settings", "'triplet'"]),
    ("loss-settings-bad-value", _set("loss_settings.label_smoothing.epsilon", 1.0),
     ["loss_settings.label_smoothing.epsilon", "1.0"]),
    ("bad-grid-name", _set("grid", "my grid"), ["'grid'", "'my grid'"]),
    ("semantic-loss-without-hierarchy", _set("losses", ["cosine", "cosine_semantic"]),
     ["dataset_settings.digits", "'cosine_semantic'", "hierarchies"]),
    ("dataset-losses-outside-grid", _set("dataset_settings.digits.losses", ["softmax_ce", "focal"]),
     ["dataset_settings.digits.losses", "'focal'", "top-level"]),
    ("dataset-spc-outside-grid", _set("dataset_settings.digits.samples_per_class", [5, 7]),
     ["dataset_settings.digits.samples_per_class", "7", "top-level"]),
    ("dataset-losses-unknown", _set("dataset_settings.digits.losses", ["triplet"]),
     ["dataset_settings.digits.losses[0]", "'triplet'"]),
    ("hierarchy-name-with-dash", _set("dataset_settings.digits.hierarchies", ["a-b"]),
     ["dataset_settings.digits.hierarchies[0]", "'a-b'"]),
    ("bad-class-ids", _set("dataset_settings.digits.class_ids", "names"),
     ["dataset_settings.digits.class_ids", "'names'", "metadata"]),
    ("sgdr-mid-cycle", _set("train.schedule", {"name": "sgdr", "first_cycle": 12, "cycle_mult": 2}),
     ["train.epochs", "10", "SGDR", "12, 36, 84, 180, 372"]),
    ("sgdr-without-first-cycle", _set("train.schedule", {"name": "sgdr"}), ["train.schedule", "first_cycle"]),
    ("bad-weight-decay-on", _set("train.optimizer.weight_decay_on", "convs"),
     ["train.optimizer.weight_decay_on", "'convs'", "kernels"]),
    ("erase-area-reversed", _set("dataset_settings.digits.augment.erase", {"p": 0.5, "area": [0.3, 0.02]}),
     ["dataset_settings.digits.augment.erase.area", "min <= max"]),
    ("erase-without-p", _set("dataset_settings.digits.augment.erase", {"area": [0.02, 0.3]}),
     ["dataset_settings.digits.augment.erase", "'p'"]),
    ("crop-zero", _set("dataset_settings.digits.augment.crop", 0), ["dataset_settings.digits.augment.crop", "0"]),
    ("reference-missing", _set("reference", "config/reference/nope.yaml"),
     ["'reference'", "nope.yaml", "does not exist"]),
    ("paired-baseline-not-in-grid", _set("paired_baseline", "focal"), ["'paired_baseline'", "'focal'", "cosine"]),
    ("missing-required", _drop("seeds"), ["'seeds'", "required"]),
]


@pytest.mark.parametrize("mutate,needles", [pytest.param(m, n, id=i) for i, m, n in ERROR_CASES])
def test_config_errors_are_one_line_and_name_the_key(config, mutate, needles):
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate(config)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith("config error at '"), message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


@pytest.mark.parametrize("mutate", [
    pytest.param(_set("train.epochs", 2.0), id="epochs-2.0"),
    pytest.param(_set("train.batch_size", 64.0), id="batch_size-64.0"),
    pytest.param(_set("samples_per_class", [5.0]), id="spc-5.0"),
    pytest.param(_set("seeds", [0.0]), id="seed-0.0"),
])
def test_whole_floats_are_rejected_where_integers_are_required(config, mutate):
    mutate(config)
    with pytest.raises(ConfigError):
        validate(config)


# --------------------------------------------------------------------------- grid shapes


def test_sgdr_epochs_at_a_cycle_end_validate(config):
    config["train"]["schedule"] = {"name": "sgdr", "first_cycle": 2, "cycle_mult": 2}
    for epochs in (2, 6, 14):
        config["train"]["epochs"] = epochs
        validate(config)


def test_per_dataset_losses_spc_and_hierarchies_shape_the_cells(config):
    config["losses"] = ["softmax_ce", "cosine", "cosine_semantic", "cosine_ce_semantic"]
    ds = config["dataset_settings"]["digits"]
    ds["hierarchies"] = ["flat", "deep"]
    ds["losses"] = ["cosine_semantic", "softmax_ce"]       # order follows the top-level list
    ds["samples_per_class"] = ["all", 5]
    ds["train"]["lr"] = {"softmax_ce": 0.05, "cosine_semantic": 0.3, "cosine_semantic-deep": 0.7}
    validate(config)
    grid = cells(config)
    assert {c[1] for c in grid} == {"softmax_ce", "cosine_semantic-flat", "cosine_semantic-deep"}
    assert {c[2] for c in grid} == {5, "all"}
    assert len(grid) == 3 * 2 * 3
    assert table_rows(config) == ["softmax_ce", "cosine_semantic-flat", "cosine_semantic-deep"]
    # lr: by label, then loss name, then default
    assert train_settings(config, "digits", "cosine_semantic-deep")["lr"] == 0.7
    assert train_settings(config, "digits", "cosine_semantic-flat")["lr"] == 0.3
    settings = cell_settings(config, "digits", "cosine_semantic-flat")
    assert settings["hierarchy"] == "flat"
    assert settings["embeddings"] == "results/embeddings/digits/flat.npy"
    assert "embeddings" not in cell_settings(config, "digits", "softmax_ce")
    assert cell_dir("digits", "cosine_semantic-flat", 5, 0) == "results/cells/digits/cosine_semantic-flat/spc5/seed0"


def test_loss_names_cannot_be_confused_with_labels():
    """Registered names never contain '-', so '<loss>-<hierarchy>' splits one way only."""
    from benchmark.losses import LOSSES, SEMANTIC, split_label

    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in LOSSES)
    assert set(LOSSES) >= SEMANTIC
    assert split_label("cosine_ce_semantic-cub_wikispecies") == ("cosine_ce_semantic", "cub_wikispecies")
    assert split_label("cosine_ce") == ("cosine_ce", None)
