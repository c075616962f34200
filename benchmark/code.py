"""The code a cell runs: the package modules it imports, found by reading them, and their hash.

A cell's result can change when any module it imports changes, and only then. The trainer's entry
module and the modules its spec names (its method's and its model's, resolved from the registry when
the grid is expanded) are the roots; every `import benchmark...` / `from benchmark... import` anywhere
in a reached module (function-level imports included: they run when the cell needs them) adds that
module and its parent packages' __init__.py. The result is a superset of what one cell executes and
never misses a module it imports. Registries are not imported by the trainer (the spec carries the
resolved "module:attribute"), so adding a method does not rerun every cell.

Reading a module's imports is cached per (path, mtime, size): building the DAG of 10,000 cells reads
each file once, and the workflow keeps that cache on disk beside the manifests (results/code/imports.json),
so that a rerun with nothing to do parses no module at all.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "benchmark"
ROOT = Path(__file__).resolve().parent.parent  # the repository (the folder holding benchmark/)
TRAINER = "benchmark.train"  # the entry module of every cell


def module_file(module: str) -> Path:
    """The source file of a package module: benchmark/a/b.py or benchmark/a/b/__init__.py."""
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@functools.lru_cache(maxsize=512)
def _imports_of(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:  # noqa: ARG001 (they key the cache)
    """Package modules named by the import statements of one file."""
    file = Path(path)
    tree = ast.parse(file.read_text(), filename=path)
    this = ".".join(file.relative_to(ROOT).with_suffix("").parts)
    if file.name == "__init__.py":
        this = this.removesuffix(".__init__")
        package = this
    else:
        package = this.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append(name)
            found += [f"{name}.{alias.name}" for alias in node.names]  # `from pkg import module`
    return tuple(sorted({n for n in found if n == PACKAGE or n.startswith(PACKAGE + ".")}))


# The on-disk cache of _imports_of once code_manifest has loaded it: {file: [mtime_ns, size, imports]}, the
# files relative to ROOT; `_stored_changed` says it has entries the file lacks.
_STORED: dict[str, list] = {}
_stored_changed = False


def _imports(module: str) -> tuple[str, ...]:
    global _stored_changed
    path = module_file(module)
    stat = path.stat()
    key = str(path.relative_to(ROOT))
    stored = _STORED.get(key)
    if stored is not None and stored[:2] == [stat.st_mtime_ns, stat.st_size]:
        return tuple(stored[2])
    found = _imports_of(str(path), stat.st_mtime_ns, stat.st_size)
    _STORED[key] = [stat.st_mtime_ns, stat.st_size, list(found)]
    _stored_changed = True
    return found


@functools.cache
def _load_import_cache(path: Path) -> None:
    """Fill _STORED from `path` once per process (a missing or unreadable cache is rebuilt)."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(stored, dict):
        _STORED.update({k: v for k, v in stored.items() if isinstance(v, list) and len(v) == 3})


def _save_import_cache(path: Path) -> None:
    global _stored_changed
    from benchmark.io import write_atomic

    if _stored_changed:
        write_atomic(path, json.dumps(_STORED, sort_keys=True) + "\n")
        _stored_changed = False


def closure(roots: Iterable[str]) -> list[str]:
    """Every package module reachable from `roots` by imports, parents included, sorted."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        if not module_file(module).exists():  # `from benchmark.x import name`: name is not a module
            continue
        seen.add(module)
        todo += _parents(module)
        todo += _imports(module)
    return sorted(seen)


def cell_roots(spec_settings: dict) -> list[str]:
    """The modules a cell starts from: the trainer and the modules of the targets its settings name."""
    targets = [spec_settings["method_target"], spec_settings["model_target"], *spec_settings.get("extra_targets", [])]
    return [TRAINER, *(target.partition(":")[0] for target in targets)]


@functools.lru_cache(maxsize=256)
def _closure_of(roots: tuple[str, ...], stamp: tuple) -> tuple[str, ...]:  # noqa: ARG001 (stamp keys the cache)
    return tuple(closure(roots))


def code_files(roots: Iterable[str]) -> list[str]:
    """Repository-relative paths of the files of closure(roots) (Snakemake inputs of a cell)."""
    roots = tuple(sorted(set(roots)))
    return [str(module_file(m).relative_to(ROOT)) for m in _closure_of(roots, _tree_stamp())]


def _tree_stamp() -> tuple:
    """Changes whenever a package file is edited, added or removed (keys the closure cache)."""
    return tuple((str(p), p.stat().st_mtime_ns) for p in sorted((ROOT / PACKAGE).rglob("*.py")))


def code_hash(files: Iterable[str]) -> str:
    """A short sha256 over the files' paths and bytes: the code identity recorded with a result."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


MANIFESTS = Path("results") / "code"


def code_manifest(roots: Iterable[str], folder: Path = MANIFESTS) -> str:
    """One file that stands for the files of closure(roots) as a Snakemake input; returns its path.

    It lists the files with their sha256 and takes the newest file's modification time, so Snakemake's
    mtime trigger reruns a job exactly when listing the files themselves would, with one input per job
    instead of about thirty (a 10,000-cell DAG spends seconds on the rest). Rewritten (atomically) only
    when its content changes; a cluster job's Snakemake writes the same bytes.
    """
    from benchmark.io import file_hash, write_atomic

    roots = sorted(set(roots))
    cache = folder / "imports.json"
    _load_import_cache(cache)
    files = code_files(roots)
    _save_import_cache(cache)
    text = json.dumps({"roots": roots, "files": {f: file_hash(ROOT / f) for f in files}}, indent=1) + "\n"
    path = folder / f"{hashlib.sha256(' '.join(roots).encode()).hexdigest()[:12]}.json"
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    newest = max((ROOT / f).stat().st_mtime_ns for f in files)
    if path.stat().st_mtime_ns != newest:
        os.utime(path, ns=(newest, newest))
    return str(path)
