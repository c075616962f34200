"""Grid configuration: the default validates into 75 cells; every mistake is a one-line ConfigError."""

from __future__ import annotations

import copy
import re

import pytest

from benchmark.config import (
    REPO_ROOT,
    ConfigError,
    load_config,
    table_rows,
    train_settings,
    validate,
)
from benchmark.grid import KEY_LENGTH, Grid, cell_settings, parse_runs, runs_name, settings_key
from benchmark.registry import METHODS, SEMANTIC, split_label

CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"


@pytest.fixture(scope="module")
def default_config() -> dict:
    return load_config(CONFIG_PATH)


@pytest.fixture
def config(default_config) -> dict:
    """The default config without its `selected` file: the rates set in it (tests/test_selected.py: the file)."""
    config = copy.deepcopy(default_config)
    del config["selected"]
    return config


def test_default_config_validates_into_75_cells_in_25_packs(default_config):
    grid = Grid(default_config)
    cells = [(c.dataset, c.method, c.spc, split, seed) for c, split, seed in grid.cells()]
    assert len(cells) == len(set(cells)) == 75
    assert {c[1] for c in cells} == {"softmax_ce", "label_smoothing", "mse", "cosine", "cosine_ce"}
    assert {c[2] for c in cells} == {5, 10, 20, 50, "all"}
    assert {(c[3], c[4]) for c in cells} == {(0, 0), (0, 1), (0, 2)}  # splits default to [0]
    assert len(grid.packs) == 25 and all(p.runs == ((0, 0), (0, 1), (0, 2)) for p in grid.packs)  # seeds_per_job 3
    cosine = next(c for c in grid.configurations if (c.method, c.spc) == ("cosine", 5))
    assert re.fullmatch(f"[0-9a-f]{{{KEY_LENGTH}}}", cosine.key)
    assert cosine.record(0, 2) == f"results/cells/digits/cosine/spc5/{cosine.key}/split0/seed2/metrics.json"
    pack = next(p for p in grid.packs if p.configuration is cosine)
    assert pack.marker == f"results/cells/digits/cosine/spc5/{cosine.key}/split0_seed0-1-2.pack"
    assert pack.records == [cosine.record(0, s) for s in (0, 1, 2)]
    # a key per distinct settings (the selected rates differ by method and size)
    confs = grid.configurations
    assert all((a.key == b.key) == (a.settings == b.settings) for a in confs for b in confs)
    assert len({c.key for c in confs}) > 5


def test_validate_fills_the_schema_defaults_once(config):
    raw = {"grid": "g", "datasets": ["digits"], "methods": ["cosine_ce"], "samples_per_class": [5], "seeds": [0],
           "train": {"lr": 0.1}, "dataset_settings": {"digits": {"model": "small_cnn"}}}
    filled = validate(copy.deepcopy(raw))
    assert filled["splits"] == [0] and filled["device"] == "auto" and filled["seeds_per_job"] == 1
    assert filled["train"]["epochs"] == 10 and filled["train"]["schedule"]["name"] == "cosine"
    assert filled["method_settings"]["cosine_ce"] == {"ce_weight": 0.1, "head_weight_decay": 5e-4}
    assert filled["dataset_settings"]["digits"]["augment"] == {"hflip": False, "max_shift": 0, "shift_fill": "zero"}
    assert "train" not in filled["dataset_settings"]["digits"]  # a dataset's train block gets no defaults
    assert validate(copy.deepcopy(filled)) == filled  # idempotent
    written = {**copy.deepcopy(raw), "train": {"lr": 0.1, "epochs": 3}}
    assert validate(written)["train"]["epochs"] == 3  # a written value is kept
    before = copy.deepcopy(config)
    assert validate(config) == before  # the loaded default config is already complete


def test_train_settings_resolve_per_method_lr_and_merge_defaults(default_config):
    train = train_settings(default_config, "digits", "cosine")
    assert train["lr"] == 0.5
    assert train_settings(default_config, "digits", "mse")["lr"] == 0.01
    assert train["epochs"] == 10 and train["batch_size"] == 64
    assert train["optimizer"] == {"momentum": 0.9, "weight_decay": 5e-4, "weight_decay_on": "all", "nesterov": False}
    settings = cell_settings(default_config, "digits", "cosine_ce")
    assert settings["method"] == {"ce_weight": 0.1, "head_weight_decay": 5e-4}
    assert settings["method_target"] == METHODS["cosine_ce"]
    assert settings["model"] == "small_cnn" and settings["model_target"] == "benchmark.models.small_cnn:SmallCNN"
    assert settings["augment"] == {"hflip": False, "max_shift": 1, "shift_fill": "zero"}
    assert cell_settings(default_config, "digits", "mse")["method"] == {}
    assert "recipe_target" not in settings and "extra_targets" not in settings


