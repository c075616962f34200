"""DEIC's CUB split files: pinned sources, verified downloads from 127.0.0.1, and the mapping onto a
prepared CUB (the tiny fixture archive in the real layout), with one-line errors for bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO
from fixtures import archives
from fixtures.http import serve

from benchmark.data import cub, deic
from benchmark.data.errors import DataError
from benchmark.data.prepared import write_prepared
from benchmark.data.stages import stage_writing

# The CUB fixture: 3 classes x 4 images at positions 4c..4c+3; official train flags per class
# [1,0,1,1], [0,1,1,0], [1,1,0,1] -> train positions 0,2,3, 5,6, 8,9,11; test 1, 4, 7, 10.
OFFICIAL_TRAIN = [0, 2, 3, 5, 6, 8, 9, 11]
OFFICIAL_TEST = [1, 4, 7, 10]
# A DEIC-style split of it: the first training image of each class is "train", the rest "val".
DEIC_TRAIN = [0, 5, 8]
DEIC_VAL = [2, 3, 6, 9, 11]


def digests(data: bytes) -> dict:
    return {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def deic_line(relative: str, label: int) -> str:
    """DEIC's format: the relative path without ".jpg", a space, the label."""
    return f"{relative.removesuffix('.jpg')} {label}\n"


def split_texts(paths: list[str], labels: list[int], train=DEIC_TRAIN, val=DEIC_VAL, test=OFFICIAL_TEST) -> dict:
    """The four files' text; trainval lists, per class, its train lines then its val lines (as DEIC's)."""
    trainval = [i for c in sorted(set(labels)) for i in [*(j for j in train if labels[j] == c),
                                                         *(j for j in val if labels[j] == c)]]
    order = {"train": train, "val": val, "trainval": trainval, "test": test}
    return {split: "".join(deic_line(paths[i], labels[i]) for i in order[split]) for split in deic.SPLITS}


@pytest.fixture(scope="module")
def prepared_cub(tmp_path_factory) -> dict:
    """The CUB fixture archive downloaded from 127.0.0.1, extracted and built; its paths and arrays."""
    root = tmp_path_factory.mktemp("cub")
    fixture = archives.cub(root / "www")
    settings = {"raw_dir": str(root / "raw" / "cub"), "resolution": 8, "workers": 1,
                "sources": fixture.sources(None)}
    with serve(root / "www") as server:
        cub.download({**settings, "sources": fixture.sources(server.base)})
    built = cub.build(settings)
    assert built["train_idx"].tolist() == OFFICIAL_TRAIN and built["test_idx"].tolist() == OFFICIAL_TEST
    prepared = root / "prepared" / "cub"
    write_prepared(prepared, "cub", built["images"], built["labels"], built["train_idx"], built["test_idx"],
                   built["classes"], built["extra"])
    return {"settings": settings, "built": built, "prepared": prepared, "paths": deic.cub_relative_paths(settings)}


def write_splits(folder: Path, texts: dict) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, text in texts.items():
        files[split] = folder / f"{split}.txt"
        files[split].write_text(text)
    return files


def mapping(prepared_cub: dict, files: dict) -> dict:
    built = prepared_cub["built"]
    return deic.deic_split_indices(prepared_cub["paths"], files, train_idx=built["train_idx"],
                                   test_idx=built["test_idx"], labels=built["labels"])


# --- pinned sources -----------------------------------------------------------------------------

def test_pinned_sources_point_at_one_commit():
    counts = {}
    for split in deic.SPLITS:
        src = deic.source("cub", split)
        assert src["url"] == f"https://raw.githubusercontent.com/cvjena/deic/{deic.COMMIT}/datasets/cub/{split}.txt"
        assert len(src["md5"]) == 32 and len(src["sha256"]) == 64
        counts[split] = src["lines"]
    # DEIC's published line counts; trainval = train + val = CUB's 5,994 official training images
    assert counts == {"train": 4000, "val": 1994, "trainval": 5994, "test": 5794}
    assert counts["train"] + counts["val"] == counts["trainval"]
    assert len({deic.source("cub", s)["sha256"] for s in deic.SPLITS}) == 4


