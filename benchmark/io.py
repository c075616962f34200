"""Atomic file writes and file hashes, written once for the whole package.

A write goes to a temporary file beside its target and is renamed over it, so a crash never leaves a
file that looks finished. Files get the permissions the user's umask gives a new file (tempfile
makes them private, 0600, which colleagues on a shared file system could not read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode the umask gives a new regular file (0644 under the usual umask 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    return 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block succeeds."""
    path = Path(path)
    if path.exists() and not path.is_file():
        # Renaming over a device such as /dev/null would replace the device itself.
        raise ValueError(f"{path} exists and is not a regular file; give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (archives of several GB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_staging_dir(target: Path) -> Path:
    """A new empty folder beside `target` to build its replacement in (see `swap_in_dir`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(dir_mode())  # mkdtemp makes it private; prepared data is meant to be shared
    return staging


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
