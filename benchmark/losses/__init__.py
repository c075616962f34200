"""Losses on a network's outputs, one module per family (benchmark/losses/base.py: what each provides).

Registered as methods in benchmark/registry.py."""
