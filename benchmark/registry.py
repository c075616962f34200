"""Lazy registries: plain dicts from a config name to "module:attribute".

The Snakefile reads the names (to validate config and to know which source file a cell
depends on) without importing torch; `resolve` imports the object only when a job needs it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any


def resolve(registry: dict[str, str], name: str, kind: str) -> Any:
    """Import and return the object registered under `name`."""
    if name not in registry:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    module_name, _, attribute = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def source_file(registry: dict[str, str], name: str) -> str:
    """The .py file, relative to the repository root, that defines `name` (a workflow input)."""
    module_name = registry[name].partition(":")[0]
    return str(Path(*module_name.split(".")).with_suffix(".py"))
