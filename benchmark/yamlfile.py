"""YAML read with libyaml's parser where PyYAML was built with it (about ten times the pure-Python one).

Snakemake reads the config schema, the grid's config files and dvc.yaml each time it starts: with the
pure-Python parser that was a tenth of a second of a no-op rerun.
"""

from __future__ import annotations

from pathlib import Path

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str):
    """What yaml.safe_load(text) returns."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)


def read(path: str | Path):
    """The parsed YAML file `path`."""
    return parse(Path(path).read_text())
