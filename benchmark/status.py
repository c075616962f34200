"""Where a grid stands, read only from files: `python -m benchmark status [--configfile X ...]`.

Works wherever the results folder is visible (a cluster's shared file system, a laptop), without
MLflow or Snakemake. Every cell of the grid (benchmark.grid.Grid) gets exactly one state, decided
in this order from the files of its folder results/cells/<dataset>/<method>/spc<n>/<key>/split<k>/seed<s>/
and of its pack (the job that trains it):

1. done / diverged: its record metrics.json is there and is this cell's result with the grid's
   settings, code and data (benchmark/records.py); its `status` says ok (done) or diverged (the
   training loss stopped being finite). A record that does not match, or cannot be read, is not a
   result: the cell is "queued" with a note, as the next run sets the record aside and trains again.
2. running: its progress file (benchmark/progress.py) says "running" and the process is alive: on
   the machine that wrote it, its pid exists and runs `benchmark`; seen from another machine (a login
   node), its heartbeat is recent: updated within 3 mean epoch times (at least 10 minutes; 1 hour
   before its first epoch has ended). Shown as "epoch x of y" with an ETA = the epochs left times the
   mean of its recent epoch times, less the time since the last epoch ended.
3. failed: the cell raised (its progress file says "failed", with the error), or its pack's log
   (<pack>.log beside the split folders: the job's stderr) ends in an error while no cell of the pack
   runs (a traceback, or a one-line `error:` / `config error` / `data error:` / `tracking error:`
   exit), or its progress file says "running" but the process is gone without writing an error (killed:
   out of memory, a time limit, a lost node).
4. queued after a preemption: its progress file says "preempted" (SIGTERM): the next run resumes it.
5. missing: its pack's marker (<pack>.pack, written when every cell of the pack had its record) is
   there but its record is not (deleted by hand, or set aside): the next run trains it again.
6. queued: none of the above (not started yet, or waiting in a running pack behind another cell).

The exit status is 1 when a cell failed, else 0.
"""

from __future__ import annotations

import math
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.grid import Configuration, Grid, Pack
from benchmark.progress import read_progress
from benchmark.records import RecordError, mismatch, read_record

STATES = ("done", "running", "queued", "missing", "failed", "diverged")
HEARTBEAT_EPOCHS = 3  # a remote cell is running while its last epoch ended within this many epoch times
HEARTBEAT_MIN_S = 600.0
HEARTBEAT_FIRST_EPOCH_S = 3600.0  # before any epoch has ended, how long a remote start counts as running
# The last line of a pack log that ends in an error: a traceback's exception line, or the CLI's one-line exits.
ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b|(config |data |tracking )?error\b)")


@dataclass
class CellStatus:
    configuration: Configuration
    split: int
    seed: int
    state: str
    detail: str = ""
    eta_s: float | None = None  # running cells: seconds until the last epoch ends

    @property
    def name(self) -> str:
        c = self.configuration
        return f"{c.dataset}/{c.method}/spc{c.spc}/split{self.split}/seed{self.seed}"

    @property
    def group(self) -> str:
        return f"{self.configuration.dataset}/{self.configuration.method}"


def duration(seconds: float) -> str:
    """A duration as a person reads it: 42 s, 7 min 5 s, 3 h 12 min, 2 d 4 h."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def process_alive(pid: int) -> bool | None:
    """Whether process `pid` of this machine exists and runs the benchmark; None where /proc cannot tell."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return b"benchmark" in command


def heartbeat_window(progress: dict) -> float:
    times = progress.get("epoch_s") or []
    if not times:
        return HEARTBEAT_FIRST_EPOCH_S
    return max(HEARTBEAT_MIN_S, HEARTBEAT_EPOCHS * sum(times) / len(times))


def is_alive(progress: dict, now: float, host: str) -> bool:
    """Whether the process that writes `progress` still trains the cell (see the module docstring, 2)."""
    if progress.get("state") != "running":
        return False
    if progress.get("host") == host:
        alive = process_alive(int(progress.get("pid", -1)))
        if alive is not None:
            return alive
    return now - float(progress.get("updated", 0.0)) <= heartbeat_window(progress)


