"""Benchmark of losses for deep learning on small datasets without pre-training.

The package is imported by the Snakefile on every DAG build, so this module and the
registries it exposes must stay cheap to import: no torch, no MLflow at module level.
"""

__version__ = "0.1.0"
