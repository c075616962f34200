"""`python -m benchmark status`: every state recognised from files built by hand, and a real pack's progress file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from benchmark import status
from benchmark.aggregate import expected_identity
from benchmark.config import validate
from benchmark.grid import Grid

HOST = socket.gethostname()


def config() -> dict:
    return validate({
        "grid": "st", "datasets": ["digits"], "methods": ["softmax_ce", "mse", "cosine", "cosine_ce"],
        "samples_per_class": [5, 10], "seeds": [0, 1, 2], "seeds_per_job": 3, "tracking": False, "device": "cpu",
        "train": {"epochs": 10, "lr": 0.1}, "dataset_settings": {"digits": {"model": "small_cnn"}},
    })


class Files:
    """Writes the files of a grid's cells and packs under `root`, as the pack jobs would."""

    def __init__(self, root: Path, grid: Grid) -> None:
        self.root, self.grid = root, grid
        self.now = time.time()  # the files are dated relative to now (when the fixture runs): `main` reads the clock
        self.packs = {(p.configuration.method, p.configuration.spc): p for p in grid.packs}

    def cell_dir(self, method: str, spc: int, seed: int) -> Path:
        path = self.root / self.packs[(method, spc)].configuration.cell_dir(0, seed)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record(self, method: str, spc: int, seed: int, state: str = "ok", accuracy: float = 0.9, **identity) -> None:
        c = self.packs[(method, spc)].configuration
        record = {"cell": c.coordinates(0, seed), "identity": {**expected_identity(c, self.root), **identity},
                  "status": state, "test_accuracy": accuracy, "epochs_run": 10, "wall_time_s": 12.0}
        (self.cell_dir(method, spc, seed) / "metrics.json").write_text(json.dumps(record))

    def progress(self, method: str, spc: int, seed: int, **content) -> None:
        base = {"state": "running", "host": HOST, "pid": os.getpid(), "started": self.now - 100,
                "updated": self.now - 1,
                "epoch": None, "epochs": 10, "epoch_s": []}
        (self.cell_dir(method, spc, seed) / "progress.json").write_text(json.dumps({**base, **content}))

    def log(self, method: str, spc: int, text: str) -> None:
        path = self.root / self.packs[(method, spc)].log
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def marker(self, method: str, spc: int) -> None:
        path = self.root / self.packs[(method, spc)].marker
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")


TRACEBACK = """x: MLflow at sqlite:///x failed (OperationalError: locked); the result is kept and the track job logs it
Traceback (most recent call last):
  File "benchmark/train/loop.py", line 101, in train_epochs
RuntimeError: boom
"""


@pytest.fixture
def built(tmp_path):
    """A grid of 24 cells in every state; a live process for the local running cell."""
    grid = Grid(config())
    files = Files(tmp_path, grid)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "benchmark"])
    # softmax_ce spc5: done, diverged, running here (a live process of this machine, before its first epoch)
    files.record("softmax_ce", 5, 0, accuracy=0.912)
    files.record("softmax_ce", 5, 1, state="diverged", accuracy=0.1)
    files.progress("softmax_ce", 5, 2, pid=worker.pid)
    # softmax_ce spc10: done; failed in the cell (progress says so); never started in the failed job
    files.record("softmax_ce", 10, 0)
    files.progress("softmax_ce", 10, 1, state="failed", error="RuntimeError: boom", epoch=3)
    files.log("softmax_ce", 10, TRACEBACK)
    # mse spc5: the pack finished (marker), then a record was deleted, another set aside
    files.record("mse", 5, 0)
    files.marker("mse", 5)
    files.cell_dir("mse", 5, 1)
    (files.cell_dir("mse", 5, 2) / "metrics.json.stale").write_text("{}")
    # mse spc10: preempted; plain queued; the job was killed (pid gone, nothing said)
    files.progress("mse", 10, 0, state="preempted", epoch=4)
    files.progress("mse", 10, 2, pid=2**22 + 12345, epoch=6, epoch_s=[1.0] * 6)
    files.log("mse", 10, "")
    # cosine spc5: a record made by other code; cosine spc10: the job exited with one error line
    files.record("cosine", 5, 0, code="0123456789abcdef")
    files.log("cosine", 10, "error: cell digits/cosine/spc10/split0/seed0 is set up for cuda but this job got cpu\n")
    # cosine_ce spc5: running on another machine (heartbeat), silent too long on another machine, waiting
    files.progress("cosine_ce", 5, 0, host="gpu-node-7", epoch=3, epoch_s=[2.0, 2.0, 2.0])
    files.progress("cosine_ce", 5, 1, host="gpu-node-7", epoch=3, epoch_s=[2.0], updated=files.now - 4000)
    yield grid, tmp_path, files.now
    worker.kill()
    worker.wait()


