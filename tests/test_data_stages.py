"""The data layer's wiring, fast: registry, dvc.yaml and config/datasets.yaml agree; CLI errors are
one line; the chunked statistics are exact; a prepared folder round-trips and a damaged one is one error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO

from benchmark.__main__ import main
from benchmark.data.errors import DataError
from benchmark.data.facts import DatasetFacts, counts, expected_facts
from benchmark.data.hierarchies import HIERARCHIES, source
from benchmark.data.prepared import channel_stats, data_hash, load_prepared, write_prepared
from benchmark.data.settings import load_settings
from benchmark.data.stages import content_params_json, expand, stage_writing
from benchmark.registry import DATASETS, dataset_module

DVC_YAML = REPO / "dvc.yaml"
PARAMS = REPO / "config" / "datasets.yaml"
DOWNLOADED = [name for name in DATASETS if hasattr(dataset_module(name), "SOURCES")]


def test_every_dataset_has_settings_and_stages():
    params = yaml.safe_load(PARAMS.read_text())
    assert set(DOWNLOADED) == {"cub", "nabirds", "cars", "flowers", "mit67", "cifar100"}
    for name in DATASETS:
        assert isinstance(params[name], dict), name
        stage = stage_writing(f"data/prepared/{name}", DVC_YAML)
        assert all((REPO / path).is_file() for path in stage.code), stage.code
        module = DATASETS[name].replace(".", "/") + ".py"  # cub_deic_224 shares benchmark/data/cub_deic.py
        assert module in stage.code and "benchmark/data/prepared.py" in stage.code, name
        if name in DOWNLOADED:
            assert stage.name == f"prepare_raw@{name}" and stage.upstream == [f"data/raw/{name}"]
            assert params[name]["raw_dir"] == f"data/raw/{name}"
            assert stage_writing(f"data/raw/{name}", DVC_YAML).name == f"download@{name}"
        elif stage.upstream:  # derived from another dataset's download (CUB with DEIC's split)
            assert stage.name.endswith(f"@{name}") and all(stage_writing(p, DVC_YAML) for p in stage.upstream)
            assert not any(p.startswith("data/prepared/") for p in stage.upstream)
        else:  # built in: no download
            assert stage.name == f"prepare@{name}"
    assert stage_writing("data/prepared/nabirds", DVC_YAML).code.count("benchmark/data/cub_layout.py") == 1
    assert {params["cub"]["resolution"], params["nabirds"]["resolution"], params["cars"]["resolution"],
            params["flowers"]["resolution"], params["mit67"]["resolution"]} == {512, 256}
    assert params["cifar100"]["test_set"] in ("cifar", "cifair")


def test_every_hierarchy_has_a_stage_and_settings():
    params = yaml.safe_load(PARAMS.read_text())
    for name, entry in HIERARCHIES.items():
        assert params["hierarchies"][name] == {}
        stage = stage_writing(f"data/hierarchies/{name}.txt", DVC_YAML)
        assert stage.name == f"hierarchy@{name}" and all((REPO / p).is_file() for p in stage.code)
        url = source(name)["url"]
        assert url.startswith("https://raw.githubusercontent.com/cvjena/semantic-embeddings/")
        assert url.endswith(entry["path"]) and len(entry["md5"]) == 32 and len(entry["sha256"]) == 64
    coarse = stage_writing("data/hierarchies/cifar100_coarse.txt", DVC_YAML)
    assert coarse.prepared == ["data/prepared/cifar100"]
    # NABirds' taxonomy comes from its downloaded archive, not from a URL or the prepared images
    nab = stage_writing("data/hierarchies/nabirds.txt", DVC_YAML)
    assert nab.name == "hierarchy_nabirds" and nab.upstream == ["data/raw/nabirds"] and nab.prepared == []
    assert "benchmark/data/nabirds_hierarchy.py" in nab.code and all((REPO / p).is_file() for p in nab.code)
    assert "python -m benchmark.data.nabirds_hierarchy --raw data/raw/nabirds" in json.loads(nab.definition)["cmd"]
    assert "nabirds" not in HIERARCHIES and "nabirds" not in params["hierarchies"]
    assert source("cub_flat", {"url": "http://mirror/x"})["url"] == "http://mirror/x"
    with pytest.raises(DataError, match="unknown settings"):
        source("cub_flat", {"sha1": "x"})


def test_stage_expansion(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(yaml.safe_dump({"stages": {
        "make": {"foreach": ["a", "b"], "do": {"cmd": "x ${item}", "deps": ["src/${item}.py", "raw/${item}"],
                                               "outs": [{"out/${item}": {"persist": True}}]}},
        "fetch": {"cmd": "y", "deps": ["src/fetch.py"], "outs": ["raw/a", "raw/b"]},
    }}))
    stages = expand(dvc_yaml)
    assert sorted(stages) == ["fetch", "make@a", "make@b"]
    stage = stage_writing("out/b", dvc_yaml)
    assert (stage.name, stage.code, stage.upstream) == ("make@b", ["src/b.py"], ["raw/b"])
    assert json.loads(stage.definition)["cmd"] == "x b"
    assert stage.definition != stage_writing("out/a", dvc_yaml).definition
    with pytest.raises(KeyError, match="out/c"):
        stage_writing("out/c", dvc_yaml)


def test_content_params_json_leaves_out_how_data_is_fetched(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("cub: {resolution: 16, crop: center, workers: 8, url: 'http://mirror', "
                      "sources: {a.tgz: {md5: x, url: 'http://m2'}}}\nhierarchies: {cub_flat: {}}\n")
    assert json.loads(content_params_json("cub", params=params)) == {"crop": "center", "resolution": 16,
                                                                     "sources": {"a.tgz": {"md5": "x"}}}
    assert content_params_json("hierarchies", "cub_flat", params=params) == "{}"
    assert content_params_json("nabirds", params=params) == "null"


def test_channel_stats_exact_in_chunks():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (40, 5, 7, 3), dtype=np.uint8)
    idx = np.sort(rng.choice(40, 25, replace=False))
    pixels = images[idx].reshape(-1, 3).astype(np.float64) / 255.0
    want = (pixels.mean(0).round(6).tolist(), pixels.std(0).round(6).tolist())
    for chunk in (1, 35, 36, 10_000):
        assert channel_stats(images, idx, chunk) == want
    flat = np.full((3, 2, 2, 1), 7, np.uint8)
    assert channel_stats(flat, np.arange(3)) == ([round(7 / 255, 6)], [0.0])


def test_prepared_folder_round_trips_and_damage_is_one_error(tmp_path):
    images = np.arange(6 * 4 * 4 * 3, dtype=np.uint8).reshape(6, 4, 4, 3)
    labels = np.array([0, 1, 0, 1, 0, 1])
    meta = write_prepared(tmp_path / "toy", "toy", images, labels, np.array([3, 0, 1, 2]), np.arange(4, 6),
                          ["a", "b"])
    loaded = load_prepared(tmp_path / "toy")
    assert np.array_equal(loaded.images, images) and np.array_equal(loaded.labels, labels)
    assert loaded.train_idx.tolist() == [0, 1, 2, 3] and loaded.test_idx.tolist() == [4, 5]  # sorted on write
    assert loaded.metadata == meta and loaded.num_classes == 2 and meta["train_per_class"] == [2, 2]
    other = write_prepared(tmp_path / "other", "toy", images, labels[::-1].copy(), np.arange(4), np.arange(4, 6),
                           ["a", "b"])
    assert data_hash(other) != data_hash(meta)  # other labels: other data
    with pytest.raises(ValueError, match="overlap"):
        write_prepared(tmp_path / "bad", "toy", images, labels, np.arange(5), np.arange(4, 6), ["a", "b"])
    (tmp_path / "toy" / "labels.npy").unlink()
    with pytest.raises(DataError, match="incomplete or damaged"):
        load_prepared(tmp_path / "toy")
    with pytest.raises(DataError, match="not found at"):
        load_prepared(tmp_path / "missing")


def test_expected_counts():
    published = DatasetFacts(classes=200, train=5994, test=5794, min_train_per_class=29)
    assert expected_facts("cub", published, {}) == (published, "the published counts")
    override = {"classes": 3, "train": 8, "test": 4, "min_train_per_class": 2}
    facts, what = expected_facts("cub", published, {"expected_counts": override})
    assert facts == DatasetFacts(**override) and "expected_counts" in what
    for bad in ({"classes": 3}, {**override, "train": "8"}, {**override, "extra": 1}, [3, 8, 4, 2]):
        with pytest.raises(ValueError, match="dataset cub: expected_counts must give"):
            expected_facts("cub", published, {"expected_counts": bad})
    found = counts(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 2, 4]), np.array([3, 5]), 3)
    assert found == {"classes": 3, "train": 4, "test": 2, "min_train_per_class": 1}


def cli_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    message = str(caught.value.code)
    assert message.startswith("data error: ") and "\n" not in message
    return message


def test_cli_data_errors_are_one_line(tmp_path, capsys):
    params = tmp_path / "datasets.yaml"
    params.write_text(yaml.safe_dump({"cub": {"raw_dir": str(tmp_path / "raw" / "cub"), "resolution": 8},
                                      "digits": {"split_seed": 0, "test_per_class": 50}}))
    out = str(tmp_path / "prepared" / "cub")
    assert "download@cub" in cli_error(capsys, "prepare", "cub", "--params", str(params), "--out", out)
    assert "no entry for dataset 'flowers'" in cli_error(capsys, "prepare", "flowers", "--params", str(params),
                                                         "--out", out)
    assert "unknown dataset 'birds'" in cli_error(capsys, "download", "birds", "--params", str(params))
    assert "set raw_dir: data/raw/cub" in cli_error(capsys, "download", "cub", "--params", str(params),
                                                    "--out", "data/raw/cub")
    assert "built in" in cli_error(capsys, "download", "digits", "--params", str(params))
    assert not (tmp_path / "prepared").exists()


def test_cli_count_check_names_dataset_numbers_and_files(tmp_path, capsys):
    params = tmp_path / "datasets.yaml"
    params.write_text(yaml.safe_dump({"digits": {"split_seed": 0, "test_per_class": 50,
                                                 "expected_counts": {"classes": 10, "train": 1297, "test": 500,
                                                                     "min_train_per_class": 125}}}))
    message = cli_error(capsys, "prepare", "digits", "--params", str(params), "--out", str(tmp_path / "digits"))
    assert "dataset digits" in message and "(10, 1297, 500, 124)" in message and "(10, 1297, 500, 125)" in message
    assert not (tmp_path / "digits").exists()


def test_settings_file_must_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_settings("cub", tmp_path / "missing.yaml")


def test_real_settings_load():
    assert Path(load_settings("cub", PARAMS)["raw_dir"]) == Path("data/raw/cub")
