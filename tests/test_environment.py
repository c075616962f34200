"""pyproject.toml and environment.yml pin the same packages to the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_pins_equal_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item)
    assert sorted(map(_normalise, pip_section)) == sorted(map(_normalise, project["dependencies"]))
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    version = python.split("=")[1]
    assert re.fullmatch(r">=3\.11,<3\.\d+", project["requires-python"]) and version == "3.11"

