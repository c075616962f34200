"""GPU pinning with fake devices: concurrent cells never share a GPU slot; a killed cell's GPU is reused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from benchmark.gpus import claim_gpu
    gpus, lock_dir, per_gpu, hold, out = sys.argv[1].split(","), Path(sys.argv[2]), int(sys.argv[3]), \\
        float(sys.argv[4]), Path(sys.argv[5])
    claim = claim_gpu(gpus, lock_dir, per_gpu, timeout_s=60, poll_s=0.05)
    start = time.time()
    Path(str(out) + ".claimed").write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    time.sleep(hold)
    out.write_text(json.dumps({"gpu": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}))
""")


def _spawn(tmp: Path, name: str, gpus: str, per_gpu: int = 1, hold: float = 1.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, gpus, str(tmp / "locks"), str(per_gpu), str(hold),
                             str(tmp / f"{name}.json")], cwd=REPO)


def _records(tmp: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(tmp.glob("*.json"))]


def _max_concurrent(records: list[dict], gpu: str) -> int:
    events = sorted([(r["start"], 1) for r in records if r["gpu"] == gpu] +
                    [(r["end"], -1) for r in records if r["gpu"] == gpu], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.slow  # 8 processes
def test_concurrent_cells_never_share_a_gpu(tmp_path: Path) -> None:
    workers = [_spawn(tmp_path, f"w{i}", "0,1,2", hold=0.6) for i in range(8)]
    assert all(w.wait(timeout=60) == 0 for w in workers)
    records = _records(tmp_path)
    assert len(records) == 8
    assert {r["gpu"] for r in records} == {"0", "1", "2"}
    for gpu in "012":
        assert _max_concurrent(records, gpu) == 1


@pytest.mark.slow  # 6 processes
def test_packing_puts_at_most_k_cells_on_a_gpu(tmp_path: Path) -> None:
    workers = [_spawn(tmp_path, f"w{i}", "0,1", per_gpu=2, hold=0.8) for i in range(6)]
    assert all(w.wait(timeout=60) == 0 for w in workers)
    records = _records(tmp_path)
    assert max(_max_concurrent(records, gpu) for gpu in "01") == 2


@pytest.mark.slow  # processes, one killed
def test_a_killed_cells_gpu_is_reused(tmp_path: Path) -> None:
    victim = _spawn(tmp_path, "victim", "5", hold=60)
    claimed = tmp_path / "victim.json.claimed"
    deadline = time.time() + 20
    while not claimed.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert claimed.read_text() == "5"
    waiter = _spawn(tmp_path, "waiter", "5", hold=0.1)
    time.sleep(0.5)
    assert waiter.poll() is None  # the only GPU is held: the second cell waits
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert waiter.wait(timeout=20) == 0
    assert json.loads((tmp_path / "waiter.json").read_text())["gpu"] == "5"
