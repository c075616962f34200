"""Grid configuration: validation with one-line errors, cell expansion, per-cell settings.

Imported by the Snakefile, so it stays light (no torch): registries are read as names only.

A cell is (dataset, method label, samples per class, seed). The method label is the registered
method name, except for the semantic methods (losses.SEMANTIC), which run once per class hierarchy the
dataset lists and are labelled "<method>-<hierarchy>" (e.g. cosine_semantic-cub_balanced): method
names never contain '-' and hierarchy names cannot, so a label and a path name one result.

Every default lives in the schema (workflow/schemas/config.schema.yaml); `validate` fills them into
the config, so the code below reads settings without restating a default.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema

from benchmark import yamlfile
from benchmark.reference import ReferenceFileError, load_reference
from benchmark.registry import DATASETS, METHODS, MODELS, SEMANTIC, WITHOUT_MIXING, dataset_module, split_label
from benchmark.schedules import sgdr_epochs
from benchmark.validation import validation_count

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A user's configuration mistake; the message is one line naming the key and the fix."""


def _without_defaults(node):
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


@functools.cache
def _schema() -> dict:
    schema = yamlfile.read(SCHEMA_PATH)
    props, definitions = schema["properties"], schema["definitions"]
    props["datasets"]["items"]["enum"] = sorted(DATASETS)
    definitions["method_list"]["items"]["enum"] = sorted(METHODS)
    definitions["train_override"] = _without_defaults(definitions["train"])
    props["dataset_settings"]["propertyNames"] = {"enum": sorted(DATASETS)}
    props["dataset_settings"]["additionalProperties"]["properties"]["model"]["enum"] = sorted(MODELS)
    return schema


