"""scripts/mutation_check.py, the test of the tests: its mutations still apply to the code (fast), and one
realistic mutation is caught by the fast suite in a copy of the repository (slow; CI runs the whole script)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = REPO / "scripts" / "mutation_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("mutation_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_mutation_applies_to_the_current_code(tmp_path):
    script = _script()
    names = [m.name for m in script.MUTATIONS]
    assert len(names) == len(set(names)) >= 10
    for mutation in script.MUTATIONS:
        script.check_applies(mutation, REPO)  # exactly one occurrence, or MutationError naming it
        assert mutation.old != mutation.new
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "evaluate.py").write_text("method.scores(x).argmax(dim=1)\n" * 2)
    with pytest.raises(script.MutationError, match="2 occurrences"):
        script.check_applies(next(m for m in script.MUTATIONS if m.path == "benchmark/evaluate.py"), tmp_path)


def test_first_failure_reads_the_short_summary():
    script = _script()
    output = "....F\n=== short test summary info ===\nFAILED tests/test_x.py::test_y[a] - AssertionError: 1\n"
    assert script.first_failure(output) == "tests/test_x.py::test_y[a]"
    assert script.first_failure("ERROR tests/test_z.py - ImportError\n") == "tests/test_z.py"


def test_the_trainer_tests_run_first_and_ignored_modules_not_at_all():
    script = _script()
    modules = script.suite(REPO, ["tests/test_slurm.py"])
    assert modules[:len(script.FIRST)] == script.FIRST
    assert "tests/test_slurm.py" not in modules and "tests/test_config.py" in modules
    assert len(modules) == len(set(modules))


@pytest.mark.slow
def test_misaligned_labels_are_caught():
    result = subprocess.run([sys.executable, str(SCRIPT), "--only", "labels-misaligned", "--no-baseline"],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("labels-misaligned "))
    assert row.split()[1] == "yes" and "tests/test_" in row
    assert "1 of 1 mutations caught" in result.stdout