def test_settings_key_follows_every_result_setting_and_nothing_else(config):
    def keys(changed: dict) -> dict:
        return {c.method: c.key for c in Grid(validate(changed)).configurations}

    base = keys(copy.deepcopy(config))
    lr = copy.deepcopy(config)
    lr["dataset_settings"]["digits"]["train"]["lr"]["cosine"] = 0.25
    changed = keys(lr)
    assert changed["cosine"] != base["cosine"]
    assert {m: k for m, k in changed.items() if m != "cosine"} == {m: k for m, k in base.items() if m != "cosine"}
    epochs = copy.deepcopy(config)
    epochs["train"]["epochs"] = 11
    assert all(k != base[m] for m, k in keys(epochs).items())
    precision = copy.deepcopy(config)
    precision["precision"] = "bf16" if cell_settings(config, "digits", "mse")["precision"] == "fp32" else "fp32"
    assert all(k != base[m] for m, k in keys(precision).items())
    operational = copy.deepcopy(config)
    operational.update(threads=4, cells_per_gpu=3, seeds_per_job=1, eval_batch_size=7, tracking=False,
                       seeds=[5, 6], splits=[0, 1], samples_per_class=[5])
    assert keys(operational) == base  # how and which runs train: not what a cell's result depends on
    assert settings_key({"a": 1, "b": [1, 2]}) == settings_key({"b": [1, 2], "a": 1})


def test_pack_names_round_trip(config):
    assert runs_name([(0, 0), (0, 1), (0, 2)]) == "split0_seed0-1-2"
    assert runs_name([(0, 2), (1, 0), (1, 1)]) == "split0_seed2+split1_seed0-1"
    assert parse_runs("split0_seed2+split1_seed0-1") == [(0, 2), (1, 0), (1, 1)]
    config.update(splits=[0, 1], seeds=[0, 1, 2], seeds_per_job=2)
    packs = [p for p in Grid(validate(config)).packs if (p.configuration.method, p.configuration.spc) == ("mse", 5)]
    assert [p.name for p in packs] == ["split0_seed0-1", "split0_seed2+split1_seed0", "split1_seed1-2"]
    assert all(parse_runs(p.name) == list(p.runs) for p in packs)


def test_lr_default_used_when_method_missing_from_map(config):
    config["dataset_settings"]["digits"]["train"]["lr"] = {"cosine": 0.3, "default": 0.02}
    validate(config)
    assert train_settings(config, "digits", "cosine")["lr"] == 0.3
    assert train_settings(config, "digits", "mse")["lr"] == 0.02


def test_top_level_lr_map_without_default_is_fine_when_dataset_overrides(config):
    config["train"]["lr"] = {"softmax_ce": 0.1}
    validate(config)  # digits' own lr map names every method


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
    ("unknown-method", _set("methods", ["cosine", "triplet"]), ["methods[1]", "'triplet'", "cosine_ce"]),
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
    ("empty-methods", _set("methods", []), ["'methods'", "[]"]),
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
    ("lr-map-without-method-or-default", _set("dataset_settings.digits.train.lr", {"softmax_ce": 0.1}),
     ["train.lr", "'label_smoothing'", "default"]),
    ("top-lr-map-without-method-or-default",
     _both(_drop("dataset_settings.digits.train.lr"), _set("train.lr", {"cosine": 0.1})),
     ["train.lr", "'softmax_ce'", "default"]),
    ("lr-negative", _set("dataset_settings.digits.train.lr", -0.1),
     ["dataset_settings.digits.train.lr", "-0.1"]),
    ("lr-map-negative", _set("train.lr", {"default": -1}), ["train.lr", "-1"]),
    ("bad-method-settings-key", _set("method_settings.cosine_ce.lambda", 0.1),
     ["method_settings.cosine_ce", "'lambda'", "ce_weight"]),
    ("method-settings-key-of-other-method", _set("method_settings.cosine", {"epsilon": 0.1}),
     ["method_settings.cosine", "'epsilon'"]),
    ("method-settings-unknown-method", _set("method_settings.triplet", {}), ["method_settings", "'triplet'"]),
    ("method-settings-bad-value", _set("method_settings.label_smoothing.epsilon", 1.0),
     ["method_settings.label_smoothing.epsilon", "1.0"]),
    ("bad-grid-name", _set("grid", "my grid"), ["'grid'", "'my grid'"]),
    ("semantic-method-without-hierarchy", _set("methods", ["cosine", "cosine_semantic"]),
     ["dataset_settings.digits", "'cosine_semantic'", "hierarchies"]),
    ("dataset-methods-outside-grid", _set("dataset_settings.digits.methods", ["softmax_ce", "focal"]),
     ["dataset_settings.digits.methods", "'focal'", "top-level"]),
    ("dataset-spc-outside-grid", _set("dataset_settings.digits.samples_per_class", [5, 7]),
     ["dataset_settings.digits.samples_per_class", "7", "top-level"]),
    ("dataset-methods-unknown", _set("dataset_settings.digits.methods", ["triplet"]),
     ["dataset_settings.digits.methods[0]", "'triplet'"]),
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
    ("baseline-not-in-grid", _set("baseline", "focal"), ["'baseline'", "'focal'", "cosine"]),
    ("empty-splits", _set("splits", []), ["'splits'", "[]"]),
    ("split-negative", _set("splits", [0, -1]), ["splits[1]", "-1"]),
    ("tracking-string", _set("tracking", "yes"), ["'tracking'", "'yes'"]),
    ("recipe-unknown-part", _set("train.recipe", {"cutout": 1}), ["train.recipe", "'cutout'", "mixup"]),
    ("recipe-ema-decay-one", _set("train.recipe", {"ema": {"decay": 1.0}}), ["train.recipe.ema.decay", "1.0"]),
    ("select-best-val-without-validation", _set("train.select", "best_val"),
     ["train.select", "'best_val'", "validation_fraction"]),
    ("patience-without-validation", _set("train.patience", 3), ["train.patience", "3", "validation_fraction"]),
    ("validation-fraction-holds-out-nothing", _both(_set("samples_per_class", [2]),
                                                    _set("train.validation_fraction", 0.1)),
     ["train.validation_fraction", "0.1", "2 training images"]),
    ("validation-with-one-image-classes", _both(_set("samples_per_class", [1]),
                                                _set("train.validation_fraction", 0.5)),
     ["train.validation_fraction", "one image"]),
    ("lr-map-typo", _set("dataset_settings.digits.train.lr", {"cosin": 0.5, "default": 0.1}),
     ["train.lr", "'cosin'", "is not a method"]),
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