def _fill_defaults(validator_class):
    """A validator class that first sets every missing property that has a default (resolving local $refs).

    The same trick as snakemake.utils.validate(set_default=True): defaults are inserted before the
    properties are validated, so a default object (`{}`) is then filled with its own defaults.
    """
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                while "default" not in sub and "$ref" in sub:
                    sub = _schema()["definitions"][sub["$ref"].rsplit("/", 1)[1]]
                if name not in instance and "default" in sub:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _strict_integer(checker, instance) -> bool:
    """JSON Schema counts 2.0 as an integer; epochs, seeds and sizes must be written as integers."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = _fill_defaults(jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
))


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    where = _where(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        return f"config error at '{where}': {error.instance!r} is not allowed; use {error.schema['description']}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config error at '{where}': {error.instance!r} is unknown; allowed: {allowed}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"config error at '{where}': {error.message}; allowed keys: {allowed}"
    hint = f" ({error.schema['description']})" if "description" in error.schema else ""
    return f"config error at '{where}': {error.message}{hint}"


def _grid_schema(config: dict) -> dict:
    """The schema for one config: its variants are method names too; variants name registered methods."""
    schema = copy.deepcopy(_schema())
    variants = config.get("variants") if isinstance(config.get("variants"), dict) else {}
    schema["definitions"]["method_list"]["items"]["enum"] = sorted({*METHODS, *variants})
    variant = schema["properties"]["variants"]["additionalProperties"]["properties"]
    variant["method"]["enum"] = sorted(METHODS)
    return schema


def base_method(config: dict, name: str) -> str:
    """The registered method of a method name: itself, or the method a variant derives from."""
    variant = config.get("variants", {}).get(name)
    return variant["method"] if variant else name


def method_settings(config: dict, name: str) -> dict:
    """The settings of method `name` (a variant's merged over its method's)."""
    base = base_method(config, name)
    settings = copy.deepcopy(config["method_settings"].get(base, {}))
    variant = config.get("variants", {}).get(name)
    return _merge(settings, variant.get("settings", {})) if variant else settings


def _check_variants(config: dict) -> None:
    """A variant's settings are checked against its method's entry of method_settings, as if written there."""
    registered = _schema()["properties"]["method_settings"]["properties"]
    for name, variant in config["variants"].items():
        if name in METHODS:
            raise ConfigError(f"config error at 'variants.{name}': {name!r} is a registered method; name the "
                              "variant differently")
        entry = registered.get(variant["method"])
        if entry is None:
            continue
        trial = {"method_settings": {variant["method"]: method_settings(config, name)}}
        sub = {**copy.deepcopy(_schema()), "required": [], "properties": {"method_settings":
                                                                        _schema()["properties"]["method_settings"]}}
        error = jsonschema.exceptions.best_match(_Validator(sub).iter_errors(trial))
        if error is not None:
            message = _message(error).replace(f"method_settings.{variant['method']}", f"variants.{name}.settings")
            raise ConfigError(message)


def validate(config: dict) -> dict:
    """Fill the schema's defaults into `config` (in place), check it against the schema and the datasets'
    facts, and return it; raise ConfigError on the first problem."""
    for key, prop in _schema()["properties"].items():  # `--config tracking=false` gives the string "false"
        if prop.get("type") == "boolean" and str(config.get(key)).lower() in ("true", "false"):
            config[key] = str(config[key]).lower() == "true"
    explicit_baseline = "baseline" in config
    validator = _Validator(_grid_schema(config))
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_message(error))
    _check_variants(config)
    for dataset in config["datasets"]:
        if dataset not in config["dataset_settings"]:
            raise ConfigError(
                f"config error at 'dataset_settings': no entry for dataset {dataset!r}; "
                "add one with at least 'model'"
            )
        _check_dataset(config, dataset)
    baseline = config["baseline"]
    if baseline is not None and baseline not in table_rows(config) and not explicit_baseline:
        config["baseline"] = None  # the schema's default, on a grid without it
    elif baseline is not None and baseline not in table_rows(config):
        raise ConfigError(f"config error at 'baseline': {baseline!r} is not a method of this grid; "
                          f"use one of {', '.join(table_rows(config))}")
    if "reference" in config:
        try:
            load_reference(Path(config["reference"]))
        except ReferenceFileError as problem:
            raise ConfigError(f"config error at 'reference': {problem}") from None
    return config


def _check_subset(config: dict, dataset: str, key: str) -> None:
    """A dataset's own `key` list (losses, samples_per_class) may only pick from the top-level one."""
    extra = [v for v in config["dataset_settings"][dataset].get(key, []) if v not in config[key]]
    if extra:
        raise ConfigError(
            f"config error at 'dataset_settings.{dataset}.{key}': {extra[0]!r} is not in the top-level "
            f"'{key}'; add it there (it sets the tables' order) or remove it here"
        )


def _check_dataset(config: dict, dataset: str) -> None:
    ds = config["dataset_settings"][dataset]
    where = f"dataset_settings.{dataset}"
    smallest = dataset_module(dataset).FACTS.min_train_per_class
    _check_subset(config, dataset, "samples_per_class")
    _check_subset(config, dataset, "methods")
    spc_values = dataset_spc(config, dataset)
    for n in spc_values:
        if n != "all" and n > smallest:
            raise ConfigError(
                f"config error at 'samples_per_class': {n} exceeds the smallest class of {dataset} "
                f"({smallest} training images); use at most {smallest} or 'all'"
            )
    for method in dataset_methods(config, dataset):
        if base_method(config, method) in SEMANTIC and not ds.get("hierarchies"):
            raise ConfigError(
                f"config error at '{where}': method {method!r} needs a class hierarchy; add 'hierarchies: [<name>]' "
                f"(files data/hierarchies/<name>.txt) or leave the method out of this dataset's 'methods'"
            )
    erase = ds["augment"].get("erase", {})
    for key in ("area", "aspect"):
        low, high = erase.get(key, (0, 0))
        if low > high or (key == "area" and high > 1):
            raise ConfigError(f"config error at '{where}.augment.erase.{key}': [{low}, {high}] must be "
                              f"[min, max] with min <= max" + (" <= 1" if key == "area" else ""))
    _check_lr_keys(config, dataset)
    _check_imbalance(config, dataset, spc_values, smallest)
    for label in method_labels(config, dataset):
        train = train_settings(config, dataset, label)
        _check_schedule(train, dataset)
        _check_validation(train, dataset, spc_values, smallest)
        recipe = train["recipe"]
        if base_method(config, split_label(label)[0]) in WITHOUT_MIXING and (
                recipe["mixup"]["alpha"] > 0 or recipe["cutmix"]["p"] > 0):
            raise ConfigError(f"config error at 'train.recipe': {label!r} cannot train on mixed batches (mixup, "
                              "CutMix); turn them off for it (a variant's train.recipe) or leave it out")


