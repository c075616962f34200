"""DEIC's official CUB-200-2011 splits, downloaded with pinned checksums, and mapped onto prepared CUB.

The data-efficient image classification benchmark (Brigato, Barz, Iocchi & Denzler, "Image
classification with small datasets: overview and benchmark", ICCV-W 2021 / arXiv 2108.13122;
github.com/cvjena/deic) trains on 20 images per class of CUB's official training set and
validates on the rest of it; the test set is CUB's official test set. It publishes the split as
four files datasets/cub/{train,val,trainval,test}.txt, one "<class folder>/<image name> <label>"
line each (the image name without its ".jpg"; label = class folder number - 1, 0..199):

    train     4,000 lines (20 per class)      val   1,994 lines (the other training images)
    trainval  5,994 lines (per class: its train lines, then its val lines) = CUB's official train set
    test      5,794 lines                     = CUB's official test set

The files are fetched from one pinned commit. The md5 and sha256 below were computed from the
stored copy of that commit (each file rebuilt byte for byte from it: line counts, sizes and every
16,000-character boundary checked; trainval checked against train + val), not from a live
download; every download is verified against them, so a moved branch, a changed file or a mirror
serving something else fails loudly instead of silently changing the split.

The dataset settings may override, under `deic_splits: {cub: {...}}`, `base_url` (a mirror of
the folder holding the four files; the checksums stay pinned) and, per split, any of `url`,
`md5`, `sha256` and `lines` (the expected line count), e.g. `{train: {url: ..., md5: ...}}`.

`deic_split_indices` maps the lines onto the prepared CUB arrays, whose images keep the order of
CUB's images.txt (benchmark/data/cub_layout.py). The prepared folder does not store image paths,
so they come from the extracted archive (`cub_relative_paths`). A line matches the image whose
relative path, without its extension, is the line's path without its extension. Run by DVC
(stage deic_splits@cub):

    python -m benchmark.data.deic --dataset cub --params config/datasets.yaml --out data/splits/deic_cub
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from benchmark.data.errors import DataError

REPOSITORY = "cvjena/deic"
COMMIT = "0fc5ca58a36de00a01b70ebc9666c1af6609c699"
SPLITS = ("train", "val", "trainval", "test")

# dataset -> split -> the file in the repository, its checksums and its published line count.
SPLIT_FILES: dict[str, dict[str, dict]] = {
    "cub": {
        "train": {"path": "datasets/cub/train.txt", "lines": 4000,
                  "md5": "1287ec62755f92c869daca80b374fea7",
                  "sha256": "296fbf3db193d921e5d2dd0579f9d8bfa0bcf9d756432c7c3546b946c7dcbc89"},
        "val": {"path": "datasets/cub/val.txt", "lines": 1994,
                "md5": "60aa5f0c868c79de88e62adec004746d",
                "sha256": "b6cffe47219895bd7ee9131fe77a9f773da2e8eddff4e54a2c65fc3bf99cca06"},
        "trainval": {"path": "datasets/cub/trainval.txt", "lines": 5994,
                     "md5": "bf8c64e7fbdc9daae56385bad681ff28",
                     "sha256": "3733bde4e5daaa8b8f59b792984a38f6c7ad9a59f13ea555560e673f3334233a"},
        "test": {"path": "datasets/cub/test.txt", "lines": 5794,
                 "md5": "b05086e1a70cd5502f9e8b90dc2639c4",
                 "sha256": "c847de4d45b5870b2bb3f207472105b494895a283da1b4ffac44466c558158ec"},
    },
}
SPLIT_KEYS = ("url", "md5", "sha256", "lines")


def _label(dataset: str, split: str) -> str:
    return f"DEIC split {dataset}/{split}.txt"


def source(dataset: str, split: str, settings: dict | None = None) -> dict:
    """The url, md5, sha256 and expected line count of one split file, with the settings' overrides."""
    if dataset not in SPLIT_FILES:
        raise DataError(f"no DEIC split files for dataset {dataset!r}; known: {', '.join(sorted(SPLIT_FILES))}")
    if split not in SPLIT_FILES[dataset]:
        raise DataError(f"{_label(dataset, split)}: unknown split; the splits are {', '.join(SPLITS)}")
    settings = settings or {}
    unknown = sorted(set(settings) - {"base_url", *SPLITS})
    if unknown:
        raise DataError(f"DEIC splits of {dataset}: unknown settings {unknown}; allowed: base_url, {', '.join(SPLITS)}")
    overrides = settings.get(split) or {}
    bad = sorted(set(overrides) - set(SPLIT_KEYS))
    if bad:
        raise DataError(f"{_label(dataset, split)}: unknown settings {bad}; allowed: {', '.join(SPLIT_KEYS)}")
    entry = SPLIT_FILES[dataset][split]
    base = settings.get("base_url") or f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/datasets/{dataset}"
    pinned = {"url": f"{base.rstrip('/')}/{PurePosixPath(entry['path']).name}", "md5": entry["md5"],
              "sha256": entry["sha256"], "lines": entry["lines"]}
    return {**pinned, **overrides}


