"""Reading a cell's record (metrics.json) and checking that it is the result the grid asks for.

A record states its cell's coordinates and its identity: the settings key, the code hash and the data
hash it was trained with (benchmark/grid.py). A record is used, by the aggregate and by a pack that
would otherwise train the cell, only when all of these match; the problem is one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path


class RecordError(ValueError):
    """A record that cannot be used; the message is one line naming the file and the fix."""


class DataReceiptError(RuntimeError):
    """The prepared data is not what its receipt says; one line naming both and the fix."""


def read_record(path: Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RecordError(f"{path} is not a readable cell record ({type(error).__name__}: {error}); "
                          "delete it and run the workflow again to retrain the cell") from None
    if not isinstance(record, dict) or not {"cell", "identity", "status"} <= set(record):
        raise RecordError(f"{path} is not a cell record (no cell, identity and status); delete it and run the "
                          "workflow again to retrain the cell")
    return record


def mismatch(record: dict, coordinates: dict, identity: dict) -> str | None:
    """What differs between a record and the cell it should be (None: it is that cell's result)."""
    if record["cell"] != coordinates:
        return f"it is the record of cell {record['cell']}, not of {coordinates}"
    for part in ("settings", "code", "data", "teacher"):  # teacher: a student's teacher's weights (packs.py)
        want, got = identity.get(part), record["identity"].get(part)
        if want is not None and got != want:
            return f"its {part} identity is {got}, the grid asks for {want} (the {part} changed since it was trained)"
    return None


def check_record(path: Path, coordinates: dict, identity: dict) -> dict:
    """The record at `path` if it is the cell `coordinates` with `identity`; RecordError otherwise."""
    record = read_record(path)
    problem = mismatch(record, coordinates, identity)
    if problem is not None:
        raise RecordError(f"{path} does not match its cell: {problem}; run the workflow to retrain it")
    return record
