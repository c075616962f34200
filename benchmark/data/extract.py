"""Safe extraction of .tar, .tgz, .tar.gz and .zip archives.

Every member is checked before anything is written for it:
  - absolute names ("/etc/passwd", "C:\\x") and names with a ".." component are rejected;
  - links are rejected, all of them: symbolic and hard links, whether they point inside the
    folder or not. None of the dataset archives this project reads is expected to contain links,
    and refusing them all is simpler to get right than resolving where each one would lead (a
    chain of harmless-looking links can still escape). A real archive with a link therefore
    fails loudly, naming the member, rather than being extracted in part;
  - device files, FIFOs and other special members are rejected.
Only directories and regular files are created, with modes 0755 / 0644 (the archive's modes and
owners are ignored).

The archive is extracted into a temporary sibling of the target folder, which replaces the
target by a rename only when every member was written; on any failure the temporary folder is
removed and an existing target is left exactly as it was. A corrupt or truncated archive raises
a DataError naming the archive. (An uncompressed .tar cut exactly at a member boundary looks like
a shorter valid archive; the md5 check of the download and the builders' checks that every
listed file exists catch that case.)
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from benchmark.data.errors import DataError
from benchmark.io import make_staging_dir, swap_in_dir

SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def is_archive(filename: str) -> bool:
    return filename.lower().endswith(SUFFIXES)


def archive_stem(filename: str) -> str:
    """The archive's name without its archive suffix: "CUB_200_2011.tgz" -> "CUB_200_2011"."""
    lower = filename.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return filename[: -len(suffix)]
    raise ValueError(f"{filename} is not a .tar, .tgz, .tar.gz or .zip archive")


class _Unsafe(Exception):
    pass


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of member `name`, or _Unsafe when it is absolute or climbs with ".."."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise _Unsafe(f"member {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts or any(".." in p.split("\\") for p in parts):
        raise _Unsafe(f"member {name!r} has a '..' component (it would be written outside the folder)")
    return parts


def extract(archive: Path, target: Path, *, dataset: str | None = None) -> Path:
    """Extract `archive` into the folder `target` (replacing it only on success); return `target`."""
    archive, target = Path(archive), Path(target)
    label = f"dataset {dataset}, archive {archive.name}" if dataset else f"archive {archive.name}"
    if not archive.is_file():
        raise DataError(f"{label}: {archive} does not exist; download it again")
    if not is_archive(archive.name):
        raise DataError(f"{label}: unsupported archive type (expected {', '.join(SUFFIXES)})")
    staging = make_staging_dir(target)
    try:
        members = _zip_members(archive) if archive.name.lower().endswith(".zip") else _tar_members(archive)
        for parts, kind, stream in members:
            _write(staging, parts, kind, stream, label)
        swap_in_dir(staging, target)
    except _Unsafe as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(
            f"{label}: refusing to extract {archive}: {error}. The archive is not the expected file or has "
            f"been tampered with; delete it and download it again from a trusted source"
        ) from None
    except _READ_ERRORS as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, _WriteError):
            raise DataError(f"{label}: cannot write the extracted files under {target.parent}: {error.cause}; "
                            f"check free disk space and permissions") from None
        raise DataError(
            f"{label}: {archive} is corrupt or truncated ({type(error).__name__}: {error}); delete it and "
            f"download it again"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


class _WriteError(OSError):
    def __init__(self, cause: OSError):
        super().__init__(str(cause))
        self.cause = cause


def _write(root: Path, parts: tuple[str, ...], kind: str, stream: BinaryIO | None, label: str) -> None:
    if not parts:
        return
    path = root.joinpath(*parts)
    try:
        if kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        out = open(path, "wb")  # noqa: SIM115 - closed below; read errors must not look like write errors
    except OSError as error:
        raise _WriteError(error) from None
    with out:
        assert stream is not None
        while True:
            block = stream.read(_CHUNK)  # archive read errors propagate as themselves
            if not block:
                break
            try:
                out.write(block)
            except OSError as error:
                raise _WriteError(error) from None
    path.chmod(0o644)


def _tar_members(archive: Path) -> Iterator[tuple[tuple[str, ...], str, BinaryIO | None]]:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # sequential: efficient for compressed archives
            parts = _safe_parts(member.name)
            if member.issym() or member.islnk():
                raise _Unsafe(f"member {member.name!r} is a {'symbolic' if member.issym() else 'hard'} link "
                              f"(to {member.linkname!r}); links are not extracted")
            if member.isdir():
                yield parts, "dir", None
            elif member.isfile():
                stream = tar.extractfile(member)
                assert stream is not None
                yield parts, "file", stream
            else:
                raise _Unsafe(f"member {member.name!r} is a device file, FIFO or other special file")


def _zip_members(archive: Path) -> Iterator[tuple[tuple[str, ...], str, BinaryIO | None]]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = _safe_parts(info.filename)
            mode = info.external_attr >> 16  # Unix mode when the archive was made on Unix, else 0
            if stat.S_ISLNK(mode):
                raise _Unsafe(f"member {info.filename!r} is a symbolic link; links are not extracted")
            if info.is_dir() or stat.S_ISDIR(mode):
                yield parts, "dir", None
            elif mode == 0 or stat.S_ISREG(mode) or stat.S_IFMT(mode) == 0:
                with zf.open(info) as stream:
                    yield parts, "file", stream
            else:
                raise _Unsafe(f"member {info.filename!r} is a device file, FIFO or other special file")
