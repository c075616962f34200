"""A cell's import path stays light: what `python -m benchmark train` loads before its first step."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

# Each costs 0.3 to 1.8 s per process on our 2-core machine; a cell loads MLflow only to log its run
# (after training), torchvision only for ResNet-50, scipy only for semantic embeddings.
HEAVY = ["mlflow", "seaborn", "matplotlib", "pandas", "scipy", "sklearn", "torchvision", "torch._dynamo", "sympy"]


@pytest.mark.slow  # a fresh interpreter
def test_training_a_cell_imports_nothing_heavy_before_it_is_needed() -> None:
    code = ("import sys, json\nimport benchmark.__main__, benchmark.train, benchmark.checkpoint, benchmark.runtime\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []


def test_the_snakefile_helpers_do_not_import_torch() -> None:
    code = ("import sys\nimport benchmark.config, benchmark.device, benchmark.losses, benchmark.models\n"
            "print('torch' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
