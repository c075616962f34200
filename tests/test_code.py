"""The code a cell runs (benchmark/code.py): its closure of imports, and the on-disk cache of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import code

ROOTS = ["benchmark.train", "benchmark.losses.focal", "benchmark.models.small_cnn"]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):
    """No import read yet in this process: empty caches, restored afterwards."""
    monkeypatch.setattr(code, "_STORED", {})
    monkeypatch.setattr(code, "_stored_changed", False)
    for cached in (code._load_import_cache, code._closure_of, code._imports_of):
        cached.cache_clear()
    yield
    for cached in (code._load_import_cache, code._closure_of, code._imports_of):
        cached.cache_clear()


def test_a_cell_imports_its_loss_and_the_trainer_but_not_the_tables(fresh) -> None:
    files = code.code_files(ROOTS)
    assert {"benchmark/losses/focal.py", "benchmark/train/loop.py", "benchmark/losses/__init__.py"} <= set(files)
    assert "benchmark/aggregate.py" not in files and "benchmark/losses/cosine.py" not in files


def test_the_manifest_keeps_the_imports_it_read_and_a_rerun_reads_them_back(fresh, tmp_path: Path) -> None:
    manifest = Path(code.code_manifest(ROOTS, folder=tmp_path))
    listed = json.loads(manifest.read_text())["files"]
    stored = json.loads((tmp_path / "imports.json").read_text())
    assert set(listed) <= set(stored)
    focal = stored["benchmark/losses/focal.py"]
    assert focal[:2] == [(code.ROOT / "benchmark/losses/focal.py").stat().st_mtime_ns,
                         (code.ROOT / "benchmark/losses/focal.py").stat().st_size]

    # A later process: an entry whose file is unchanged is believed (here it names one more module)...
    stored["benchmark/losses/focal.py"] = [*focal[:2], [*focal[2], "benchmark.aggregate"]]
    # ...an entry for a file edited since (another modification time) is not.
    loop = stored["benchmark/train/loop.py"]
    stored["benchmark/train/loop.py"] = [loop[0] - 1, loop[1], ["benchmark.estimate"]]
    (tmp_path / "imports.json").write_text(json.dumps(stored))
    for cached in (code._load_import_cache, code._closure_of, code._imports_of):
        cached.cache_clear()
    code._STORED.clear()
    files = json.loads(Path(code.code_manifest(ROOTS, folder=tmp_path)).read_text())["files"]
    assert "benchmark/aggregate.py" in files and "benchmark/estimate.py" not in files
    assert json.loads((tmp_path / "imports.json").read_text())["benchmark/train/loop.py"] == loop


def test_an_unreadable_cache_is_rebuilt(fresh, tmp_path: Path) -> None:
    (tmp_path / "imports.json").write_text("{not json")
    expected = code.code_files(ROOTS)
    code._closure_of.cache_clear()
    manifest = json.loads(Path(code.code_manifest(ROOTS, folder=tmp_path)).read_text())
    assert sorted(manifest["files"]) == sorted(expected)
    assert "benchmark/train/loop.py" in json.loads((tmp_path / "imports.json").read_text())
