"""NABirds' taxonomy as a class hierarchy (benchmark/data/nabirds_hierarchy.py), fast.

The fixture archive (tests/fixtures/archives.py) carries hierarchy.txt in the real layout, "child_id
parent_id" per line over every id of classes.txt, with leaves and an internal node that have no
images. The stage must turn it into a "parent child" tree over exactly the image classes, which the
embedding code accepts with the prepared metadata's class ids. The DVC stage itself runs in
tests/test_data_workflow.py::test_nabirds_hierarchy_stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import archives

from benchmark.data import nabirds
from benchmark.data.errors import DataError
from benchmark.data.nabirds_hierarchy import build, main, pruned_hierarchy, read_child_parent, write
from benchmark.hierarchy import dataset_embeddings, parse_hierarchy


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> tuple[Path, archives.Fixture]:
    """The fixture archive placed by hand and extracted by the real download: the raw folder."""
    folder = tmp_path_factory.mktemp("nabirds")
    fixture = archives.nabirds(folder / "manual")
    raw = folder / "raw" / "nabirds"
    nabirds.download({"raw_dir": str(raw), "manual_dir": str(folder / "manual"), "sources": fixture.sources(None)})
    return raw, fixture


def test_fixture_taxonomy_becomes_the_pruned_tree_over_the_image_classes(extracted, tmp_path):
    raw, fixture = extracted
    out = tmp_path / "nabirds.txt"
    hierarchy, total = write(raw, out)
    assert total == 13 and hierarchy.class_ids == (317, 616, 757)
    text = out.read_text()
    assert text.startswith("# NABirds taxonomy") and text.count("\n") == 1 + len(fixture.extra["hierarchy_edges"])

    ids = fixture.extra["class_ids"]  # what preparation stores as the metadata's class_ids
    parsed = parse_hierarchy(out, len(ids), ids)
    assert sorted((p, c) for c, p in parsed.parent.items()) == sorted(fixture.extra["hierarchy_edges"])
    assert not parsed.nodes & {33, 313, 611, 964}  # no images below them
    assert parsed.root == 0 and parsed.max_height == 4 and parsed.children[412] == (757,)

    metadata = {"name": "nabirds", "classes": fixture.classes, "class_ids": ids}
    emb = dataset_embeddings(out, metadata, "metadata")
    sim = emb @ emb.T  # Mallard male / female share the species (height 1 of 4); the warbler only the root
    assert np.allclose(sim, [[1, 0.75, 0], [0.75, 1, 0], [0, 0, 1]], atol=1e-12)


def test_the_class_ids_are_those_preparation_stores(extracted):
    raw, fixture = extracted
    built = nabirds.build({"raw_dir": str(raw), "resolution": 8, "workers": 1})
    _, hierarchy, _ = build(raw)
    assert list(hierarchy.class_ids) == built["extra"]["class_ids"] == fixture.extra["class_ids"]


def lines(path: Path, pairs: list[tuple[int, int]]) -> Path:
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    return path


def test_child_parent_order_is_checked(tmp_path):
    child_parent = [(1, 0), (2, 0), (10, 1), (11, 1), (20, 2)]
    assert read_child_parent(lines(tmp_path / "hierarchy.txt", child_parent)) == {1: 0, 2: 0, 10: 1, 11: 1, 20: 2}
    # a "parent child" file read as NABirds' "child parent" gives the root several parents
    with pytest.raises(DataError, match="gives class 0 two parents"):
        read_child_parent(lines(tmp_path / "hierarchy.txt", [(p, c) for c, p in child_parent]))
    (tmp_path / "bad.txt").write_text("1 0\n2 birds\n")
    with pytest.raises(DataError, match="dataset nabirds: bad.txt row 2 .* two integer class ids"):
        read_child_parent(tmp_path / "bad.txt")


def test_pruning_and_what_cannot_be_a_class():
    parent = {1: 0, 2: 0, 10: 1, 11: 1, 20: 2, 21: 20}
    tree = pruned_hierarchy(parent, [10, 21])
    assert tree.parent == {1: 0, 2: 0, 10: 1, 20: 2, 21: 20} and tree.max_height == 3
    with pytest.raises(DataError, match=r"class ids \[99\] label images but have no 'child parent' line"):
        pruned_hierarchy(parent, [10, 99])
    # an image class above another image class: rejected, not patched (the real data has none)
    with pytest.raises(DataError, match=r"class ids \[1\] label images but are ancestors of other image classes"):
        pruned_hierarchy(parent, [1, 10, 21])
    with pytest.raises(DataError, match="dataset nabirds: hierarchy x: 2 roots"):
        pruned_hierarchy({10: 1, 20: 2}, [10, 20], source="x")


def test_cli_error_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "nabirds.txt"
    with pytest.raises(SystemExit) as caught:
        main(["--raw", str(tmp_path / "raw" / "nabirds"), "--out", str(out)])
    message = str(caught.value.code)
    assert message.startswith("data error: dataset nabirds: ") and "\n" not in message
    assert "download@nabirds" in message and not out.exists()
