"""NABirds' own taxonomy as a class hierarchy for the semantic losses (data/hierarchies/nabirds.txt).

Barz & Denzler's NABirds semantic results (Table 2: cosine 72.1, cosine + CE 73.8) use the taxonomy
shipped with the dataset. nabirds.tar.gz holds it as nabirds/hierarchy.txt: one "child_id
parent_id" pair per line over all 1,011 ids of classes.txt (root 0 "Birds", which has no line;
orders, families, species and the visual categories), i.e. the reverse of the "parent child"
order our hierarchy files use. This order is what the dataset's own loader (`load_hierarchy` in
Visipedia's nabirds.py: `child_id, parent_id = pieces`) reads, and the official code of the paper
has the file as NAB-Hierarchy/hierarchy.txt (github.com/cvjena/semantic-embeddings; its README
says to pass `--is_a` for "child-parent instead of parent-child tuples"): 1,010 lines, children
1..1010 under root 0. That copy is what the facts below were checked on; that it is byte for byte
the archive's file is unconfirmed.

The classes are the ids that label images, in ascending order, exactly as the preparation finds
them (`cub_layout.read_lists`, the prepared metadata's extra.class_ids). The tree is pruned to the
ancestors of those classes, so taxonomy nodes without any image below them cannot change the
heights, and with them the class similarities. Nodes left with one child stay, as in
the official file (e.g. species with a single visual category). In the real dataset nothing is
pruned: its 1,011 ids have exactly 555 leaves, they are the 555 image classes (the official
NAB-Hierarchy/nab_class_index.unitsphere.json maps labels 0..554 to ids 295..1010, all leaves),
and the tree has height 4 (leaves at depth 3 or 4).

An image class that is an internal node (an ancestor of another image class) cannot be a leaf of
the embedding; the real data has none, so such a file is rejected with a DataError rather than
patched with an invented leaf. Run by DVC (stage hierarchy_nabirds):

    python -m benchmark.data.nabirds_hierarchy --raw data/raw/nabirds --out data/hierarchies/nabirds.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.data.errors import DataError
from benchmark.hierarchy import Hierarchy

NAME = "nabirds"
ARCHIVE = "nabirds.tar.gz"
HEADER = "# NABirds taxonomy (nabirds.tar.gz: nabirds/hierarchy.txt), pruned to the classes with images; parent child\n"


def read_child_parent(path: Path) -> dict[int, int]:
    """child -> parent from NABirds' hierarchy.txt ("child_id parent_id" per line)."""
    from benchmark.data.sources import read_table

    parent: dict[int, int] = {}
    for number, (child_text, parent_text) in enumerate(read_table(NAME, path, 2), 1):
        try:
            child, up = int(child_text), int(parent_text)
        except ValueError:
            raise DataError(f"dataset {NAME}: {path.name} row {number} is {child_text!r} {parent_text!r}; expected "
                            f"two integer class ids 'child_id parent_id'") from None
        if parent.setdefault(child, up) != up:
            raise DataError(f"dataset {NAME}: {path.name} gives class {child} two parents ({parent[child]} and {up}); "
                            f"the taxonomy must be a tree")
    return parent


def pruned_hierarchy(parent: dict[int, int], class_ids: Sequence[int], source: str = "hierarchy.txt") -> Hierarchy:
    """The taxonomy restricted to `class_ids` and their ancestors; its leaves are exactly `class_ids`.

    DataError (naming the ids) when a class has no line in the taxonomy, when a class is an
    ancestor of another class, or when what remains is not a single tree.
    """
    ids = [int(c) for c in class_ids]
    missing = [c for c in ids if c not in parent]
    if missing:
        raise DataError(f"dataset {NAME}: class ids {missing[:10]} label images but have no 'child parent' line in "
                        f"{source} ({len(missing)} in all); the annotation files do not match")
    kept: set[int] = set()
    for node in ids:
        while node not in kept:  # stops at the root, or at a node already walked (also on a cycle)
            kept.add(node)
            if node not in parent:
                break
            node = parent[node]
    edges = [(parent[node], node) for node in sorted(kept) if node in parent]
    inner = sorted(set(ids) & {up for up, _ in edges})
    if inner:
        raise DataError(f"dataset {NAME}: class ids {inner[:10]} label images but are ancestors of other image classes "
                        f"in {source}; every class must be a leaf of the semantic hierarchy (in the real NABirds, "
                        f"all 555 image classes are leaves): the annotation files are not the expected ones")
    try:
        return Hierarchy.from_edges(edges, len(ids), source=source, class_ids=ids)
    except ValueError as error:
        raise DataError(f"dataset {NAME}: {error}") from None


def build(raw: Path) -> tuple[str, Hierarchy, int]:
    """The "parent child" text of the pruned taxonomy of the NABirds extracted under `raw`.

    Returns the text, the hierarchy and the number of nodes in the full taxonomy.
    """
    from benchmark.data.cub_layout import read_lists
    from benchmark.data.sources import extracted

    root = extracted(NAME, {"raw_dir": str(raw)}, ARCHIVE) / "nabirds"
    lists = read_lists(NAME, root)  # the same class ids as the preparation: labels of images.txt's images
    class_ids = sorted({int(c) for c in lists["class_ids"]})
    path = root / "hierarchy.txt"
    parent = read_child_parent(path)
    hierarchy = pruned_hierarchy(parent, class_ids, source=f"{ARCHIVE}: nabirds/hierarchy.txt")
    return HEADER + hierarchy.to_text(), hierarchy, len(set(parent) | set(parent.values()))


def write(raw: Path, out: Path) -> tuple[Hierarchy, int]:
    """Write the pruned taxonomy to `out` atomically; the hierarchy and the full taxonomy's node count.

    The file is read back with the parser the embeddings use, so a file that exists is one they accept.
    """
    from benchmark.hierarchy import parse_hierarchy
    from benchmark.io import write_atomic

    text, hierarchy, total = build(raw)
    write_atomic(out, text)
    if parse_hierarchy(out, hierarchy.num_classes, hierarchy.class_ids).parent != hierarchy.parent:
        Path(out).unlink()
        raise AssertionError(f"{out} does not read back as the hierarchy written")  # a bug, not bad data
    return hierarchy, total


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.data.nabirds_hierarchy",
                                     description="NABirds' taxonomy as a 'parent child' class hierarchy (run by DVC)")
    parser.add_argument("--raw", type=Path, default=Path("data/raw/nabirds"),
                        help="the NABirds raw folder (download@nabirds), with nabirds/nabirds/hierarchy.txt")
    parser.add_argument("--out", type=Path, required=True, help="the hierarchy file to write")
    args = parser.parse_args(argv)
    try:
        hierarchy, total = write(args.raw, args.out)
    except DataError as error:  # one line naming the dataset and file, as the other data stages end
        sys.exit(f"data error: {error}")
    print(f"NABirds hierarchy: {hierarchy.num_classes} classes, {len(hierarchy.nodes)} of {total} taxonomy nodes "
          f"kept, height {hierarchy.max_height} -> {args.out}")


if __name__ == "__main__":
    main()
