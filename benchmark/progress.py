"""A training cell's progress file: what `python -m benchmark status` reads to say a cell is running.

While a pack job trains a cell it keeps `progress.json` in the cell's folder (beside checkpoint.pt):

    {"state": "running", "host": ..., "pid": ..., "started": <unix s>, "updated": <unix s>,
     "epoch": <epochs finished>, "epochs": <epochs of the cell>, "epoch_s": [<wall s of recent epochs>]}

`updated` is the heartbeat: it is rewritten after every epoch (at most once per WRITE_EVERY_S, so a
cell of 0.05 s epochs does not write 20 files a second). When the cell stops early the job writes
`state` "preempted" (SIGTERM: its checkpoint is resumed by the next run) or "failed" with `error`,
the exception's first line. When the record (metrics.json) is written the file is deleted: a finished
cell is recognised by its record, never by this file.

The file is written by rename (never seen half-written) but not fsynced: it is a heartbeat, and a
crash that loses it loses nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from benchmark.io import atomic_path

NAME = "progress.json"
WRITE_EVERY_S = 1.0
RECENT_EPOCHS = 20  # epoch times kept for the ETA


def _write(path: Path, content: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, sort_keys=True) + "\n")


class ProgressFile:
    """The progress file of one cell being trained by this process."""

    def __init__(self, cell_dir: Path, epochs: int) -> None:
        self.path = Path(cell_dir) / NAME
        now = time.time()
        self.content = {"state": "running", "host": socket.gethostname(), "pid": os.getpid(), "started": now,
                        "updated": now, "epoch": None, "epochs": epochs, "epoch_s": []}
        self.last_epoch_end = None
        self.written = 0.0
        self._save(force=True)

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.written >= WRITE_EVERY_S:
            _write(self.path, self.content)
            self.written = now

    def epoch(self, epochs_done: int, train_s: float) -> None:
        """After an epoch: `epochs_done` (1-based count) and the epoch's training seconds.

        An epoch's time is the wall time since the previous epoch ended (validation and logging
        included); the first epoch of a run (fresh or resumed) has only its training time.
        """
        now = time.time()
        seconds = train_s if self.last_epoch_end is None else now - self.last_epoch_end
        self.last_epoch_end = now
        recent = [*self.content["epoch_s"], round(seconds, 4)][-RECENT_EPOCHS:]
        self.content.update(epoch=epochs_done, updated=now, epoch_s=recent)
        self._save()

    def stopped(self, state: str, error: str | None = None) -> None:
        """The cell stopped without a record: "preempted" or "failed" (with the error's first line)."""
        self.content.update(state=state, updated=time.time(), error=error)
        self._save(force=True)

    def finished(self) -> None:
        """The record is written: the progress file goes."""
        self.path.unlink(missing_ok=True)


def read_progress(cell_dir: Path) -> dict | None:
    """A cell's progress file, or None (none, or unreadable: it is only a heartbeat)."""
    try:
        content = json.loads((Path(cell_dir) / NAME).read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def error_line(error: BaseException) -> str:
    """ "TypeName: first line of the message", at most 300 characters."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}"[:300] if text else type(error).__name__