def test_source_overrides():
    mirror = deic.source("cub", "val", {"base_url": "http://mirror/deic/"})
    assert mirror["url"] == "http://mirror/deic/val.txt"
    assert mirror["sha256"] == deic.SPLIT_FILES["cub"]["val"]["sha256"]  # a mirror keeps the pinned checksums
    own = deic.source("cub", "test", {"test": {"url": "http://x/t.txt", "md5": "a" * 32, "lines": 3}})
    assert own["url"] == "http://x/t.txt" and own["md5"] == "a" * 32 and own["lines"] == 3
    assert own["sha256"] == deic.SPLIT_FILES["cub"]["test"]["sha256"]
    with pytest.raises(DataError, match="unknown settings"):
        deic.source("cub", "train", {"mirror": "x"})
    with pytest.raises(DataError, match="cub/train.txt: unknown settings"):
        deic.source("cub", "train", {"train": {"sha1": "x"}})
    with pytest.raises(DataError, match="no DEIC split files"):
        deic.source("flowers", "train")


# --- download -----------------------------------------------------------------------------------

@pytest.fixture
def served_splits(tmp_path, prepared_cub):
    """The four tiny split files on 127.0.0.1 and settings pinning their checksums and line counts."""
    built = prepared_cub["built"]
    texts = split_texts(prepared_cub["paths"], built["labels"].tolist())
    www = tmp_path / "www"
    write_splits(www, texts)
    with serve(www) as server:
        settings = {"base_url": server.base} | {
            split: {**digests(text.encode()), "lines": text.count("\n")} for split, text in texts.items()}
        yield server, settings, texts


def test_download_verifies_and_keeps_exact_bytes(tmp_path, served_splits):
    server, settings, texts = served_splits
    paths = deic.download("cub", settings, tmp_path / "splits")
    assert list(paths) == list(deic.SPLITS)
    for split, path in paths.items():
        assert path == tmp_path / "splits" / f"{split}.txt" and path.read_text() == texts[split]
    assert [name for name, _, status in server.requests] == [f"{s}.txt" for s in deic.SPLITS]
    assert all(status == 200 for _, _, status in server.requests)


@pytest.mark.parametrize("key", ["md5", "sha256"])
def test_wrong_checksum_fails_with_one_line_naming_the_file(tmp_path, served_splits, key):
    _, settings, _ = served_splits
    settings["val"][key] = "0" * len(settings["val"][key])
    with pytest.raises(DataError) as error:
        deic.download("cub", settings, tmp_path / "splits")
    message = str(error.value)
    assert "\n" not in message and "val.txt" in message
    if key == "md5":  # download.fetch checks the md5 on the .part file
        assert "checksum mismatch" in message and f"expected md5 {'0' * 32}" in message
    else:
        assert message.startswith("DEIC split cub/val.txt: sha256 mismatch") and f"expected {'0' * 64}" in message
    assert not (tmp_path / "splits" / "val.txt").exists()  # a bad file never stays
    assert (tmp_path / "splits" / "train.txt").exists()  # the verified one before it does


def test_wrong_line_count_fails(tmp_path, served_splits):
    _, settings, _ = served_splits
    settings["test"]["lines"] = 5794  # the published count; the tiny file has 4 lines
    with pytest.raises(DataError, match=r"^DEIC split cub/test.txt: 4 lines, expected 5794"):
        deic.download("cub", settings, tmp_path / "splits")
    assert not (tmp_path / "splits" / "test.txt").exists()


