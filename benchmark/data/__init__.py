"""Dataset registry: config name -> module. Each module defines FACTS and `build(settings)`.

Add a dataset: one module here with FACTS (the counts checked at prepare time) and a
`build` function that returns the canonical arrays; one line below; a config entry.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DATASETS: dict[str, str] = {
    "digits": "benchmark.data.digits",
}


def dataset_module(name: str) -> ModuleType:
    """The module of dataset `name`; dataset modules import only numpy at module level."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return importlib.import_module(DATASETS[name])