def _check_imbalance(config: dict, dataset: str, spc_values: list, smallest: int) -> None:
    """A long-tailed subset's smallest class is n / factor images: below one, the factor would not hold."""
    factor = config["imbalance"]["factor"]
    for n in spc_values if factor > 1 else ():
        size = smallest if n == "all" else n
        if size < factor:
            raise ConfigError(f"config error at 'imbalance.factor': {factor} at samples per class {n} on {dataset} "
                              f"leaves the rarest class {size}/{factor} < 1 image; use samples_per_class >= {factor} "
                              "or a smaller factor")


def _check_lr_keys(config: dict, dataset: str) -> None:
    """A learning-rate map names methods (registered ones, variants, labels of the grid) or 'default': a typo
    would silently train that method at the default rate. (Keys of methods a grid does not run are fine: an
    overlay merges over config/config.yaml's map.)"""
    known = set(METHODS) | set(config["variants"]) | set(table_rows(config)) | {"default"}
    own = config["dataset_settings"][dataset].get("train", {}).get("lr")
    for where, lr in (("train.lr", config["train"].get("lr")), (f"dataset_settings.{dataset}.train.lr", own)):
        for key in lr if isinstance(lr, dict) else ():
            if key not in known:
                raise ConfigError(f"config error at '{where}': {key!r} is not a method; use a method of this grid "
                                  f"({', '.join(table_rows(config))}), another registered method or 'default'")


def _check_schedule(train: dict, dataset: str) -> None:
    """SGDR must end at the end of a cycle: stopping mid-cycle tests a model at a high learning rate."""
    schedule = train["schedule"]
    if schedule["name"] != "sgdr":
        return
    if "first_cycle" not in schedule:
        raise ConfigError(f"config error at 'train.schedule': sgdr needs 'first_cycle' (epochs) for dataset {dataset}")
    first, mult = schedule["first_cycle"], schedule["cycle_mult"]
    ends = [sgdr_epochs(first, mult, k) for k in range(1, 8)]
    if train["epochs"] not in ends:
        raise ConfigError(
            f"config error at 'train.epochs': {train['epochs']} epochs on {dataset} do not end an SGDR cycle "
            f"(first_cycle {first}, cycle_mult {mult}); use one of {', '.join(map(str, ends[:6]))}"
        )


def _check_validation(train: dict, dataset: str, spc_values: list, smallest: int) -> None:
    fraction = train["validation_fraction"]
    if fraction == 0:
        for key, off in (("select", "last"), ("patience", 0)):
            if train[key] != off:
                raise ConfigError(f"config error at 'train.{key}': {train[key]!r} needs a validation split on "
                                  f"{dataset}; set train.validation_fraction > 0")
        return
    for n in spc_values:
        size = smallest if n == "all" else n
        if validation_count(size, fraction) < 1:
            raise ConfigError(
                f"config error at 'train.validation_fraction': {fraction} holds out no image of a class with "
                f"{size} training images ({dataset}, samples per class {n}); use at least {0.5 / size:.3g} "
                f"or run without validation (0)"
                if size > 1 else
                f"config error at 'train.validation_fraction': {dataset} at samples per class {n} has classes "
                f"of one image, none to spare for validation; set validation_fraction to 0"
            )


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _dataset(config: dict, dataset: str) -> dict:
    return config.get("dataset_settings", {}).get(dataset, {})