def test_per_dataset_methods_spc_and_hierarchies_shape_the_cells(config):
    config["methods"] = ["softmax_ce", "cosine", "cosine_semantic", "cosine_ce_semantic"]
    ds = config["dataset_settings"]["digits"]
    ds["hierarchies"] = ["flat", "deep"]
    ds["methods"] = ["cosine_semantic", "softmax_ce"]       # order follows the top-level list
    ds["samples_per_class"] = ["all", 5]
    ds["train"]["lr"] = {"softmax_ce": 0.05, "cosine_semantic": 0.3, "cosine_semantic-deep": 0.7}
    validate(config)
    grid = Grid(config)
    assert [c.method for c in grid.configurations[::2]] == ["softmax_ce", "cosine_semantic-flat",
                                                             "cosine_semantic-deep"]
    assert {c.spc for c in grid.configurations} == {5, "all"}
    assert len(grid.cells()) == 3 * 2 * 3
    assert table_rows(config) == ["softmax_ce", "cosine_semantic-flat", "cosine_semantic-deep"]
    # lr: by label, then method name, then default
    assert train_settings(config, "digits", "cosine_semantic-deep")["lr"] == 0.7
    assert train_settings(config, "digits", "cosine_semantic-flat")["lr"] == 0.3
    settings = cell_settings(config, "digits", "cosine_semantic-flat")
    assert settings["hierarchy"] == "flat"
    assert settings["embeddings"] == "results/embeddings/digits/flat.npy"
    assert settings["extra_targets"] == ["benchmark.hierarchy:load_embeddings"]
    assert "embeddings" not in cell_settings(config, "digits", "softmax_ce")
    flat = next(c for c in grid.configurations if (c.method, c.spc) == ("cosine_semantic-flat", 5))
    assert flat.folder == f"results/cells/digits/cosine_semantic-flat/spc5/{flat.key}"


def test_recipe_cells_name_the_recipe_module(config):
    config["train"]["recipe"] = {"mixup": {"alpha": 1.0}}
    settings = cell_settings(validate(config), "digits", "softmax_ce")
    assert settings["recipe_target"] == "benchmark.recipe.pipeline:Recipe"
    assert settings["extra_targets"] == ["benchmark.recipe.pipeline:Recipe"]
    assert settings["train"]["recipe"]["mixup"]["alpha"] == 1.0 and settings["train"]["recipe"]["ema"]["decay"] == 0


def test_method_names_cannot_be_confused_with_labels():
    """Registered names never contain '-', so '<method>-<hierarchy>' splits one way only."""
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in METHODS)
    assert set(METHODS) >= SEMANTIC
    assert split_label("cosine_ce_semantic-cub_wikispecies") == ("cosine_ce_semantic", "cub_wikispecies")
    assert split_label("cosine_ce") == ("cosine_ce", None)


def test_baseline_defaults_to_softmax_ce_where_the_grid_has_it():
    import yaml

    config = yaml.safe_load(CONFIG_PATH.read_text())  # as written: no baseline key
    assert validate(copy.deepcopy(config))["baseline"] == "softmax_ce"
    without = {**copy.deepcopy(config), "methods": ["cosine", "mse"]}
    assert validate(without)["baseline"] is None  # the default, on a grid without CE: no comparison
    assert validate({**copy.deepcopy(config), "baseline": None})["baseline"] is None
    with pytest.raises(ConfigError, match="'baseline'.*'softmax_ce' is not a method"):
        validate({**copy.deepcopy(config), "methods": ["cosine"], "baseline": "softmax_ce"})
