"""The official class hierarchies of the semantic cosine losses, downloaded with pinned checksums.

Barz & Denzler publish them in github.com/cvjena/semantic-embeddings as "parent child" files: the
WordNet-derived CIFAR-100 tree (Cifar-Hierarchy/, leaves 0..99, height 8) and three CUB trees
(CUB-Hierarchy/, leaves = CUB class ids 1..200: Wikispecies, height 6; balanced, height 7; flat,
height 4; the paper's Table 3). They are fetched from one pinned commit; the md5 and sha256 below
are those of the published files, so a moved branch, a changed file or a mirror serving something
else fails loudly instead of silently changing the class embeddings.

The dataset settings file may override `url` (a mirror), and then also `md5`/`sha256`, under
`hierarchies: {<name>: {...}}`. Every downloaded file is also parsed: it must be a tree whose
leaves are exactly the dataset's class ids.

The built-in two-level CIFAR-100 hierarchy (20 superclasses, `coarse_hierarchy_text`) needs no
download: it comes from the prepared CIFAR-100 metadata.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.errors import DataError

REPOSITORY = "cvjena/semantic-embeddings"
COMMIT = "c236a34daec5bcd054cbcb973207a8338c2f2cd1"
BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/"

# name -> where the file is in the repository, its checksums, the dataset and the leaf ids.
HIERARCHIES: dict[str, dict] = {
    "cifar100": {
        "path": "Cifar-Hierarchy/cifar.parent-child.txt",
        "md5": "7cdbaf9443fe897e4ab3f73b6fa24ee5",
        "sha256": "72bf4a9ee95ec9ad40ee22b007ca16b0ac232f4c2849aaef8e5d478fc50e28c6",
        "dataset": "cifar100", "first_id": 0, "classes": 100,
    },
    "cub_wikispecies": {
        "path": "CUB-Hierarchy/cub_wikispecies.parent-child.txt",
        "md5": "6b33c0630cbd77a62fe8c5cca3c3ac02",
        "sha256": "b7f69521687b57d804352708ffabd7a973d8b31b3d5b4121db1e444bd678f085",
        "dataset": "cub", "first_id": 1, "classes": 200,
    },
    "cub_balanced": {
        "path": "CUB-Hierarchy/cub_balanced.parent-child.txt",
        "md5": "cf9c0b9a2027c65e3b3a868f126a34af",
        "sha256": "cfd823168bc3e73e6ac510008ae89182f1faaafadae1fc3a2c520cd9fd6796ef",
        "dataset": "cub", "first_id": 1, "classes": 200,
    },
    "cub_flat": {
        "path": "CUB-Hierarchy/cub_flat.parent-child.txt",
        "md5": "55eb40ff1ceabd564764b823488f1315",
        "sha256": "6420979cdd24075ff86297342599ce2f8770ab5fb64845f886a6406670e6d3c5",
        "dataset": "cub", "first_id": 1, "classes": 200,
    },
}


def source(name: str, settings: dict | None = None) -> dict:
    """The url, md5 and sha256 of hierarchy `name`, with the overrides of `settings` applied."""
    if name not in HIERARCHIES:
        raise DataError(f"unknown hierarchy {name!r}; known: {', '.join(sorted(HIERARCHIES))}")
    entry = HIERARCHIES[name]
    overrides = settings or {}
    unknown = sorted(set(overrides) - {"url", "md5", "sha256"})
    if unknown:
        raise DataError(f"hierarchy {name}: unknown settings {unknown}; allowed: url, md5, sha256")
    return {"url": BASE_URL + entry["path"], "md5": entry["md5"], "sha256": entry["sha256"], **overrides}


def download(name: str, settings: dict | None, out: Path) -> Path:
    """Fetch hierarchy `name` to `out`, verify md5 and sha256 and that it is a tree over the classes.

    A file that fails any check is deleted, so `out` exists only when it is the expected file.
    """
    from benchmark.data.download import fetch
    from benchmark.hierarchy import parse_hierarchy
    from benchmark.io import file_hash

    entry, src = HIERARCHIES.get(name, {}), source(name, settings)
    out = Path(out)
    fetch(src["url"], out, src["md5"], dataset=entry["dataset"], force=True)
    try:
        got = file_hash(out)
        if src["sha256"] and got != src["sha256"]:
            raise DataError(f"dataset {entry['dataset']}, file {out.name}: sha256 mismatch for the download from "
                            f"{src['url']}: expected {src['sha256']}, got {got}; check the URL or mirror")
        ids = range(entry["first_id"], entry["first_id"] + entry["classes"])
        try:
            parse_hierarchy(out, entry["classes"], ids)
        except ValueError as error:
            raise DataError(f"dataset {entry['dataset']}, file {out.name} (from {src['url']}): not a class "
                            f"hierarchy of the {entry['classes']} classes: {error}") from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def coarse_hierarchy_text(prepared: Path) -> str:
    """The CIFAR-100 superclass tree (root -> 20 superclasses -> 100 classes) of a prepared CIFAR-100."""
    import json

    from benchmark.hierarchy import coarse_label_hierarchy

    meta_path = Path(prepared) / "metadata.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} does not exist; prepare CIFAR-100 first (`dvc repro prepare_raw@cifar100`)")
    metadata = json.loads(meta_path.read_text())
    if "fine_to_coarse" not in metadata:
        raise DataError(f"{meta_path} has no 'fine_to_coarse'; it is not a prepared CIFAR-100")
    return coarse_label_hierarchy(metadata["fine_to_coarse"]).to_text()
