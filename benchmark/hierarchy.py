"""Class hierarchies and the semantic class embeddings derived from them.

Barz & Denzler, "Hierarchy-based Image Embeddings for Semantic Image Retrieval" (WACV 2019),
used as phi_sem(y) by the semantic cosine losses of Barz & Denzler (WACV 2020):

- A hierarchy file holds one "parent child" integer pair per line; its leaves are the classes
  and a leaf's integer is its class label. Blank lines and '#' comments are ignored. The
  official CUB files number the classes 1..200 (CUB's own ids): pass `class_ids` (the leaf id of
  each class index, e.g. the prepared data's "class_ids", 1..200) so leaf class_ids[i] is class i.
- height(node) = length of the longest path from the node down to a leaf (leaves: 0).
- d(a, b) = height(LCS(a, b)) / height(root), LCS = lowest common subsumer; S = 1 - d.
- The "unitsphere" embedding places the classes on the unit sphere with E E^T = S exactly.

The workflow computes a dataset's embeddings once per hierarchy (`python -m benchmark embed`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHODS = ("unitsphere",)


def _ids(values: Iterable[int], limit: int = 10) -> str:
    values = sorted(values)
    shown = ", ".join(map(str, values[:limit]))
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


@dataclass(frozen=True)
class Hierarchy:
    """A validated tree whose leaves are exactly the class ids; class index i is leaf class_ids[i].

    By default class_ids = 0..C-1, so a leaf's integer is the class label the data uses.
    """

    parent: dict[int, int]  # child -> parent; the root has no entry
    children: dict[int, tuple[int, ...]]  # internal node -> children, in file order
    root: int
    heights: dict[int, int]
    class_ids: tuple[int, ...]
    source: str

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[int, int]],
        num_classes: int | None = None,
        source: str = "<edges>",
        class_ids: Sequence[int] | None = None,
    ) -> Hierarchy:
        """Build and validate a hierarchy from (parent, child) pairs; ValueError names `source`.

        Requires a tree (one parent per node, no cycles, a single root) whose leaves are exactly
        `class_ids` (default 0..num_classes-1; num_classes defaults to the number of leaves).
        Repeating an identical edge is harmless and ignored.
        """

        def fail(problem: str) -> ValueError:
            return ValueError(f"hierarchy {source}: {problem}")

        parent: dict[int, int] = {}
        children: dict[int, list[int]] = {}
        for p, c in edges:
            p, c = int(p), int(c)
            if p == c:
                raise fail(f"node {c} is its own parent (a cycle)")
            if c in parent:
                if parent[c] == p:
                    continue
                raise fail(f"node {c} has more than one parent ({parent[c]} and {p}); a tree is required")
            parent[c] = p
            children.setdefault(p, []).append(c)
        if not parent:
            raise fail("no 'parent child' edges")

        nodes = set(parent) | set(children)
        roots = nodes - set(parent)
        if not roots:
            raise fail("every node has a parent, so the hierarchy contains a cycle; a tree needs one root")
        if len(roots) > 1:
            raise fail(f"{len(roots)} roots ({_ids(roots)}); a tree needs a single root")
        (root,) = roots

        order = [root]  # breadth-first: every parent before its children
        for node in order:
            order.extend(children.get(node, ()))
        if len(order) != len(nodes):
            unreachable = _ids(nodes - set(order))
            raise fail(f"nodes {unreachable} are not reachable from root {root}: they form a cycle")

        leaves = {n for n in nodes if n not in children}
        if class_ids is None:
            class_ids = range(len(leaves) if num_classes is None else num_classes)
        ids = tuple(int(c) for c in class_ids)
        if num_classes is not None and len(ids) != num_classes:
            raise fail(f"{len(ids)} class ids given for {num_classes} classes")
        if len(set(ids)) != len(ids):
            raise fail("the class ids must be distinct")
        expected = set(ids)
        contiguous = ids == tuple(range(ids[0], ids[0] + len(ids))) if ids else True
        wanted = f"{ids[0]}..{ids[-1]}" if contiguous and ids else f"the {len(ids)} given ids"
        if leaves != expected:
            problems = []
            missing = expected - leaves
            inner = missing & set(children)
            if inner:
                problems.append(f"class ids {_ids(inner)} have children (class ids must be leaves)")
            if missing - inner:
                problems.append(f"class ids {_ids(missing - inner)} do not occur")
            if leaves - expected:
                problems.append(f"leaves {_ids(leaves - expected)} are not class ids")
            raise fail(
                f"the leaves must be exactly the class ids {wanted} "
                f"({len(leaves)} leaves found): {'; '.join(problems)}"
            )

        heights: dict[int, int] = {}
        for node in reversed(order):
            kids = children.get(node)
            heights[node] = 1 + max(heights[k] for k in kids) if kids else 0
        return cls(
            parent=parent,
            children={p: tuple(cs) for p, cs in children.items()},
            root=root,
            heights=heights,
            class_ids=ids,
            source=source,
        )

    @property
    def nodes(self) -> set[int]:
        return set(self.heights)

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def max_height(self) -> int:
        return self.heights[self.root]

    def ancestors(self, node: int) -> list[int]:
        """`node` and its ancestors, from `node` up to the root."""
        path = [node]
        while path[-1] in self.parent:
            path.append(self.parent[path[-1]])
        return path

    def lcs(self, a: int, b: int) -> int:
        """Lowest common subsumer: the deepest node that is an ancestor of both (or equal)."""
        above_a = set(self.ancestors(a))
        return next(n for n in self.ancestors(b) if n in above_a)

    def dissimilarity(self, a: int, b: int) -> float:
        return self.heights[self.lcs(a, b)] / self.max_height

    def similarity_matrix(self) -> np.ndarray:
        """S[i, j] = 1 - height(LCS) / max_height for class indices i, j; float64, diagonal 1."""
        n = self.num_classes
        paths = [self.ancestors(leaf) for leaf in self.class_ids]
        sets = [set(p) for p in paths]
        sim = np.eye(n)
        for a in range(n):
            for b in range(a + 1, n):
                lcs = next(node for node in paths[b] if node in sets[a])
                sim[a, b] = sim[b, a] = 1.0 - self.heights[lcs] / self.max_height
        return sim

    def to_text(self) -> str:
        """The hierarchy as a parent-child file (parents breadth-first from the root)."""
        lines = []
        order = [self.root]
        for node in order:
            for child in self.children.get(node, ()):
                lines.append(f"{node} {child}")
                order.append(child)
        return "\n".join(lines) + "\n"


def parse_hierarchy(
    path: str | Path, num_classes: int | None = None, class_ids: Sequence[int] | None = None
) -> Hierarchy:
    """Read a "parent child" file; ValueError naming the file (and line) on any problem."""
    path = Path(path)
    edges = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            edges.append((int(fields[0]), int(fields[1])))
        except ValueError:
            raise ValueError(
                f"hierarchy {path}:{lineno}: expected two integers 'parent child', got {raw.strip()!r}"
            ) from None
    return Hierarchy.from_edges(edges, num_classes=num_classes, source=str(path), class_ids=class_ids)


def fine_to_coarse_from_labels(fine: Sequence[int], coarse: Sequence[int]) -> list[int]:
    """The fine -> coarse class map from per-image label pairs (CIFAR-100 stores both per image)."""
    mapping: dict[int, int] = {}
    for f, c in zip(np.asarray(fine).tolist(), np.asarray(coarse).tolist(), strict=True):
        if mapping.setdefault(f, c) != c:
            raise ValueError(f"fine label {f} occurs with coarse labels {mapping[f]} and {c}")
    if set(mapping) != set(range(len(mapping))):
        raise ValueError(f"fine labels must be 0..{len(mapping) - 1}, got {_ids(mapping)}")
    return [mapping[f] for f in range(len(mapping))]


def coarse_label_hierarchy(fine_to_coarse: Sequence[int]) -> Hierarchy:
    """Two-level tree root -> coarse classes -> fine classes (CIFAR-100: 20 superclasses, 100 classes).

    Node ids: fine classes 0..C-1, coarse class k is node C + k, the root is C + K. Two fine
    classes of one superclass have S = 0.5, of different superclasses S = 0. This is not the
    paper's CIFAR-100 hierarchy (a WordNet tree of height 8); it needs no download.
    """
    num_fine = len(fine_to_coarse)
    coarse = sorted(set(fine_to_coarse))
    if coarse != list(range(len(coarse))):
        raise ValueError(f"coarse labels must be 0..K-1 with every one used, got {_ids(coarse)}")
    root = num_fine + len(coarse)
    edges = [(root, num_fine + k) for k in coarse]
    edges += [(num_fine + int(k), f) for f, k in enumerate(fine_to_coarse)]
    return Hierarchy.from_edges(edges, num_classes=num_fine, source="<coarse labels>")


def unitsphere_embedding(similarity: np.ndarray) -> np.ndarray:
    """Unit-norm rows E (n x n, lower-triangular) with E E^T = S.

    The official construction places class 0 at e_0 and each next class c by solving the triangular
    system over the classes already placed, then setting coordinate c to sqrt(1 - ||x||^2): that is
    exactly the Cholesky factor of S, which numpy computes (tests/test_hierarchy.py checks it against the
    official embeddings). S must be positive definite; a hierarchy's S always is (a sum of non-negative
    multiples of block indicators, one per node, with a positive term for every leaf).
    """
    sim = np.asarray(similarity, dtype=np.float64)
    n = sim.shape[0]
    if sim.ndim != 2 or sim.shape != (n, n) or n == 0:
        raise ValueError(f"similarity matrix must be square and non-empty, got shape {sim.shape}")
    symmetric = np.allclose(sim, sim.T, rtol=0.0, atol=1e-12)
    if not (symmetric and np.allclose(np.diag(sim), 1.0, rtol=0.0, atol=1e-12)):
        raise ValueError("similarity matrix must be symmetric with ones on the diagonal")
    try:
        return np.linalg.cholesky(sim)
    except np.linalg.LinAlgError:
        raise ValueError("similarity matrix is not positive definite") from None


def embed_hierarchy(hierarchy: Hierarchy, method: str = "unitsphere") -> np.ndarray:
    if method not in METHODS:
        raise ValueError(f"unknown class embedding method {method!r}; known: {', '.join(METHODS)}")
    return unitsphere_embedding(hierarchy.similarity_matrix())


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_embeddings(
    path: str | Path, embeddings: np.ndarray, hierarchy_sha256: str, method: str, **extra: object
) -> None:
    """Write `path` (.npy) and `path` with suffix .json: hierarchy sha256, method, shape, `extra`.

    Both atomically, the sidecar first: a .npy that exists always has its sidecar.
    """
    from benchmark.io import write_atomic

    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"embedding file must end in .npy, got {path}")
    meta = {"hierarchy_sha256": hierarchy_sha256, "method": method, "shape": list(embeddings.shape), **extra}
    write_atomic(_sidecar(path), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(embeddings, dtype=np.float64))
    write_atomic(path, buffer.getvalue())


def dataset_embeddings(hierarchy_path: str | Path, metadata: dict, class_ids: str = "labels") -> np.ndarray:
    """Class embeddings of a prepared dataset (its metadata.json) from a hierarchy file.

    class_ids "labels": leaf i is class i; "metadata": leaf metadata["class_ids"][i] is class i
    (CUB: the dataset's ids 1..200, which the official CUB hierarchies use).
    """
    num_classes = len(metadata["classes"])
    ids = None
    if class_ids == "metadata":
        if "class_ids" not in metadata:
            raise ValueError(
                f"prepared dataset {metadata.get('name')} has no class_ids in its metadata; "
                "set class_ids: labels for this dataset"
            )
        ids = metadata["class_ids"]
    elif class_ids != "labels":
        raise ValueError(f"class_ids must be 'labels' or 'metadata', got {class_ids!r}")
    return embed_hierarchy(parse_hierarchy(hierarchy_path, num_classes, ids))


def load_embeddings(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read embeddings and their sidecar; ValueError when they do not match."""
    path = Path(path)
    meta = json.loads(_sidecar(path).read_text())
    emb = np.load(path)
    if list(emb.shape) != meta.get("shape"):
        raise ValueError(f"{path} has shape {list(emb.shape)} but its sidecar says {meta.get('shape')}")
    return emb, meta
