"""A dataset's preparation settings: its entry in config/datasets.yaml (the DVC params of its stages)."""

from __future__ import annotations

from pathlib import Path

from benchmark.registry import DATASETS


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