def by_name(statuses):
    return {s.name: s for s in statuses}


def test_every_state_is_recognised(built):
    grid, root, now = built
    found = by_name(status.grid_status(grid.config, root, now=now))
    states = {name: s.state for name, s in found.items()}
    cell = "digits/{}/spc{}/split0/seed{}".format
    assert states == {
        cell("softmax_ce", 5, 0): "done", cell("softmax_ce", 5, 1): "diverged", cell("softmax_ce", 5, 2): "running",
        cell("softmax_ce", 10, 0): "done", cell("softmax_ce", 10, 1): "failed", cell("softmax_ce", 10, 2): "failed",
        cell("mse", 5, 0): "done", cell("mse", 5, 1): "missing", cell("mse", 5, 2): "missing",
        cell("mse", 10, 0): "queued", cell("mse", 10, 1): "queued", cell("mse", 10, 2): "failed",
        cell("cosine", 5, 0): "queued", cell("cosine", 5, 1): "queued", cell("cosine", 5, 2): "queued",
        cell("cosine", 10, 0): "failed", cell("cosine", 10, 1): "failed", cell("cosine", 10, 2): "failed",
        cell("cosine_ce", 5, 0): "running", cell("cosine_ce", 5, 1): "failed", cell("cosine_ce", 5, 2): "queued",
        cell("cosine_ce", 10, 0): "queued", cell("cosine_ce", 10, 1): "queued", cell("cosine_ce", 10, 2): "queued",
    }
    detail = {name: s.detail for name, s in found.items()}
    assert detail[cell("softmax_ce", 5, 0)] == "91.2% test accuracy, 10 epochs in 12 s"
    assert detail[cell("softmax_ce", 5, 2)] == "started 1 min 40 s ago, epoch 1 of 10 not finished yet"
    assert detail[cell("softmax_ce", 10, 1)].startswith("RuntimeError: boom (log: results/cells/digits/softmax_ce/")
    assert detail[cell("softmax_ce", 10, 2)].startswith("its job ended in: RuntimeError: boom")
    assert detail[cell("mse", 5, 2)].startswith("its pack finished but it has no metrics.json (set aside as")
    assert detail[cell("mse", 10, 0)] == "preempted after epoch 4 of 10: the next run resumes its checkpoint"
    assert detail[cell("mse", 10, 2)].startswith("its job stopped after epoch 6 of 10 without a record or an error")
    assert detail[cell("cosine", 5, 0)].startswith("stale record (its code identity is 0123456789abcdef")
    assert detail[cell("cosine", 10, 1)].startswith("its job ended in: error: cell digits/cosine/spc10")
    assert detail[cell("cosine_ce", 5, 2)] == "waits in its pack's running job"
    # remote running cell: 3 of 10 epochs of 2 s, the last ended 1 s ago: 7 * 2 - 1 = 13 s left
    assert found[cell("cosine_ce", 5, 0)].eta_s == pytest.approx(13.0)
    assert detail[cell("cosine_ce", 5, 0)].startswith("epoch 3 of 10, 2 s/epoch, ETA 13 s (")


def test_render_counts_groups_and_lists_what_needs_a_look(built):
    grid, root, now = built
    text = status.render("st", status.grid_status(grid.config, root, now=now))
    lines = text.splitlines()
    assert lines[0] == "grid st: 24 cells: 3 done, 2 running, 9 queued, 2 missing, 7 failed, 1 diverged"
    assert lines[3].split() == ["digits/softmax_ce", "6", "2", "1", "0", "0", "2", "1"]
    assert lines[6].split() == ["digits/cosine_ce", "6", "0", "1", "4", "0", "1", "0"]
    sections = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert sections == ["running:", "failed:", "missing:", "diverged:", "queued:"]
    assert "digits/softmax_ce/spc5/split0/seed0" not in text  # done cells only with --all
    assert "digits/cosine_ce/spc10/split0/seed0" not in text  # nor plain queued ones
    assert lines[-1] == "the running cells end in 13 s at the latest"
    assert "digits/softmax_ce/spc5/split0/seed0" in status.render("st", status.grid_status(grid.config, root, now),
                                                                  every_cell=True)