def dataset_methods(config: dict, dataset: str) -> list[str]:
    """Registered method names run on `dataset`, in the top-level order."""
    own = _dataset(config, dataset).get("methods")
    return [method for method in config["methods"] if own is None or method in own]


def dataset_spc(config: dict, dataset: str) -> list:
    """Samples-per-class values run on `dataset`, in the top-level order."""
    own = _dataset(config, dataset).get("samples_per_class")
    return [n for n in config["samples_per_class"] if own is None or n in own]


def method_labels(config: dict, dataset: str) -> list[str]:
    """The method labels of `dataset`'s cells: semantic methods once per hierarchy of the dataset."""
    hierarchies = _dataset(config, dataset).get("hierarchies", [])
    labels = []
    for method in dataset_methods(config, dataset):
        labels += [f"{method}-{h}" for h in hierarchies] if base_method(config, method) in SEMANTIC else [method]
    return labels


def table_rows(config: dict) -> list[str]:
    """Every method label of the grid once, in the order of the top-level methods (rows of the tables)."""
    return list(dict.fromkeys(label for d in config["datasets"] for label in method_labels(config, d)))


def hierarchy_path(name: str) -> str:
    return f"data/hierarchies/{name}.txt"


def train_settings(config: dict, dataset: str, label: str) -> dict:
    """Training settings of one (dataset, method label): the top-level ones, then the dataset's, lr resolved.

    An lr map is looked up by the label (e.g. cosine_semantic-cub_flat), then by the method name,
    then 'default'.
    """
    overrides = config["dataset_settings"][dataset].get("train", {})
    name = split_label(label)[0]
    variant = config.get("variants", {}).get(name, {}).get("train", {})
    train = _merge(_merge(config["train"], overrides), variant)
    lr = variant.get("lr", overrides.get("lr", config["train"].get("lr")))  # an lr map is replaced whole
    # searched, or read from a tuned grid's `selected` file (the grid checks it has a value for every cell)
    tuned = "lr" in config.get("tune", {}).get("space", {}) or selected_file(config) is not None
    if isinstance(lr, dict):
        for key in (label, name, base_method(config, name), "default"):
            if key in lr:
                lr = lr[key]
                break
        else:
            if not tuned:
                raise ConfigError(f"config error at 'train.lr': no learning rate for method {name!r} on {dataset}; "
                                  "add it or 'default'")
            lr = None
    if lr is None and not tuned:
        raise ConfigError(f"config error at 'train.lr': no learning rate for {dataset}; set train.lr")
    train["lr"] = lr
    return train


def selected_file(config: dict) -> Path | None:
    """The `selected` file this grid trains with (None: the grid is not named there)."""
    name = config.get("selected", {}).get(config.get("grid"))
    if name is None:
        return None
    path = Path(name) if Path(name).is_absolute() else REPO_ROOT / name
    if not path.is_file():
        raise ConfigError(f"config error at 'selected.{config['grid']}': {name} does not exist; write it with "
                          "`python -m benchmark export-selection` after the tuned grid ran")
    return path


def merged(base: dict, *overlays: dict) -> dict:
    """`overlays` merged over `base` as Snakemake merges --configfile files: mappings merge, lists replace."""
    out = copy.deepcopy(base)
    for overlay in overlays:
        out = _merge(out, overlay)
    return out


def load_config(*paths: Path, base: Path | None = None) -> dict:
    """The validated config of `paths` merged in order over `base` (config/config.yaml for an overlay: what
    `snakemake --configfile <paths>` runs)."""
    layers = [yamlfile.read(p) or {} for p in paths]
    if base is not None:
        layers.insert(0, yamlfile.read(base))
    return validate(merged({}, *layers))