def read_split(path: Path, label: str) -> list[tuple[str, int]]:
    """The (relative image path, label) pairs of a split file; a DataError names any malformed line."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataError(f"{label}: {path} does not exist; run the download (`dvc repro deic_splits`)") from None
    except UnicodeDecodeError:
        raise DataError(f"{label}: {path} is not ASCII text; it is not a DEIC split file") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or "/" not in fields[0]:
            raise DataError(f"{label}: line {number} is {line!r}, expected '<class folder>/<image> <label>'")
        rows.append((fields[0], int(fields[1])))
    return rows


def download(dataset: str, settings: dict | None, out_dir: Path) -> dict[str, Path]:
    """Fetch the four split files into `out_dir` as <split>.txt, each verified (md5, sha256, lines).

    A file that fails a check is deleted, so a file in `out_dir` is always a verified one.
    """
    from benchmark.data.download import fetch

    out_dir = Path(out_dir)
    paths = {}
    for split in SPLITS:
        src, label = source(dataset, split, settings), _label(dataset, split)
        path = fetch(src["url"], out_dir / f"{split}.txt", src["md5"], dataset=f"{dataset} (DEIC splits)", force=True)
        try:
            got = hashlib.sha256(path.read_bytes()).hexdigest()
            if src["sha256"] and got != src["sha256"]:
                raise DataError(f"{label}: sha256 mismatch for the download from {src['url']}: expected "
                                f"{src['sha256']}, got {got}; check the URL or mirror")
            rows = read_split(path, label)
            if src["lines"] is not None and len(rows) != src["lines"]:
                raise DataError(f"{label}: {len(rows)} lines, expected {src['lines']}; not the published file")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        paths[split] = path
    return paths


def _stem(relative: str) -> str:
    """A relative image path without its extension: the key DEIC's lines and images.txt share."""
    path = PurePosixPath(relative)
    return str(path.with_suffix("")) if path.suffix.lower() in (".jpg", ".jpeg", ".png") else str(path)


def deic_split_indices(
    image_paths: Sequence[str],
    split_files: Mapping[str, Path],
    *,
    train_idx: np.ndarray | None = None,
    test_idx: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    dataset: str = "cub",
) -> dict[str, np.ndarray]:
    """Positions in the prepared arrays of each DEIC split: {train, val, trainval, test}, int64, ascending.

    `image_paths` are the relative paths ("<class folder>/<file>.jpg") of the prepared images in
    their order; `split_files` maps each of the four splits to its file. Every line must name
    exactly one image and appear once; train and val must be disjoint and together be trainval;
    with `train_idx`/`test_idx` (the prepared official split) trainval must be the official training
    set and test the official test set; with `labels`, each line's label must be the image's.
    Any violation raises one DataError line naming the file and line.
    """
    position: dict[str, int] = {}
    for index, relative in enumerate(image_paths):
        key = _stem(relative)
        if key in position:
            raise DataError(f"CUB images {image_paths[position[key]]!r} and {relative!r} differ only in their "
                            f"extension; DEIC's lines cannot tell them apart")
        position[key] = index
    missing = sorted(set(SPLITS) - set(split_files))
    if missing:
        raise DataError(f"DEIC splits of {dataset}: no file given for {missing}")
    result = {}
    for split in SPLITS:
        label = _label(dataset, split)
        seen: dict[int, int] = {}
        indices = []
        for number, (relative, line_label) in enumerate(read_split(split_files[split], label), 1):
            index = position.get(_stem(relative))
            if index is None:
                raise DataError(f"{label}: line {number} names {relative!r}, which is not an image of the prepared "
                                f"{dataset}; the split files do not belong to this archive")
            if index in seen:
                raise DataError(f"{label}: line {number} repeats line {seen[index]} ({relative!r})")
            if labels is not None and int(labels[index]) != line_label:
                raise DataError(f"{label}: line {number} gives {relative!r} label {line_label}, the prepared "
                                f"{dataset} label is {int(labels[index])}; labels are misaligned")
            seen[index] = number
            indices.append(index)
        result[split] = np.sort(np.asarray(indices, dtype=np.int64))
    _check_sets(result, train_idx, test_idx, dataset)
    return result