def running_detail(progress: dict, now: float) -> tuple[str, float | None]:
    """ "epoch 7 of 10, 2.1 s/epoch, ETA 6 s" and the ETA in seconds (None before the first epoch ends)."""
    epoch, epochs, times = progress.get("epoch"), progress.get("epochs"), progress.get("epoch_s") or []
    if not epoch or not times:
        since = duration(now - float(progress.get("started", now)))
        return f"started {since} ago, epoch 1 of {epochs} not finished yet", None
    mean = sum(times) / len(times)
    eta = max(0.0, (epochs - epoch) * mean - (now - float(progress["updated"])))
    finish = time.strftime("%H:%M", time.localtime(now + eta)) if eta < 86400 else \
        time.strftime("%a %H:%M", time.localtime(now + eta))
    return f"epoch {epoch} of {epochs}, {mean:.3g} s/epoch, ETA {duration(eta)} ({finish})", eta


def pack_error(log: Path) -> str | None:
    """The error a pack's log ends in (its last line), or None when it has none or does not end in one."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    if ERROR_LINE.match(last) or "Traceback (most recent call last):" in text:
        return last[:300]
    return None


def record_state(path: Path, configuration: Configuration, split: int, seed: int,
                 identity: dict) -> tuple[str, str] | None:
    """(state, detail) from the cell's record, or None without one (see the module docstring, 1)."""
    if not path.exists():
        return None
    try:
        record = read_record(path)
        problem = mismatch(record, configuration.coordinates(split, seed), identity)
    except RecordError:
        return "queued", "its metrics.json cannot be read: the next run sets it aside and trains the cell"
    if problem is not None:
        return "queued", f"stale record ({problem}): the next run sets it aside and trains the cell"
    accuracy = 100.0 * record.get("test_accuracy", math.nan)
    wall = duration(record.get("wall_time_s", 0.0))
    if record["status"] == "diverged":
        return "diverged", (f"the training loss was not finite after epoch {record.get('epochs_run')}; "
                            f"{accuracy:.1f}% test accuracy (counted in the tables), {wall}")
    return "done", f"{accuracy:.1f}% test accuracy, {record.get('epochs_run')} epochs in {wall}"


def pack_status(pack: Pack, identity: dict, now: float, host: str, root: Path) -> list[CellStatus]:
    """The states of the cells of one pack (they share its log and marker)."""
    c = pack.configuration
    cells = []
    for split, seed in pack.runs:
        cell_dir = root / c.cell_dir(split, seed)
        progress = read_progress(cell_dir)
        cells.append((split, seed, cell_dir, record_state(root / c.record(split, seed), c, split, seed, identity),
                      progress, progress is not None and is_alive(progress, now, host)))
    pack_running = any(alive for *_, alive in cells)
    error = None if pack_running else pack_error(root / pack.log)
    marker = (root / pack.marker).exists()
    out = []
    for split, seed, cell_dir, from_record, progress, alive in cells:
        status = CellStatus(c, split, seed, "queued")
        state = (progress or {}).get("state")
        if from_record is not None:
            status.state, status.detail = from_record
        elif alive:
            status.state = "running"
            status.detail, status.eta_s = running_detail(progress, now)
        elif state == "failed":
            status.state, status.detail = "failed", f"{progress.get('error')} (log: {pack.log})"
        elif error is not None:
            status.state, status.detail = "failed", f"its job ended in: {error} (log: {pack.log})"
        elif state == "preempted":
            status.detail = (f"preempted after epoch {progress.get('epoch') or 0} of {progress.get('epochs')}: "
                             "the next run resumes its checkpoint")
        elif state == "running":
            status.state = "failed"
            status.detail = (f"its job stopped after epoch {progress.get('epoch') or 0} of {progress.get('epochs')} "
                             f"without a record or an error (killed: out of memory, a time limit, a lost node?); "
                             f"log: {pack.log}")
        elif marker:
            aside = " (set aside as metrics.json.stale)" if (cell_dir / "metrics.json.stale").exists() else ""
            status.state = "missing"
            status.detail = f"its pack finished but it has no metrics.json{aside}: the next run trains it again"
        elif pack_running:
            status.detail = "waits in its pack's running job"
        elif (cell_dir / "checkpoint.pt").exists():
            status.detail = "has a checkpoint: the next run resumes it"
        out.append(status)
    return out


