"""Atomic file writes: a crash never leaves a file that looks finished."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    if path.exists() and not path.is_file():
        # Renaming over a device such as /dev/null would replace the device itself.
        raise ValueError(f"{path} exists and is not a regular file; give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def swap_in_dir(staging: Path, target: Path) -> None:
    """Replace the folder `target` by `staging` with renames only; the old folder goes only at the end.

    A crash leaves either the previous folder or the new one in place, never a half-written mix.
    """
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
