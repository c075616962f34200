"""Preemption and packing through the real train verb (the command the train rule runs) on digits.

A pack of two cells is stopped by SIGTERM in the middle of its second cell and run again: the finished
cell is neither retrained nor logged again, the second resumes its checkpoint, and both end exactly as
each cell trained alone in its own process ends (bit-identical on CPU). A diverging cell ends its pack
as `diverged`, with its last metrics. Packing through Snakemake is tests/test_integrity.py's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from benchmark.config import validate
from benchmark.grid import Grid

pytestmark = pytest.mark.slow

RESULT = ("status", "test_accuracy", "test_balanced_accuracy", "per_class_accuracy", "curves", "tested_epoch",
          "epochs_run", "data_hash")


def pack(method: str, seeds: list[int], epochs: int, steps: int, lr: float | None = None) -> tuple[dict, str]:
    """The spec and marker of the one pack of a digits grid (`method`, 5 images per class, `seeds`)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(grid="preempt", methods=[method], samples_per_class=[5], seeds=seeds, seeds_per_job=len(seeds))
    config["train"].update(epochs=epochs, steps_per_epoch=steps)
    if lr is not None:
        config["dataset_settings"]["digits"]["train"]["lr"][method] = lr
    (only,) = Grid(validate(config)).packs
    return only.spec(), only.marker


def workdir(root: Path, digits: Path) -> Path:
    """A folder laid out as the workflow's (data/prepared/digits) for the pack's relative paths."""
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "digits").symlink_to(digits)
    return root


def train(cwd: Path, spec: dict, marker: str, *extra: str, wait: bool = True):
    command = [sys.executable, "-m", "benchmark", "train", "--pack", json.dumps(spec), "--marker", marker,
               "--device", "cpu", "--threads", "1", "--eval-batch-size", "512", "--cells-per-gpu", "1",
               "--grid", "preempt", "--checkpoint-every", "3600", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
           "BENCHMARK_TRACKING_FLUSH_S": "0"}
    if wait:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path} (exit {process.poll()})")


def result(path: Path) -> dict:
    record = json.loads(path.read_text())
    return {key: record[key] for key in RESULT}


def test_a_preempted_pack_resumes_bit_identical_and_keeps_its_finished_cell(digits: Path, tmp_path: Path,
                                                                             monkeypatch) -> None:
    spec, marker = pack("cosine", [0, 1], epochs=3, steps=100)  # epochs long enough to stop one mid-way
    # the second cell of the pack, trained alone in its own process (meanwhile: the pack is run)
    alone = workdir(tmp_path / "alone", digits)
    by_itself = train(alone, {**spec, "runs": [[0, 1]]}, marker, wait=False)
    reference = alone / spec["folder"] / "split0" / "seed1"

    packed = workdir(tmp_path / "packed", digits)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{packed / 'mlflow.db'}")
    from benchmark.tracking import init_grid  # what tracking-init does, without a third import of MLflow

    store = packed / "store.json"
    store.write_text(json.dumps(init_grid("preempt", {})))
    first, second = (packed / spec["folder"] / "split0" / f"seed{s}" for s in (0, 1))
    running = train(packed, spec, marker, "--tracking", str(store), wait=False)
    wait_for(second / "cell.log", "seed1: epoch 1/3", running)  # the first cell done, the second under way
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=120)
    assert running.returncode == 75, err
    assert "seed1: preempted at epoch " in err and "run the workflow again to resume" in err
    assert (first / "metrics.json").exists() and (second / "checkpoint.pt").exists()
    assert not (second / "metrics.json").exists() and not (packed / marker).exists()
    kept = (first / "metrics.json").stat().st_mtime_ns, (first / "metrics.json").read_bytes()
    first_log = (first / "cell.log").read_text()

    rerun = train(packed, spec, marker, "--tracking", str(store))
    assert rerun.returncode == 0, rerun.stderr
    assert ((first / "metrics.json").stat().st_mtime_ns, (first / "metrics.json").read_bytes()) == kept
    assert (first / "cell.log").read_text() == first_log  # not trained again: no new section in its log
    assert "seed1: resuming from" in (second / "cell.log").read_text()
    assert not (second / "checkpoint.pt").exists()
    assert [c["cell"]["seed"] for c in json.loads((packed / marker).read_text())["cells"]] == [0, 1]

    _, err = by_itself.communicate(timeout=300)
    assert by_itself.returncode == 0, err
    # a pack gives each cell what its own process gives, preempted or not (bit-identical on CPU); a seed
    # taken from the cell's place in the pack, or state left by the first cell, would change the second
    assert result(second / "metrics.json") == result(reference / "metrics.json")
    assert (second / "confusion.csv").read_text() == (reference / "confusion.csv").read_text()
    assert json.loads((second / "metrics.json").read_text())["resumed"] is True
    assert result(first / "metrics.json")["curves"] != result(second / "metrics.json")["curves"]

    # one run per cell: the finished cell's was not logged again, the resumed cell continued its own
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{packed / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("preempt").experiment_id],
                              filter_string="tags.kind = 'cell'")
    assert sorted(r.data.tags["cell"] for r in runs) == [f"digits/cosine/spc5/split0/seed{s}" for s in (0, 1)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss")) == [1, 2, 3]


def test_a_diverging_cell_ends_its_pack_as_diverged_with_its_last_metrics(digits: Path, tmp_path: Path) -> None:
    spec, marker = pack("mse", [0], epochs=3, steps=5, lr=1e30)  # the first update overflows the weights
    cwd = workdir(tmp_path, digits)
    done = train(cwd, spec, marker)
    assert done.returncode == 0, done.stderr
    assert "(diverged), 1 epochs" in done.stdout
    record = json.loads((cwd / spec["folder"] / "split0" / "seed0" / "metrics.json").read_text())
    assert record["status"] == "diverged"
    assert record["epochs_run"] == 1 and len(record["curves"]["train_loss"]) == 1
    assert 0.0 <= record["test_accuracy"] <= 1.0  # the last weights are still tested and recorded
    assert (cwd / marker).exists()  # a diverged cell is a result: its pack is complete
