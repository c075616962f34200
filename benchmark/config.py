"""Grid configuration: validation with one-line errors, cell expansion, per-cell settings.

Imported by the Snakefile, so it stays light (no torch): registries are read as names only.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from benchmark.data import DATASETS, dataset_module
from benchmark.losses import LOSSES
from benchmark.models import MODELS

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A user's configuration mistake; the message is one line naming the key and the fix."""


def _schema() -> dict:
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    props = schema["properties"]
    props["datasets"]["items"]["enum"] = sorted(DATASETS)
    props["losses"]["items"]["enum"] = sorted(LOSSES)
    props["dataset_settings"]["propertyNames"] = {"enum": sorted(DATASETS)}
    props["dataset_settings"]["additionalProperties"]["properties"]["model"]["enum"] = sorted(MODELS)
    return schema


def _strict_integer(checker, instance) -> bool:
    """JSON Schema counts 2.0 as an integer; epochs, seeds and sizes must be written as integers."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


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


def validate(config: dict) -> dict:
    """Check `config` against the schema and the datasets' facts; raise ConfigError on the first problem."""
    validator = _Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_message(error))
    for dataset in config["datasets"]:
        if dataset not in config["dataset_settings"]:
            raise ConfigError(
                f"config error at 'dataset_settings': no entry for dataset {dataset!r}; "
                "add one with at least 'model'"
            )
        smallest = dataset_module(dataset).FACTS.min_train_per_class
        for n in config["samples_per_class"]:
            if n != "all" and n > smallest:
                raise ConfigError(
                    f"config error at 'samples_per_class': {n} exceeds the smallest class of {dataset} "
                    f"({smallest} training images); use at most {smallest} or 'all'"
                )
    for loss in config["losses"]:
        for dataset in config["datasets"]:
            train = train_settings(config, dataset, loss)
            missing = [k for k in ("epochs", "batch_size", "steps_per_epoch", "optimizer", "grad_clip_norm",
                                   "schedule") if k not in train]
            if missing:
                raise ConfigError(f"config error at 'train': {', '.join(missing)} missing for dataset {dataset}")
    return config


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def train_settings(config: dict, dataset: str, loss: str) -> dict:
    """Training settings of one (dataset, loss): defaults, then the dataset's, lr resolved for `loss`."""
    overrides = config["dataset_settings"][dataset].get("train", {})
    train = _merge(config["train"], overrides)
    lr = overrides.get("lr", config["train"].get("lr"))  # an lr map is replaced whole, not merged
    if isinstance(lr, dict):
        if loss not in lr and "default" not in lr:
            raise ConfigError(
                f"config error at 'train.lr': no learning rate for loss {loss!r} on {dataset}; add it or 'default'"
            )
        lr = lr.get(loss, lr.get("default"))
    if lr is None:
        raise ConfigError(f"config error at 'train.lr': no learning rate for {dataset}; set train.lr")
    train["lr"] = lr
    return train


def cell_settings(config: dict, dataset: str, loss: str) -> dict:
    """Everything a cell's result depends on besides its identity; a change reruns that cell."""
    ds = config["dataset_settings"][dataset]
    return {
        "model": ds["model"],
        "augment": ds.get("augment", {}),
        "train": train_settings(config, dataset, loss),
        "loss": config.get("loss_settings", {}).get(loss, {}),
        "precision": config.get("precision", "auto"),
        "eval_batch_size": config.get("eval_batch_size", 1024),
    }


def load_config(path: Path) -> dict:
    return validate(yaml.safe_load(Path(path).read_text()))


def cell_dir(dataset: str, loss: str, spc, seed: int) -> str:
    return f"results/cells/{dataset}/{loss}/spc{spc}/seed{seed}"


def cells(config: dict) -> list[tuple[str, str, object, int]]:
    return [
        (d, l, n, s)
        for d in config["datasets"]
        for l in config["losses"]  # noqa: E741
        for n in config["samples_per_class"]
        for s in config["seeds"]
    ]

