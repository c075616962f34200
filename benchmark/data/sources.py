"""Obtaining a dataset's source files into its raw folder, and reading them back.

Each real dataset module lists its files in SOURCES: file name -> {"url": ..., "md5": ...}, where
"url" is None for files that must be placed by hand (see `download.locate`) and "md5" is None
where none is published. The dataset settings may override any entry:

    cub:
      raw_dir: data/raw/cub
      sources:
        CUB_200_2011.tgz: {url: https://a.mirror/CUB_200_2011.tgz}

`obtain(name, sources, settings)` is the body of a dataset's download stage. It fills
`raw_dir` with
  - every downloadable file, fetched and verified (`download.fetch`);
  - for every archive (downloaded or placed by hand), the folder raw_dir/<archive stem> with its
    extracted content (`extract.extract`), e.g. raw_dir/CUB_200_2011/CUB_200_2011/images.txt;
  - every non-archive file placed by hand, copied in;
  - sources.json: url, md5, sha256 and size of every source file, and whether the md5 was
    published (checked) or only recorded on first download (MIT Indoor 67 publishes none).
Archives placed by hand are extracted from the manual folder and not copied.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from benchmark.data.download import digests, fetch, locate
from benchmark.data.errors import DataError
from benchmark.data.extract import archive_stem, extract, is_archive

RECORD = "sources.json"


def resolve_sources(name: str, defaults: dict[str, dict], settings: dict) -> dict[str, dict]:
    """The dataset's SOURCES with the `sources` overrides of its settings applied."""
    overrides = settings.get("sources") or {}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise DataError(
            f"dataset {name}: the settings override sources {unknown}, which this dataset does not use; "
            f"its files are {sorted(defaults)}"
        )
    return {filename: {"url": None, "md5": None, **entry, **(overrides.get(filename) or {})}
            for filename, entry in defaults.items()}


def raw_dir(name: str, settings: dict) -> Path:
    if not settings.get("raw_dir"):
        raise DataError(f"dataset {name}: the dataset settings have no `raw_dir` (the folder of its source files)")
    return Path(settings["raw_dir"])


def manual_dir(name: str, settings: dict) -> Path:
    return Path(settings.get("manual_dir") or Path("data") / "manual" / name)


def obtain(name: str, sources: dict[str, dict], settings: dict, *, how: str | None = None) -> dict:
    """Download/locate, verify and extract every source file into raw_dir; return the record.

    `sources` is the resolved mapping (see `resolve_sources`); `how` tells where files without a
    URL are obtained (shown when one is missing).
    """
    raw = raw_dir(name, settings)
    raw.mkdir(parents=True, exist_ok=True)
    previous = _read_record(raw)
    files = {}
    for filename, entry in sources.items():
        url, md5 = entry.get("url"), entry.get("md5")
        if url:
            path = fetch(url, raw / filename, md5, dataset=name)
        else:
            path = locate(name, filename, manual_dir(name, settings), md5, how=entry.get("how") or how)
        info = {"url": url, "manual": not url, **digests(path), "md5_published": md5 is not None}
        if is_archive(filename):
            target = raw / archive_stem(filename)
            known = previous.get(filename, {})
            if not (target.is_dir() and known.get("md5") == info["md5"]):
                extract(path, target, dataset=name)
        elif path.parent.resolve() != raw.resolve():
            _copy(path, raw / filename)
        files[filename] = info
    record = {"dataset": name, "files": files}
    _write_record(raw, files, name)
    return record


def _read_record(raw: Path) -> dict:
    path = raw / RECORD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("files", {})
    except (ValueError, AttributeError):
        return {}


def _write_record(raw: Path, files: dict, name: str) -> None:
    tmp = raw / f".{RECORD}.tmp"
    tmp.write_text(json.dumps({"dataset": name, "files": files}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, raw / RECORD)


def _copy(source: Path, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, part)
    os.replace(part, dest)


def source_record(raw: Path) -> dict:
    """The checksums recorded by `obtain` (empty when the raw folder was filled otherwise)."""
    return _read_record(Path(raw))


def extracted(name: str, settings: dict, archive: str) -> Path:
    """The folder an archive of the dataset was extracted to, or a DataError saying to download."""
    folder = raw_dir(name, settings) / archive_stem(archive)
    if not folder.is_dir():
        raise DataError(
            f"dataset {name}: {folder} (the extracted {archive}) does not exist; the dataset has not been "
            f"downloaded: run its download stage (`dvc repro download@{name}`) first"
        )
    return folder


def require(name: str, path: Path, what: str | None = None) -> Path:
    """`path` if it is a file, else a DataError naming it (an annotation file missing from the source)."""
    path = Path(path)
    if not path.is_file():
        what = f" ({what})" if what else ""
        raise DataError(
            f"dataset {name}: {path.name}{what} is missing: expected at {path}. The source files are incomplete "
            f"or not the expected ones; delete the dataset's raw folder and run its download stage again"
        )
    return path


def read_table(name: str, path: Path, fields: int) -> list[list[str]]:
    """Rows of a whitespace-separated text list, each split into exactly `fields` fields.

    The last field keeps any inner spaces ("295 Mallard (Female)"). Blank lines are skipped.
    """
    rows = []
    text = require(name, path).read_text(encoding="utf-8", errors="strict")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = line.strip().split(maxsplit=fields - 1)
        if len(row) != fields:
            raise DataError(
                f"dataset {name}: {Path(path).name} line {number} has {len(row)} field(s), expected {fields}: "
                f"{line!r}; the file is damaged or not the expected one"
            )
        rows.append(row)
    return rows


def common_extra(name: str, settings: dict, description: str) -> dict:
    """Provenance stored in metadata.json: the source, the settings (not `workers`), the checksums."""
    kept = {k: v for k, v in settings.items() if k != "workers"}
    return {"source": description, **kept, "source_files": source_record(raw_dir(name, settings))}
