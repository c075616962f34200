"""Objects named by "module:attribute" strings (a cell's spec names its method, model and recipe this way)."""

from __future__ import annotations

import importlib
from typing import Any


def load(target: str) -> Any:
    """Import and return the object named by "module:attribute"."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
