"""Class hierarchies, LCS-height similarities and the "unitsphere" class embedding.

Small hierarchies are checked against similarities and embeddings worked out by hand; the
official hierarchies (downloaded by the workflow into data/hierarchies/, or any folder named by
$REFERENCE_HIERARCHIES holding them under their official or their workflow names; checked against their
pinned sha256) against their known node counts and heights and E E^T = S.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from benchmark.__main__ import main
from benchmark.data.hierarchies import HIERARCHIES
from benchmark.hierarchy import (
    Hierarchy,
    coarse_label_hierarchy,
    dataset_embeddings,
    embed_hierarchy,
    fine_to_coarse_from_labels,
    load_embeddings,
    parse_hierarchy,
    save_embeddings,
    unitsphere_embedding,
)
from benchmark.io import file_hash

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("REFERENCE_HIERARCHIES", REPO / "data" / "hierarchies"))

# A 4-leaf tree of unequal depth (root 10, height 3):
#
#   10 ─┬─ 0
#       └─ 11 ─┬─ 1
#              └─ 12 ─┬─ 2
#                     └─ 3
#
# heights: leaves 0, node 12: 1, node 11: 2, root 10: 3.
# LCS(0, x) = 10 -> d = 3/3, S = 0;  LCS(1, 2) = LCS(1, 3) = 11 -> d = 2/3, S = 1/3;
# LCS(2, 3) = 12 -> d = 1/3, S = 2/3.
UNEVEN = """
# parent child
10 0
10 11

