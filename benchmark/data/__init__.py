"""Dataset registry: config name -> module. Each module defines FACTS and `build(settings)`.

Add a dataset: one module here with FACTS (the counts checked at prepare time) and a
`build` function that returns the canonical arrays; one line below; a config entry in
config/datasets.yaml. A dataset with source files also defines SOURCES and `download(settings)`
and is listed in the `download` and `prepare_raw` stages of dvc.yaml.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

DATASETS: dict[str, str] = {
    "digits": "benchmark.data.digits",
    "mnist5k": "benchmark.data.mnist5k",
    "cub": "benchmark.data.cub",
    "nabirds": "benchmark.data.nabirds",
    "cars": "benchmark.data.cars",
    "flowers": "benchmark.data.flowers",
    "mit67": "benchmark.data.mit67",
    "cifar100": "benchmark.data.cifar100",
}


def dataset_module(name: str) -> ModuleType:
    """The module of dataset `name`; dataset modules import only numpy at module level."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return importlib.import_module(DATASETS[name])


def load_settings(name: str, params: Path) -> dict:
    """The entry of dataset `name` in the dataset settings file (config/datasets.yaml).

    A DataError when the file or the entry is missing: every dataset is prepared from explicit
    settings, never from defaults nobody wrote down.
    """
    import yaml

    from benchmark.data.errors import DataError

    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    params = Path(params)
    if not params.is_file():
        raise DataError(f"dataset settings file {params} does not exist")
    settings = (yaml.safe_load(params.read_text()) or {}).get(name)
    if not isinstance(settings, dict):
        raise DataError(f"{params} has no entry for dataset {name!r}; add one (see the other datasets there)")
    return settings
