"""Preemption-safe cells: on SIGTERM a cell saves a checkpoint and exits; the next run resumes it.

SLURM sends SIGTERM before it kills a preempted or timed-out job. The handler only records the
request; the training loop checks it between steps, saves everything the rest of the run
depends on (weights, momentum, the batch order's and augmentation's generator states, the
position in the epoch, the curves so far) and raises `Preempted`. A resumed run continues from
that exact step, so on CPU it ends bit-identical to an uninterrupted one. A checkpoint carries a
fingerprint of the cell, its settings and its data; one that does not match is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import torch

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later
_stop = {"at": None}


class Preempted(Exception):
    def __init__(self, path: Path, epoch: int, step: int, save_s: float) -> None:
        super().__init__(f"preempted at epoch {epoch}, step {step}; checkpoint saved to {path} "
                         f"{save_s:.2f} s after SIGTERM; run the workflow again to resume")
        self.path, self.epoch, self.step, self.save_s = path, epoch, step, save_s


def install_sigterm_handler() -> None:
    def request_stop(signum, frame) -> None:  # noqa: ARG001 (signal handler signature)
        if _stop["at"] is None:
            _stop["at"] = time.monotonic()

    signal.signal(signal.SIGTERM, request_stop)


def stop_requested() -> bool:
    return _stop["at"] is not None


def seconds_since_stop_request() -> float:
    return time.monotonic() - _stop["at"] if _stop["at"] is not None else 0.0


def fingerprint(cell: dict, settings: dict, data_hash: str) -> str:
    text = json.dumps({"cell": cell, "settings": settings, "data": data_hash}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def save(path: Path, state: dict) -> None:
    """torch.save through a temporary file and a rename: a kill mid-write leaves the old checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, expected_fingerprint: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this exact cell, settings and data; else None."""
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("fingerprint") == expected_fingerprint else None