11 1   # a leaf directly below a node of height 2
11 12
12 2
12 3
"""
UNEVEN_S = np.array([
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 1 / 3, 1 / 3],
    [0.0, 1 / 3, 1.0, 2 / 3],
    [0.0, 1 / 3, 2 / 3, 1.0],
])


def _write(tmp_path: Path, text: str, name: str = "h.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _check_embedding(emb: np.ndarray, sim: np.ndarray) -> None:
    n = sim.shape[0]
    assert emb.shape == (n, n)
    assert emb.dtype == np.float64
    np.testing.assert_allclose(emb @ emb.T, sim, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=0, atol=1e-10)
    assert np.all(np.triu(emb, k=1) == 0.0), "unitsphere embeddings are lower-triangular"


# --------------------------------------------------------------------------- small hierarchies

def test_uneven_tree_heights_lcs_and_similarity(tmp_path):
    h = parse_hierarchy(_write(tmp_path, UNEVEN))
    assert h.root == 10 and h.num_classes == 4
    assert h.nodes == {0, 1, 2, 3, 10, 11, 12}
    assert h.heights == {0: 0, 1: 0, 2: 0, 3: 0, 12: 1, 11: 2, 10: 3}
    assert h.max_height == 3
    assert h.lcs(0, 3) == 10 and h.lcs(1, 2) == 11 and h.lcs(3, 2) == 12 and h.lcs(2, 2) == 2
    assert h.dissimilarity(1, 3) == pytest.approx(2 / 3)
    sim = h.similarity_matrix()
    np.testing.assert_allclose(sim, UNEVEN_S, rtol=0, atol=1e-15)


def test_uneven_tree_embedding_by_hand(tmp_path):
    emb = embed_hierarchy(parse_hierarchy(_write(tmp_path, UNEVEN), 4))
    # e0 = (1, 0, 0, 0); e1: x = S10 / 1 = 0 -> (0, 1, 0, 0);
    # e2: x = (0, 1/3), last = sqrt(1 - 1/9) = sqrt(8)/3;
    # e3: x0 = 0, x1 = 1/3, (1/3)(1/3) + (sqrt(8)/3) x2 = 2/3 -> x2 = 5 / (3 sqrt(8)),
    #     last = sqrt(1 - 1/9 - 25/72) = sqrt(39/72).
    expected = np.array([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 1 / 3, math.sqrt(8) / 3, 0.0],
        [0.0, 1 / 3, 5 / (3 * math.sqrt(8)), math.sqrt(39 / 72)],
    ])
    np.testing.assert_allclose(emb, expected, rtol=0, atol=1e-14)
    _check_embedding(emb, UNEVEN_S)


def test_balanced_tree_and_leaf_order_in_file(tmp_path):
    # root 7 -> 5 -> {2, 0}, root 7 -> 6 -> {3, 1}; edges listed out of order.
    text = "6 1\n7 6\n5 2\n6 3\n7 5\n5 0\n"
    h = parse_hierarchy(_write(tmp_path, text))
    assert h.max_height == 2
    sim = h.similarity_matrix()
    # Siblings (0, 2) and (1, 3): LCS height 1 -> S = 1/2; across the root: S = 0.
    expected = np.array([
        [1.0, 0.0, 0.5, 0.0],
        [0.0, 1.0, 0.0, 0.5],
        [0.5, 0.0, 1.0, 0.0],
        [0.0, 0.5, 0.0, 1.0],
    ])
    np.testing.assert_allclose(sim, expected, rtol=0, atol=1e-15)
    _check_embedding(embed_hierarchy(h), expected)


def test_flat_tree_gives_one_hot_embeddings():
    h = Hierarchy.from_edges([(5, c) for c in range(5)])
    assert h.max_height == 1
    np.testing.assert_allclose(embed_hierarchy(h), np.eye(5), rtol=0, atol=1e-15)


def test_class_ids_map_class_indices_to_leaves(tmp_path):
    # UNEVEN with the classes numbered 1..4 (as the CUB files number theirs).
    path = _write(tmp_path, "10 1\n10 11\n11 2\n11 12\n12 3\n12 4\n")
    h = parse_hierarchy(path, class_ids=[1, 2, 3, 4])
    assert h.num_classes == 4 and h.class_ids == (1, 2, 3, 4)
    np.testing.assert_allclose(h.similarity_matrix(), UNEVEN_S, rtol=0, atol=1e-15)
    # Class index i is leaf class_ids[i], in the order given (not sorted).
    order = [4, 1, 3, 2]
    perm = [3, 0, 2, 1]
    shuffled = parse_hierarchy(path, 4, class_ids=order).similarity_matrix()
    np.testing.assert_allclose(shuffled, UNEVEN_S[np.ix_(perm, perm)], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="3 class ids given for 4 classes"):
        parse_hierarchy(path, 4, class_ids=[1, 2, 3])
    with pytest.raises(ValueError, match="distinct"):
        parse_hierarchy(path, class_ids=[1, 1, 3, 4])
    with pytest.raises(ValueError, match="the 4 given ids .*class ids 7 do not occur; leaves 3 are not class ids"):
        parse_hierarchy(path, class_ids=[1, 2, 7, 4])
    with pytest.raises(ValueError, match="ids 0..3 .*class ids 0 do not occur; leaves 4 are not class ids"):
        parse_hierarchy(path)


def test_to_text_round_trips(tmp_path):
    h = parse_hierarchy(_write(tmp_path, UNEVEN))
    again = parse_hierarchy(_write(tmp_path, h.to_text(), "again.txt"))
    assert again.parent == h.parent and again.heights == h.heights


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize(
    ("text", "num_classes", "message"),
    [
        ("", None, "no 'parent child' edges"),
        ("# only a comment\n\n", None, "no 'parent child' edges"),
        ("2 0\n2 1\n3 1\n4 2\n4 3\n", None, "node 1 has more than one parent"),
        ("2 0\n2 1\n3 3\n", None, "node 3 is its own parent"),
        ("2 0\n3 1\n", None, "2 roots"),
        ("2 0\n2 1\n3 4\n4 3\n", None, "not reachable from root 2: they form a cycle"),
        ("1 0\n0 1\n", None, "every node has a parent"),
        ("3 0\n3 2\n", None, "class ids 1 do not occur"),
        ("3 0\n3 1\n3 2\n", 4, "class ids 3 have children"),
        ("4 0\n4 1\n4 2\n4 5\n", None, "leaves 5 are not class ids"),
        ("3 0\n3 1\n3 2\n", 2, "leaves 2 are not class ids"),
        ("2 0\n2 1\n2\n", None, r":3: expected two integers 'parent child', got '2'"),
        ("2 0\n2 x\n", None, r":2: expected two integers"),
        ("2 0 1\n", None, r":1: expected two integers"),
    ],
)
def test_invalid_hierarchies_name_file_and_problem(tmp_path, text, num_classes, message):
    path = _write(tmp_path, text, "broken.parent-child.txt")
    with pytest.raises(ValueError, match=message) as info:
        parse_hierarchy(path, num_classes)
    assert str(path) in str(info.value)


def test_duplicate_identical_edges_are_tolerated(tmp_path):
    h = parse_hierarchy(_write(tmp_path, "2 0\n2 1\n2 0\n"))
    assert h.children == {2: (0, 1)}


def test_unitsphere_rejects_matrices_it_cannot_embed():
    with pytest.raises(ValueError, match="square"):
        unitsphere_embedding(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric with ones"):
        unitsphere_embedding(np.array([[1.0, 0.2], [0.3, 1.0]]))
    with pytest.raises(ValueError, match="not positive definite"):
        unitsphere_embedding(np.ones((3, 3)))  # three identical classes


# --------------------------------------------------------------------------- coarse-label hierarchy

def test_coarse_label_hierarchy():
    fine_to_coarse = [1, 0, 1, 2, 0, 2]  # 6 fine classes in 3 superclasses
    h = coarse_label_hierarchy(fine_to_coarse)
    assert h.num_classes == 6 and h.max_height == 2 and len(h.nodes) == 6 + 3 + 1
    assert h.root == 9 and h.parent[0] == 6 + 1 and h.parent[1] == 6 + 0
    sim = h.similarity_matrix()
    same = np.equal.outer(fine_to_coarse, fine_to_coarse)
    np.testing.assert_allclose(sim, np.where(np.eye(6, dtype=bool), 1.0, np.where(same, 0.5, 0.0)))
    _check_embedding(embed_hierarchy(h), sim)


def test_cifar100_shaped_coarse_hierarchy():
    fine_to_coarse = [f % 20 for f in range(100)]
    h = coarse_label_hierarchy(fine_to_coarse)
    assert h.num_classes == 100 and len(h.nodes) == 121 and h.max_height == 2
    sim = h.similarity_matrix()
    assert sorted(np.unique(sim).tolist()) == [0.0, 0.5, 1.0]
    _check_embedding(embed_hierarchy(h), sim)


def test_fine_to_coarse_from_labels():
    fine = [2, 0, 1, 2, 0]
    coarse = [1, 0, 1, 1, 0]
    assert fine_to_coarse_from_labels(fine, coarse) == [0, 1, 1]
    with pytest.raises(ValueError, match="fine label 2 occurs with coarse labels 1 and 0"):
        fine_to_coarse_from_labels([2, 0, 1, 2], [1, 0, 1, 0])
    with pytest.raises(ValueError, match="coarse labels must be 0..K-1"):
        coarse_label_hierarchy([0, 2, 2])


# --------------------------------------------------------------------------- storage

def test_save_load_and_embed_verb(tmp_path, capsys):
    path = _write(tmp_path, UNEVEN)
    emb = embed_hierarchy(parse_hierarchy(path, 4))
    out = tmp_path / "emb" / "uneven.unitsphere.npy"
    save_embeddings(out, emb, file_hash(path), "unitsphere")
    loaded, meta = load_embeddings(out)
    np.testing.assert_array_equal(loaded, emb)
    assert meta == {"hierarchy_sha256": file_hash(path), "method": "unitsphere", "shape": [4, 4]}
    assert json.loads(out.with_suffix(".json").read_text()) == meta
    np.save(out, emb[:3])  # an array its sidecar does not describe
    with pytest.raises(ValueError, match=r"shape \[3, 4\] but its sidecar says \[4, 4\]"):
        load_embeddings(out)
    with pytest.raises(ValueError, match=".npy"):
        save_embeddings(tmp_path / "x.pickle", emb, "0", "unitsphere")

    # The workflow's verb: classes from a prepared dataset's metadata, leaves by label or by class id.
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "metadata.json").write_text(json.dumps({"name": "toy", "classes": list("abcd"), "class_ids": [4, 1, 3, 2]}))
    main(["embed", "--hierarchy", str(path), "--data", str(data), "--out", str(tmp_path / "cli.npy")])
    assert "(4, 4)" in capsys.readouterr().out
    cli, cli_meta = load_embeddings(tmp_path / "cli.npy")
    np.testing.assert_array_equal(cli, emb)
    assert cli_meta["dataset"] == "toy" and cli_meta["hierarchy_sha256"] == file_hash(path)
    by_id = _write(tmp_path, "10 1\n10 11\n11 2\n11 12\n12 3\n12 4\n", "ids.txt")  # UNEVEN, leaves 1..4
    perm = [3, 0, 2, 1]  # class i is leaf class_ids[i]: 4, 1, 3, 2 = UNEVEN's leaves 3, 0, 2, 1
    ids = dataset_embeddings(by_id, json.loads((data / "metadata.json").read_text()), "metadata")
    np.testing.assert_allclose(ids @ ids.T, UNEVEN_S[np.ix_(perm, perm)], rtol=0, atol=1e-12)
    with pytest.raises(SystemExit, match="class ids"):
        main(["embed", "--hierarchy", str(path), "--data", str(data), "--class-ids", "metadata",
              "--out", str(tmp_path / "bad.npy")])


# --------------------------------------------------------------------------- official hierarchies

REAL = [
    # name (benchmark.data.hierarchies), nodes, max height
    ("cifar100", 163, 8),
    ("cub_wikispecies", 383, 6),
    ("cub_balanced", 421, 7),
    ("cub_flat", 368, 4),
]


def _reference(name: str) -> Path | None:
    """The official file of hierarchy `name` in REFERENCE, under its workflow or its official name."""
    for path in (REFERENCE / f"{name}.txt", REFERENCE / Path(HIERARCHIES[name]["path"]).name):
        if path.is_file():
            return path
    return None


@pytest.mark.parametrize(("name", "nodes", "height"), REAL)
def test_official_hierarchies(name, nodes, height):
    path = _reference(name)
    if path is None:
        pytest.skip(f"hierarchy {name} not found in {REFERENCE} (set REFERENCE_HIERARCHIES or run the workflow)")
    entry = HIERARCHIES[name]
    assert file_hash(path) == entry["sha256"], f"{path} is not the official {name}"
    first_id, classes = entry["first_id"], entry["classes"]
    ids = list(range(first_id, first_id + classes))
    h = parse_hierarchy(path, classes, class_ids=ids)
    assert (h.num_classes, len(h.nodes), h.max_height) == (classes, nodes, height)
    sim = h.similarity_matrix()
    # S takes values (H - k) / H only, and agrees with the pairwise LCS definition.
    assert np.allclose(sim * height, np.round(sim * height))
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, classes, size=(50, 2)):
        assert sim[a, b] == pytest.approx(1.0 - h.dissimilarity(ids[a], ids[b]))
    _check_embedding(embed_hierarchy(h), sim)
    # The CUB files number classes from 1 (CUB's own ids): reading them from 0 must fail loudly.
    shifted = list(range(1 - first_id, 1 - first_id + classes))
    with pytest.raises(ValueError, match=str(path)):
        parse_hierarchy(path, classes, class_ids=shifted)
