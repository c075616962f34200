"""Downloading source files safely: resumable, verified, and never half-written at the destination.

`fetch(url, dest, md5)` streams into `dest + ".part"`, resumes an existing ``.part`` with an HTTP
Range request when the server honours it (a 206 reply whose Content-Range starts where the
``.part`` ends) and starts again from zero otherwise (a 200 reply, a 416 reply, or a
Content-Range that starts elsewhere). The md5, when one is given, is checked on the ``.part``;
only a complete and verified file is renamed to `dest`, so a file at `dest` is always whole.

What happens to the ``.part`` on failure:
  - connection dropped / fewer bytes than Content-Length: kept, the next call resumes it;
  - checksum mismatch: deleted (resuming wrong bytes cannot help);
  - HTTP errors before any byte arrives: left as it was.

Every failure raises one `DataError` naming the dataset and file and saying what to do.

`locate(name, filename, manual_dir)` is the manual path for files that cannot be downloaded
automatically (NABirds sits behind a terms-of-use page; Stanford Cars' original links are dead):
it finds the file the user placed by hand, or says exactly where to put which file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from benchmark.data.errors import DataError
from benchmark.io import file_hash

log = logging.getLogger(__name__)

USER_AGENT = "small-data-losses/0.1 (dataset download; python urllib)"
CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _label(dataset: str | None, filename: str) -> str:
    return f"dataset {dataset}, file {filename}" if dataset else f"file {filename}"


def digests(path: Path) -> dict:
    """md5, sha256 and size of a file, in one pass."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "size": size}


def verify_md5(path: Path, md5: str, dataset: str | None = None) -> None:
    """Raise DataError unless the file at `path` exists and has the md5 `md5`."""
    path = Path(path)
    label = _label(dataset, path.name)
    if not path.is_file():
        raise DataError(f"{label}: {path} does not exist; download it again (or place it there by hand)")
    got = file_hash(path, "md5")
    if got != md5.lower():
        raise DataError(
            f"{label}: checksum mismatch for {path}: expected md5 {md5.lower()}, got {got}. The file is not "
            f"the published one (a different release, an error page saved under that name, or a damaged copy); "
            f"delete it and download it again, checking the URL or mirror it comes from"
        )


class _Restart(Exception):
    """The .part cannot be resumed: discard it and download from the first byte."""


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    *,
    dataset: str | None = None,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` (see the module docstring for the guarantees) and return `dest`.

    An existing `dest` is kept without any network access when it matches `md5` (or when no md5
    is given), unless `force`. A `dest` that exists but fails the md5 stays in place until a
    verified replacement has been downloaded.
    """
    dest = Path(dest)
    label = _label(dataset, dest.name)
    if dest.exists() and not force and (md5 is None or file_hash(dest, "md5") == md5.lower()):
        log.info("%s: %s already present", label, dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        _download(url, part, label, timeout)
    except _Restart:
        part.unlink(missing_ok=True)
        _download(url, part, label, timeout)
    if md5 is not None:
        got = file_hash(part, "md5")
        if got != md5.lower():
            part.unlink(missing_ok=True)
            raise DataError(
                f"{label}: checksum mismatch for the download from {url}: expected md5 {md5.lower()}, got {got}. "
                f"The server sent a different file (a changed release, an error or login page, or a damaged "
                f"transfer); check the URL or use another mirror (the `sources` entry of this dataset in the "
                f"dataset settings). The bad download was deleted and {dest} was not touched"
            )
    os.replace(part, dest)
    log.info("%s: downloaded %s", label, dest)
    return dest


def _open(url: str, offset: int, label: str, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            raise _Restart from None  # the .part is not a prefix of the file (or is too long)
        raise DataError(_http_message(label, url, error.code, error.reason)) from None
    except urllib.error.URLError as error:
        raise DataError(
            f"{label}: cannot connect to download {url} ({error.reason}); check the network connection, "
            f"proxy settings and the URL, or use a mirror"
        ) from None
    except (http.client.HTTPException, OSError) as error:
        raise DataError(
            f"{label}: the connection failed while requesting {url} ({type(error).__name__}: {error}); "
            f"run again (a partial download is resumed), or use a mirror"
        ) from None


def _http_message(label: str, url: str, code: int, reason: object) -> str:
    head = f"{label}: {url} answered HTTP {code} {reason}"
    if code == 404:
        return (f"{head}: the file is not at that address (moved or withdrawn); check the URL, or point the "
                f"dataset's `sources` entry for this file at a mirror")
    if code in (401, 403):
        return (f"{head}: access is refused; the site may require a login or accepting terms of use. "
                f"Download the file by hand and put it in the dataset's manual folder, or use a mirror")
    if code >= 500:
        return f"{head}: the server failed; try again later or use a mirror"
    return f"{head}; check the URL or use a mirror"


def _download(url: str, part: Path, label: str, timeout: float) -> None:
    """Stream `url` into `part`, appending when the server resumes where `part` ends."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, label, timeout)
    with response:
        status = getattr(response, "status", None) or 200
        length = response.headers.get("Content-Length")
        if offset and status == 206:
            match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
            if not match or int(match.group(1)) != offset:
                raise _Restart
            total = int(match.group(3)) if match.group(3) != "*" else None
            if total is None and length is not None:
                total = offset + int(length)
            mode = "ab"
        else:  # a full reply: either no Range was sent or the server ignored it
            offset = 0
            total = int(length) if length is not None else None
            mode = "wb"
        received = offset
        failure = None
        with open(part, mode) as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as error:  # IncompleteRead, reset, timeout
                    failure = f"{type(error).__name__}: {error}"
                    break
                if not block:
                    break
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
    if failure is not None or (total is not None and received != total):
        expected = f"{total} bytes" if total is not None else "an unknown size"
        why = f" ({failure})" if failure else ""
        raise DataError(
            f"{label}: truncated download from {url}: received {received} of {expected}{why}. The connection "
            f"ended early; the partial file is kept as {part} and the next run resumes it. If this repeats, "
            f"use another mirror"
        )


def locate(
    name: str,
    filename: str,
    manual_dir: Path,
    md5: str | None = None,
    *,
    how: str | None = None,
) -> Path:
    """The file `filename` of dataset `name`, placed by hand in `manual_dir`.

    Raises a DataError that says exactly where to put which file (and its md5) when it is
    missing, and a checksum error when it is there but not the published file. `how` says where
    the file can be obtained (shown in the message).
    """
    manual_dir = Path(manual_dir)
    path = manual_dir / filename
    if not path.is_file():
        expect = f" (md5 {md5})" if md5 else ""
        where = f" It is obtained {how}." if how else ""
        raise DataError(
            f"dataset {name}: file {filename}{expect} is needed and cannot be downloaded automatically.{where} "
            f"Put it at {path.resolve()} (folder `manual_dir` of the dataset settings) and run again; or set a "
            f"mirror URL for {filename} in the dataset's `sources` settings"
        )
    if md5 is not None:
        verify_md5(path, md5, dataset=name)
    return path