def test_exit_status_is_1_when_a_cell_failed(built, monkeypatch, capsys):
    grid, root, now = built
    (root / "config").mkdir()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config()))
    monkeypatch.chdir(root)
    assert status.main([], Path("config/config.yaml"), None, False) == 1
    assert capsys.readouterr().out.startswith("grid st: 24 cells: 3 done, 2 running, 9 queued, 2 missing, 7 failed")
    for path in [*root.rglob("*.log"), *root.rglob("progress.json")]:
        path.unlink()
    assert status.main([], Path("config/config.yaml"), None, False) == 0


@pytest.mark.parametrize(("log", "error"), [
    (TRACEBACK, "RuntimeError: boom"),
    ("config error at 'train.lr': no learning rate\n", "config error at 'train.lr': no learning rate"),
    ("torch.OutOfMemoryError: CUDA out of memory.\n\n", "torch.OutOfMemoryError: CUDA out of memory."),
    ("digits/mse/spc10/split0/seed0: preempted at epoch 5, step 3; checkpoint saved\n", None),
    ("x: MLflow at sqlite:///m failed (OperationalError: locked); the result is kept\n", None),
    ("", None),
])
def test_pack_error_reads_the_last_line(tmp_path, log, error):
    path = tmp_path / "p.log"
    path.write_text(log)
    assert status.pack_error(path) == error


def test_heartbeat_window_and_duration():
    assert status.heartbeat_window({"epoch_s": []}) == 3600.0
    assert status.heartbeat_window({"epoch_s": [1.0, 3.0]}) == 600.0
    assert status.heartbeat_window({"epoch_s": [400.0]}) == 1200.0
    assert [status.duration(s) for s in (3.21, 42, 425, 3 * 3600 + 720, 52 * 3600)] == [
        "3.2 s", "42 s", "7 min 5 s", "3 h 12 min", "2 d 4 h"]


def train_job(pack, root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "benchmark", "train", "--pack", json.dumps(pack.spec()),
                             "--marker", pack.marker, "--device", "cpu", "--threads", "1", "--eval-batch-size",
                             "1024", "--cells-per-gpu", "1", "--grid", "st"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_real_packs_are_running_then_preempted_or_done(digits, tmp_path):
    """Real pack jobs: while a cell trains, status says running with its epoch and an ETA; after SIGTERM,
    queued (preempted); a pack that ends leaves its record and no progress file."""
    def one_cell(epochs: int) -> dict:
        return validate({**config(), "methods": ["softmax_ce"], "samples_per_class": [5], "seeds": [0],
                         "train": {"epochs": epochs, "lr": 0.05}})

    long_config, short_config = one_cell(1000), one_cell(2)
    long, short = Grid(long_config).packs[0], Grid(short_config).packs[0]
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "digits").symlink_to(digits)
    job = train_job(long, tmp_path)
    seen = None
    deadline = time.time() + 120
    while job.poll() is None and time.time() < deadline and seen is None:
        cell = status.grid_status(long_config, tmp_path)[0]
        seen = cell if cell.state == "running" and cell.eta_s is not None else None
        time.sleep(0.2)
    job.terminate()  # SIGTERM: the cell saves its checkpoint and the job exits with 75
    _, err = job.communicate(timeout=120)
    assert job.returncode == 75, err
    assert seen is not None and seen.detail.startswith("epoch ") and " of 1000, " in seen.detail, seen
    stopped = status.grid_status(long_config, tmp_path)[0]
    assert stopped.state == "queued" and stopped.detail.startswith("preempted after epoch "), stopped

    job = train_job(short, tmp_path)
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    done = status.grid_status(short_config, tmp_path)[0]
    assert done.state == "done", done
    assert not (tmp_path / short.configuration.cell_dir(0, 0) / "progress.json").exists()