def test_cli_downloads_and_errors_in_one_line(tmp_path, served_splits, capsys):
    _, settings, texts = served_splits
    params = tmp_path / "datasets.yaml"
    params.write_text(yaml.safe_dump({"deic_splits": {"cub": settings}}))
    deic.main(["--dataset", "cub", "--params", str(params), "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "trainval.txt").read_text() == texts["trainval"]
    assert "verified" in capsys.readouterr().out
    settings["train"]["sha256"] = "f" * 64
    params.write_text(yaml.safe_dump({"deic_splits": {"cub": settings}}))
    with pytest.raises(SystemExit) as stop:
        deic.main(["--params", str(params), "--out", str(tmp_path / "out2")])
    assert str(stop.value).startswith("data error: DEIC split cub/train.txt: sha256 mismatch")
    assert "\n" not in str(stop.value)


# --- mapping onto the prepared CUB --------------------------------------------------------------

def test_mapping_on_the_fixture_archive(tmp_path, prepared_cub):
    paths, labels = prepared_cub["paths"], prepared_cub["built"]["labels"].tolist()
    # the archive's paths carry ".jpg", DEIC's lines do not; position i is the i-th line of images.txt
    assert paths[5] == "002.Laysan_Albatross/Laysan_Albatross_0001_6.jpg"
    files = write_splits(tmp_path, split_texts(paths, labels))
    assert files["val"].read_text().splitlines()[0] == "001.Black_footed_Albatross/Black_footed_Albatross_0002_3 0"
    result = mapping(prepared_cub, files)
    assert {k: v.tolist() for k, v in result.items()} == {
        "train": DEIC_TRAIN, "val": DEIC_VAL, "trainval": OFFICIAL_TRAIN, "test": OFFICIAL_TEST}
    assert all(v.dtype == np.int64 for v in result.values())


def test_deic_cub_indices_reads_prepared_folder_and_archive(tmp_path, prepared_cub):
    built = prepared_cub["built"]
    write_splits(tmp_path / "splits", split_texts(prepared_cub["paths"], built["labels"].tolist()))
    result = deic.deic_cub_indices(prepared_cub["settings"], prepared_cub["prepared"], tmp_path / "splits")
    assert result["trainval"].tolist() == OFFICIAL_TRAIN and result["val"].tolist() == DEIC_VAL


def one_line_error(prepared_cub: dict, files: dict) -> str:
    with pytest.raises(DataError) as error:
        mapping(prepared_cub, files)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_line_naming_a_missing_image(tmp_path, prepared_cub):
    texts = split_texts(prepared_cub["paths"], prepared_cub["built"]["labels"].tolist())
    texts["test"] += "003.Sooty_Albatross/Sooty_Albatross_0099_796366 2\n"
    message = one_line_error(prepared_cub, write_splits(tmp_path, texts))
    assert message.startswith("DEIC split cub/test.txt: line 5 names '003.Sooty_Albatross/Sooty_Albatross_0099_796366'")


def test_duplicate_line(tmp_path, prepared_cub):
    texts = split_texts(prepared_cub["paths"], prepared_cub["built"]["labels"].tolist())
    texts["val"] += texts["val"].splitlines(keepends=True)[1]
    message = one_line_error(prepared_cub, write_splits(tmp_path, texts))
    assert message.startswith("DEIC split cub/val.txt: line 6 repeats line 2")


def test_trainval_must_be_train_plus_val(tmp_path, prepared_cub):
    paths, labels = prepared_cub["paths"], prepared_cub["built"]["labels"].tolist()
    texts = split_texts(paths, labels)
    texts["trainval"] = "".join(line for line in texts["trainval"].splitlines(keepends=True)
                                if not line.startswith(paths[11].removesuffix(".jpg")))
    assert one_line_error(prepared_cub, write_splits(tmp_path, texts)) == (
        "DEIC splits of cub: trainval.txt is not train.txt + val.txt (1 image(s) differ)")


def test_train_and_val_must_be_disjoint(tmp_path, prepared_cub):
    texts = split_texts(prepared_cub["paths"], prepared_cub["built"]["labels"].tolist(), val=[0, *DEIC_VAL])
    texts["trainval"] = "".join(dict.fromkeys(texts["trainval"].splitlines(keepends=True)))  # each image once
    assert "in both train.txt and val.txt" in one_line_error(prepared_cub, write_splits(tmp_path, texts))


def test_trainval_must_be_the_official_training_set(tmp_path, prepared_cub):
    # image 11 (official train) swapped for 10 (official test) in val and so in trainval: train + val is
    # still trainval, but no longer CUB's training set
    val = [*DEIC_VAL[:-1], 10]
    texts = split_texts(prepared_cub["paths"], prepared_cub["built"]["labels"].tolist(), val=val,
                        test=[1, 4, 7, 11])
    message = one_line_error(prepared_cub, write_splits(tmp_path, texts))
    assert message == ("DEIC splits of cub: trainval.txt is not the official training set of the prepared cub "
                       "(2 image(s) differ)")


def test_labels_must_match_the_prepared_labels(tmp_path, prepared_cub):
    labels = prepared_cub["built"]["labels"].tolist()
    shifted = [(label + 1) % 3 for label in labels]  # an off-by-one class numbering
    texts = split_texts(prepared_cub["paths"], shifted)
    message = one_line_error(prepared_cub, write_splits(tmp_path, texts))
    assert message.startswith("DEIC split cub/train.txt: line 1 gives") and "labels are misaligned" in message


def test_malformed_line(tmp_path, prepared_cub):
    texts = split_texts(prepared_cub["paths"], prepared_cub["built"]["labels"].tolist())
    texts["train"] = texts["train"].replace(" 0\n", "\n", 1)
    assert "line 1 is" in one_line_error(prepared_cub, write_splits(tmp_path, texts))


# --- workflow wiring ----------------------------------------------------------------------------

def test_dvc_stage_and_settings():
    stage = stage_writing("data/splits/deic_cub", REPO / "dvc.yaml")
    assert stage.name == "deic_splits@cub" and stage.upstream == []
    assert "benchmark/data/deic.py" in stage.code and all((REPO / path).is_file() for path in stage.code)
    assert yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())["deic_splits"] == {"cub": {}}
