"""Preemption-safe cells: on SIGTERM a cell saves a checkpoint and exits; the next run resumes it.

SLURM sends SIGTERM before it kills a preempted or timed-out job. The handler only records the
request; the training loop checks it between steps, saves everything the rest of the run
depends on (weights, momentum, the batch order's and augmentation's generator states, the
position in the epoch, the curves so far) and raises `Preempted`. A resumed run continues from
that exact step, so on CPU it ends bit-identical to an uninterrupted one. A checkpoint carries a
fingerprint of what made it (the cell, its settings, its data and its code); one that does not match,
or that cannot be read, is set aside with one line and the cell starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from pathlib import Path

import torch

from benchmark.io import atomic_path

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later
_stop = {"at": None}


class Preempted(Exception):
    def __init__(self, path: Path, epoch: int, step: int, save_s: float) -> None:
        super().__init__(f"preempted at epoch {epoch + 1}, step {step}; checkpoint saved to {path} "
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


def fingerprint(**parts) -> str:
    """sha256 of the JSON of `parts` (cell, settings, data, code): what a checkpoint must match."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpoints:
    """One cell's checkpoint file: what it must match to be resumed, and when the next periodic one is due."""

    def __init__(self, path: Path, fingerprint: str, every_s: float = 600.0) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.every_s = every_s
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def save(self, state: dict) -> None:
        """torch.save through a temporary file and a rename: a kill mid-write leaves the old checkpoint."""
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)
        self.last = time.monotonic()

    def load(self) -> dict | None:
        """The checkpoint if it was made by this cell with these settings, data and code; else None.

        A checkpoint made by anything else, or one that cannot be read (truncated), is renamed to
        `<name>.stale` with one line on stderr, so it is neither resumed nor lost.
        """
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            problem = None if state.get("fingerprint") == self.fingerprint else (
                "it was made by other settings, data or code")
        except Exception as error:  # truncated or corrupt: torch raises several kinds
            state, problem = None, f"it cannot be read ({type(error).__name__})"
        if problem is None:
            return state
        aside = self.path.with_name(self.path.name + ".stale")
        self.path.replace(aside)
        print(f"checkpoint {self.path} set aside as {aside.name}: {problem}; the cell starts afresh",
              file=sys.stderr, flush=True)
        return None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