def grid_status(config: dict, root: Path = Path("."), now: float | None = None) -> list[CellStatus]:
    """The state of every cell of the grid, in table order."""
    from benchmark.aggregate import expected_identity

    now = time.time() if now is None else now
    host = socket.gethostname()
    out = []
    for pack in Grid(config).packs:
        out += pack_status(pack, expected_identity(pack.configuration, root), now, host, root)
    return out


def counts(statuses: list[CellStatus]) -> dict[str, int]:
    return {state: sum(s.state == state for s in statuses) for state in STATES}


def summary_line(statuses: list[CellStatus]) -> str:
    n = counts(statuses)
    return f"{len(statuses)} cells: " + ", ".join(f"{n[state]} {state}" for state in STATES)


def render(grid: str, statuses: list[CellStatus], every_cell: bool = False) -> str:
    """The status report: the grid's counts, a count table per (dataset, method), then the cells a person
    acts on (running, failed, missing, diverged, queued with a note), or every cell with `every_cell`."""
    groups: dict[str, list[CellStatus]] = {}
    for s in statuses:
        groups.setdefault(s.group, []).append(s)
    width = max([len("dataset/method"), *map(len, groups)])
    lines = [f"grid {grid}: {summary_line(statuses)}", ""]
    lines.append(f"{'dataset/method':<{width}}  {'cells':>5}" + "".join(f"  {state:>8}" for state in STATES))
    for group, members in groups.items():
        n = counts(members)
        lines.append(f"{group:<{width}}  {len(members):>5}" + "".join(f"  {n[state]:>8}" for state in STATES))
    shown = [s for s in statuses if every_cell or s.state != "done" and (s.state != "queued" or s.detail)]
    for state in ("running", "failed", "missing", "diverged", "queued", "done"):
        members = [s for s in shown if s.state == state]
        if members:
            lines += ["", f"{state}:"]
            name_width = max(len(s.name) for s in members)
            lines += [f"  {s.name:<{name_width}}  {s.detail}".rstrip() for s in members]
    running = [s.eta_s for s in statuses if s.eta_s is not None]
    if running:
        lines += ["", f"the running cells end in {duration(max(running))} at the latest"]
    return "\n".join(lines) + "\n"


def other_keys(config: dict, root: Path = Path(".")) -> int:
    """How many settings-key folders beside the grid's own hold cells of the grid's (dataset, method, spc)."""
    found = 0
    for c in Grid(config).configurations:
        parent = (root / c.folder).parent
        if parent.is_dir():
            found += sum(1 for p in parent.iterdir() if p.is_dir() and p.name != c.key)
    return found


def device_note(config: dict, root: Path = Path(".")) -> str | None:
    """A hint where `device: auto` may expand to other cells here than on the machines that train them."""
    from benchmark.device import cuda_present

    if config["device"] != "auto" or cuda_present():
        return None
    others = other_keys(config, root)
    if not others:
        return None
    return (f"note: device auto is cpu on this machine; results/cells holds {others} folders of these cells made with "
            "other settings (another device, learning rate, ...): for cells trained on GPUs, run with --device cuda")


def main(paths: list[str], base: Path | None, device: str | None, every_cell: bool) -> int:
    """Print the grid's status; return the exit status (1 when a cell failed)."""
    from benchmark.config import load_config, validate

    config = load_config(*paths, base=base)
    if device is not None:
        config["device"] = device
        validate(config)
    statuses = grid_status(config)
    print(render(config["grid"], statuses, every_cell), end="", flush=True)
    note = device_note(config)
    if note:
        print(note, file=sys.stderr)
    return 1 if counts(statuses)["failed"] else 0
