"""Results you can cite: every fault of issue 10, through real Snakemake in temporary copies of the repo.

Each test starts from a copy whose digits data the workflow prepared once per session (`repo`), runs
a tiny grid (2 cells of 1 short epoch per method unless said otherwise) and checks what a user would:
which cells are trained, which files change, what the table says.
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
from conftest import copy_workflow, jobs, records, snakemake, workflow_env, write_config

pytestmark = pytest.mark.slow

TINY = {"grid": "tiny", "methods": ["softmax_ce", "cb_focal"], "samples_per_class": [5], "seeds": [0, 1],
        "seeds_per_job": 1, "tracking": False}


def tiny(repo: Path, name: str = "tiny", epochs: int = 1, steps: int = 3, **overrides) -> Path:
    config = write_config(repo, name, epochs=epochs, **{**TINY, "grid": name, **overrides})
    data = yaml.safe_load(config.read_text())
    data["train"]["steps_per_epoch"] = steps
    data["dataset_settings"]["digits"]["train"]["lr"]["default"] = 0.05
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


@pytest.fixture(scope="module")
def tiny_trained(prepared_repo: Path, tmp_path_factory) -> Path:
    """A copy of `prepared_repo` in which the tiny grid (config/tiny.yaml) has run: trained once per module,
    the starting point of every test that begins with it."""
    repo = copy_workflow(prepared_repo, tmp_path_factory.mktemp("tiny") / "repo")
    run(repo, tiny(repo))
    return repo


@pytest.fixture
def trained(tiny_trained: Path, tmp_path: Path) -> Path:
    """A private copy of `tiny_trained`."""
    return copy_workflow(tiny_trained, tmp_path / "repo")


def dry(repo: Path, config: Path, *extra: str) -> str:
    result = snakemake(repo, "-n", "--configfile", str(config), *extra)
    return result.stdout + result.stderr


def run(repo: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return snakemake(repo, "--cores", "2", "--configfile", str(config), *extra)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_deleted_cell_is_retrained_and_the_table_updated(trained: Path) -> None:
    repo, config = trained, trained / "config/tiny.yaml"
    assert "Nothing to be done" in dry(repo, config)
    before = records(repo)
    assert len(before) == 4
    table = repo / "results/tables/tiny.md"
    first_table = table.read_text()
    victim = next(p for p in before if "cb_focal" in p and "seed1" in p)
    (repo / victim).unlink()
    assert jobs(dry(repo, config)) == 1  # its pack, found although the table already exists
    run(repo, config)
    after = records(repo)
    assert victim in after and after[victim][0] != before[victim][0]  # trained again
    assert {p: v for p, v in after.items() if p != victim} == {p: v for p, v in before.items() if p != victim}
    assert table.stat().st_mtime_ns > 0 and table.read_text() == first_table  # CPU: the same numbers again
    assert "Nothing to be done" in dry(repo, config)


def test_two_grids_that_differ_in_epochs_never_touch_each_other(repo: Path) -> None:
    short, long = tiny(repo, "short", epochs=1), tiny(repo, "long", epochs=2)
    # both at the same time, in the same checkout
    env = workflow_env(repo)
    procs = [subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(c)], cwd=repo,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in (short, long)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    cells = records(repo)
    assert len(cells) == 8  # 4 per grid, in different folders (different settings keys)
    epochs = {json.loads((repo / p).read_text())["epochs_run"] for p in cells}
    assert epochs == {1, 2}
    tables = {g: (repo / f"results/tables/{g}.md").read_text() for g in ("short", "long")}
    assert tables["short"] != tables["long"]
    # a grid run after the other has nothing to do, and changes nothing
    for config in (short, long):
        assert "Nothing to be done" in dry(repo, config)
    run(repo, short)
    assert records(repo) == cells
    assert {g: (repo / f"results/tables/{g}.md").read_text() for g in ("short", "long")} == tables


def test_the_same_cell_asked_for_by_two_grids_is_trained_once(trained: Path) -> None:
    repo, cells = trained, records(trained)  # the grid "tiny" has run
    second = tiny(repo, "second", samples_per_class=[5])  # the same cells, another name
    out = dry(repo, second)
    assert jobs(out) == 0 and jobs(out, "aggregate") == 1  # the packs are done: only its own table is missing
    run(repo, second)
    assert records(repo) == cells
    assert (repo / "results/tables/second.csv").read_text() == (repo / "results/tables/tiny.csv").read_text()


def test_code_edits_rerun_exactly_the_cells_that_import_the_code(trained: Path) -> None:
    repo, config, trained = trained, trained / "config/tiny.yaml", records(trained)
    # focal.py is imported by the class-balanced losses (cb_focal), not by softmax_ce
    edit(repo / "benchmark/losses/focal.py", '"""Focal loss', '"""Focal loss (edited)')
    out = dry(repo, config)
    assert jobs(out) == 2
    run(repo, config)
    after = records(repo)
    assert {p for p in after if after[p] != trained[p]} == {p for p in trained if "/cb_focal/" in p}
    # a module no cell imports (the aggregate's plots) reruns no cell, only the tables
    edit(repo / "benchmark/plots.py", '"""Figures of a grid', '"""Figures of a grid (edited)')
    out = dry(repo, config)
    assert jobs(out) == 0 and jobs(out, "aggregate") == 1


def test_settings_that_cannot_change_a_result_rerun_nothing(trained: Path) -> None:
    repo, config, trained = trained, trained / "config/tiny.yaml", records(trained)
    for key, value in (("cells_per_gpu", 4), ("device", "cpu"), ("threads", 2), ("eval_batch_size", 7),
                       ("seeds_per_job", 2)):
        changed = tiny(repo, f"tiny_{key}", grid="tiny", **{key: value})
        out = dry(repo, changed)
        assert jobs(out) == 0 or key == "seeds_per_job", (key, out)
        if key == "seeds_per_job":  # other packs: their jobs run, find every record, and train nothing
            run(repo, changed)
            assert records(repo) == trained
    # how the data is fetched is not what it is: workers and a mirror URL re-prepare nothing
    datasets = repo / "config/datasets.yaml"
    edit(datasets, "digits:\n", "digits:\n  workers: 3\n")
    edit(datasets, "  cub_flat: {}", "  cub_flat: {url: https://mirror.example.invalid/cub_flat.txt}")
    assert "Nothing to be done" in dry(repo, config)
    # what the data is does: a different hold-out re-prepares digits and retrains every cell
    edit(datasets, "test_per_class: 50", "test_per_class: 49")
    out = dry(repo, config)
    assert jobs(out, "prepare_data") == 1 and jobs(out) == 4


def test_extending_the_seeds_trains_only_the_new_cells(trained: Path) -> None:
    repo, trained = trained, records(trained)  # seeds 0 and 1, one cell per job
    extended = tiny(repo, seeds=[0, 1, 2], seeds_per_job=3)  # other packs: seeds 0-2 of a method each
    out = run(repo, extended).stdout
    after = records(repo)
    new = {p for p in after if p not in trained}
    assert len(new) == 2 and all("/seed2/" in p for p in new)
    assert {p: after[p] for p in trained} == trained  # byte-identical and untouched (same mtime)
    assert out.count("test accuracy") == 6  # every cell of the new packs reported; only seed 2 trained
    assert out.count("kept from an earlier run") == 4  # and the console says which were kept
    assert "Nothing to be done" in dry(repo, extended)


def _cell_runs(uri: str, grid: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(grid)
    return client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'cell'")


def test_a_store_that_dies_mid_run_loses_nothing_and_the_next_run_logs_each_cell_once(repo: Path) -> None:
    from services import mlflow_server

    config = tiny(repo, tracking=True, methods=["softmax_ce"], epochs=2, steps=60)
    store = repo.parent / "store"
    with mlflow_server(store) as uri:
        env = {**workflow_env(repo), "MLFLOW_TRACKING_URI": uri, "BENCHMARK_TRACKING_FLUSH_S": "0"}
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)],
                                cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list((repo / "results/cells").rglob("tracking.json")):
            time.sleep(0.1)  # the first cell's run exists: the store worked until now
    output = proc.communicate(timeout=600)[0]  # the server is gone for the rest of the run
    assert proc.returncode != 0, output  # the track job could not log
    assert len(records(repo)) == 2  # ... but every result was written
    trained = records(repo)
    with mlflow_server(store, backend_uri=f"sqlite:///{store / 'server.db'}") as uri:
        env = {**workflow_env(repo), "MLFLOW_TRACKING_URI": uri}
        again = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)],
                               cwd=repo, env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stdout + again.stderr
        runs = _cell_runs(uri, "tiny")
    assert records(repo) == trained  # logged, not retrained
    assert sorted(r.data.tags["cell"] for r in runs) == ["digits/softmax_ce/spc5/split0/seed0",
                                                          "digits/softmax_ce/spc5/split0/seed1"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_a_deleted_store_is_filled_again_without_retraining(repo: Path) -> None:
    config = tiny(repo, tracking=True, methods=["softmax_ce"])
    uri = workflow_env(repo)["MLFLOW_TRACKING_URI"]
    run(repo, config)
    trained = records(repo)
    assert len(_cell_runs(uri, "tiny")) == 2
    (repo / "results/tracking/tiny.json").unlink()  # the ledger: the cells are checked and none logged twice
    run(repo, config)
    assert len(_cell_runs(uri, "tiny")) == 2
    (repo / "mlflow.db").unlink()  # the store itself
    out = dry(repo, config)
    assert jobs(out) == 0 and jobs(out, "track") == 1
    run(repo, config)
    assert len(_cell_runs(uri, "tiny")) == 2 and records(repo) == trained


def test_a_code_edit_between_sigterm_and_rerun_sets_the_checkpoint_aside(repo: Path) -> None:
    config = tiny(repo, methods=["softmax_ce"], seeds=[0], epochs=3, steps=200)
    env = workflow_env(repo)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config)],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    log = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        logs = list((repo / "results/cells").rglob("cell.log"))
        if logs and "epoch 1/3" in logs[0].read_text():
            log = logs[0]
            break
        time.sleep(0.2)
    assert log is not None, "the cell never finished its first epoch"
    os.killpg(proc.pid, signal.SIGTERM)  # what SLURM sends: Snakemake passes it on to the job
    proc.communicate(timeout=120)
    checkpoint = log.parent / "checkpoint.pt"
    assert checkpoint.exists() and not (log.parent / "metrics.json").exists()
    edit(repo / "benchmark/losses/softmax.py", '"""Softmax cross-entropy', '"""Softmax cross-entropy (edited)')
    result = run(repo, config)
    assert "set aside" in (log.parent.parent.parent / "split0_seed0.log").read_text() + result.stderr
    assert (log.parent / "checkpoint.pt.stale").exists() and (log.parent / "metrics.json").exists()
    assert "resuming" not in log.read_text().split("---")[-1]