def _check_sets(result: dict[str, np.ndarray], train_idx: np.ndarray | None, test_idx: np.ndarray | None,
                dataset: str) -> None:
    overlap = np.intersect1d(result["train"], result["val"])
    if overlap.size:
        raise DataError(f"DEIC splits of {dataset}: {overlap.size} image(s) are in both train.txt and val.txt")
    union = np.union1d(result["train"], result["val"])
    if not np.array_equal(union, result["trainval"]):
        raise DataError(f"DEIC splits of {dataset}: trainval.txt is not train.txt + val.txt "
                        f"({np.setxor1d(union, result['trainval']).size} image(s) differ)")
    for name, official, what in (("trainval", train_idx, "training"), ("test", test_idx, "test")):
        if official is not None and not np.array_equal(result[name], np.sort(np.asarray(official))):
            raise DataError(f"DEIC splits of {dataset}: {name}.txt is not the official {what} set of the prepared "
                            f"{dataset} ({np.setxor1d(result[name], official).size} image(s) differ)")


def cub_relative_paths(settings: dict) -> list[str]:
    """The relative image paths of the extracted CUB archive, in images.txt (= prepared) order."""
    from benchmark.data.cub import NAME
    from benchmark.data.cub_layout import read_lists
    from benchmark.data.sources import extracted

    root = extracted(NAME, settings, "CUB_200_2011.tgz") / "CUB_200_2011"
    return [path.relative_to(root / "images").as_posix() for path in read_lists(NAME, root)["paths"]]


def deic_cub_indices(cub_settings: dict, prepared: Path, split_dir: Path) -> dict[str, np.ndarray]:
    """`deic_split_indices` for a prepared CUB, checked against its official split and labels."""
    arrays = {name: np.load(Path(prepared) / f"{name}.npy") for name in ("labels", "train_idx", "test_idx")}
    paths = cub_relative_paths(cub_settings)
    if len(paths) != arrays["labels"].size:
        raise DataError(f"prepared cub at {prepared} has {arrays['labels'].size} images, its archive lists "
                        f"{len(paths)}; prepare it again from this download")
    files = {split: Path(split_dir) / f"{split}.txt" for split in SPLITS}
    return deic_split_indices(paths, files, **arrays)


def main(argv: Sequence[str] | None = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m benchmark.data.deic",
                                     description="fetch and verify DEIC's split files (run by DVC)")
    parser.add_argument("--dataset", default="cub", choices=sorted(SPLIT_FILES))
    parser.add_argument("--params", type=Path, default=Path("config/datasets.yaml"),
                        help="its `deic_splits` entry may set a mirror")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write <split>.txt into")
    args = parser.parse_args(argv)
    try:
        if not args.params.is_file():
            raise DataError(f"dataset settings file {args.params} does not exist")
        params = yaml.safe_load(args.params.read_text()) or {}
        paths = download(args.dataset, (params.get("deic_splits") or {}).get(args.dataset), args.out)
    except DataError as error:  # one line naming the file, as the other data stages end
        sys.exit(f"data error: {error}")
    print(f"DEIC splits of {args.dataset}: {', '.join(paths)} verified -> {args.out}")


if __name__ == "__main__":
    main()
