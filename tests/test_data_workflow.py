"""The paper's datasets end to end through real DVC and Snakemake, on fixture archives over HTTP.

Every dataset's tiny archive (tests/fixtures/archives.py: the real file names and layout) is
served on 127.0.0.1. A temporary copy of the repository points config/datasets.yaml at that
server (NABirds and Cars: files placed by hand in their manual folders, as the real ones must be)
and runs the real stages: download@<dataset> -> prepare_raw@<dataset>, then one training cell per
dataset through Snakemake (the data rule's receipt, the train rule). Bad sources are injected one
at a time: each must end in one error line naming the dataset and the file, with the previously
prepared folder left exactly as it was.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, copy_repo, snakemake, workflow_env
from fixtures import archives
from fixtures.http import Fault, serve

from benchmark.data.hierarchies import HIERARCHIES
from benchmark.data.images import long_side
from benchmark.data.prepared import load_metadata, load_prepared
from benchmark.hierarchy import parse_hierarchy
from benchmark.registry import dataset_module

pytestmark = pytest.mark.slow

DOWNLOADED = ["cub", "nabirds", "cars", "flowers", "mit67", "cifar100"]
MANUAL = {"nabirds", "cars"}  # no download URL: placed by hand in data/manual/<dataset>
RES = 16  # pixels: the fixtures' stored shorter side (CIFAR-100 stays 32)
WIDE = long_side(RES, 1.5)  # the photos' canvas width (crop: whole, max_aspect 1.5): 24
# Copies of the official hierarchy files, to check the pinned checksums against: in a `shared/` folder
# beside the repository (or in it) where the project keeps its reference material. Not committed here
# (third-party files); a checkout without that folder skips the one test that needs them.
REFERENCE = next((p for p in (REPO / "shared", REPO.parent / "shared") if (p / "reference/hierarchies").is_dir()),
                 REPO.parent / "shared") / "reference" / "hierarchies"


# --- fixtures and helpers -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def www(tmp_path_factory) -> tuple[Path, dict[str, archives.Fixture]]:
    folder = tmp_path_factory.mktemp("www")
    return folder, {name: getattr(archives, name)(folder) for name in DOWNLOADED}


@pytest.fixture(scope="module")
def module_server(www):
    with serve(www[0]) as srv:
        yield srv


@pytest.fixture
def server(module_server):
    yield module_server
    module_server.faults.clear()


def run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m <args>` in the repository copy, with this interpreter's bin first on PATH (DVC's `python`)."""
    result = subprocess.run([sys.executable, "-m", *args], cwd=repo, env=workflow_env(repo),
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, "dvc", *args, check=check)


def expected_counts(fixture: archives.Fixture) -> dict[str, int]:
    labels, train = np.asarray(fixture.labels), np.asarray(fixture.train)
    per_class = np.bincount(labels[train], minlength=len(fixture.classes))
    return {"classes": len(fixture.classes), "train": len(fixture.train), "test": len(fixture.test),
            "min_train_per_class": int(per_class.min())}


def edit_settings(repo: Path, name: str, **changes) -> None:
    """Update the entry of `name` in the copy's config/datasets.yaml (a None value removes a key)."""
    path = repo / "config" / "datasets.yaml"
    settings = yaml.safe_load(path.read_text())
    settings[name].update(changes)
    settings[name] = {k: v for k, v in settings[name].items() if v is not None}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def configure(repo: Path, www: tuple[Path, dict], base: str, names: list[str]) -> None:
    """Point the datasets `names` at the fixture server (or their manual folders) at resolution RES."""
    folder, fixtures = www
    for name in names:
        fixture = fixtures[name]
        changes = {"resolution": RES, "workers": 1, "expected_counts": expected_counts(fixture)}
        if name in MANUAL:
            manual = repo / "data" / "manual" / name
            manual.mkdir(parents=True, exist_ok=True)
            for filename in fixture.files:
                shutil.copy(folder / filename, manual / filename)
            changes["sources"] = fixture.sources(None)  # the fixture's md5s instead of the published ones
        else:
            changes["sources"] = fixture.sources(base)
        edit_settings(repo, name, **changes)


def tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(repo: Path) -> dict:
    """Every file of data/prepared: the prepared folders (and any receipt beside them), by content."""
    prepared = repo / "data" / "prepared"
    return {"listing": sorted(os.listdir(prepared)), **tree(prepared)}


def fails_cleanly(repo: Path, before: dict, dataset: str, *says: str) -> str:
    """`dvc repro` the dataset's stages, expect one `data error` line naming `dataset` and `says`, and
    the prepared folders exactly as in `before` (nothing partial, the good version intact).

    Plain `dvc repro`, not `--pull`: with --pull, DVC treats a missing raw folder (cache: false) as
    nothing to do when the prepared data is in its cache, which is right, but hides the download."""
    result = dvc(repo, "repro", f"prepare_raw@{dataset}", check=False)
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("data error:")]
    assert len(errors) == 1, result.stderr
    assert f"dataset {dataset}" in errors[0], errors[0]
    for text in says:
        assert text in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert snapshot(repo) == before
    return errors[0]


def tar_of(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> str:
    """An archive of hand-made members (links, absolute names ...); its md5."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return archives.md5(path)


def member(name: str, data: bytes | None = b"x", link_to: str | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    if link_to is not None:
        info.type, info.linkname, data = tarfile.SYMTYPE, link_to, None
    return info, data


def filtered_tar(source: Path, dest: Path, drop: str) -> str:
    """A copy of the tar.gz `source` without the member `drop`; its md5."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as old, tarfile.open(dest, "w:gz") as new:
        for info in old:
            if info.name != drop:
                new.addfile(info, old.extractfile(info) if info.isfile() else None)
    return archives.md5(dest)


def training_config(repo: Path, name: str, datasets: list[str]) -> Path:
    """One short cell per dataset: softmax CE, 1 image per class, 1 epoch of 2 steps, the digits model; the
    photos (stored whole in a canvas) with random crops of their shorter side, as the paper's 448 of 512."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.update(grid=name, datasets=datasets, methods=["softmax_ce"], samples_per_class=[1], seeds=[0],
                  seeds_per_job=1, tracking=False)
    config["train"].update(epochs=1, batch_size=8, steps_per_epoch=2)
    digits = config["dataset_settings"]["digits"]
    config["dataset_settings"] = {d: copy.deepcopy(digits) for d in datasets}
    for d in datasets:
        if d != "cifar100":
            config["dataset_settings"][d]["augment"] = {"crop": RES, "hflip": True}
    path = repo / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def real_size(name: str) -> int:
    """Bytes of the real dataset's prepared images at its configured resolution: N x r x 1.5 r x 3 (the
    photos' canvas), N x 32 x 32 x 3 for CIFAR-100."""
    settings = yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())[name]
    facts = dataset_module(name).FACTS
    if name == "cifar100":
        return (facts.train + facts.test) * 32 * 32 * 3
    side = settings["resolution"]
    return (facts.train + facts.test) * side * long_side(side, settings.get("max_aspect", 1.5)) * 3


# --- every dataset, the happy path -----------------------------------------------------------------

def test_every_dataset_downloads_prepares_and_trains(www, server, tmp_path, capsys):
    folder, fixtures = www
    repo = copy_repo(tmp_path / "repo")
    configure(repo, www, server.base, DOWNLOADED)

    figures = {}
    started = time.perf_counter()  # one DVC run for all six (each DVC start costs seconds here)
    dvc(repo, "repro", "--pull", *[f"prepare_raw@{name}" for name in DOWNLOADED])
    seconds = time.perf_counter() - started
    for name in DOWNLOADED:
        fixture = fixtures[name]
        prepared = load_prepared(repo / "data" / "prepared" / name)
        n = len(fixture.labels)
        if name == "cifar100":
            assert prepared.images.shape == (n, 32, 32, 3) and prepared.sizes is None
        else:  # whole images in a canvas: the shorter side at RES, the longer up to 1.5 RES
            assert prepared.images.shape == (n, RES, WIDE, 3) and prepared.sizes.shape == (n, 2)
            assert (prepared.sizes.min(axis=1) == RES).all() and (prepared.sizes.max(axis=1) <= WIDE).all()
            assert (prepared.sizes.max(axis=1) > RES).any()  # the fixtures' odd sizes: not all squares
        assert prepared.labels.tolist() == fixture.labels
        assert prepared.train_idx.tolist() == fixture.train and prepared.test_idx.tolist() == fixture.test
        assert prepared.metadata["classes"] == fixture.classes
        assert prepared.metadata["expected_counts"] == expected_counts(fixture)
        sources = prepared.metadata["source_files"]
        assert {f: fixture.files[f] for f in sources} == {f: sources[f]["md5"] for f in sources}
        assert all(sources[f]["manual"] == (name in MANUAL) for f in sources)
        size = sum(p.stat().st_size for p in (repo / "data" / "prepared" / name).iterdir())
        figures[name] = {"bytes": size, "images": len(fixture.labels)}
    assert not (repo / "data" / "raw" / "nabirds" / "nabirds.tar.gz").exists()  # extracted from data/manual

    # dvc.lock pins the raw folder (cache: false, still hashed) and the prepared folder
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for name in DOWNLOADED:
        raw = lock[f"download@{name}"]["outs"][0]
        assert raw["path"] == f"data/raw/{name}" and raw["md5"].endswith(".dir")
        deps = {d["path"]: d["md5"] for d in lock[f"prepare_raw@{name}"]["deps"]}
        assert deps[f"data/raw/{name}"] == raw["md5"]
        assert lock[f"prepare_raw@{name}"]["outs"][0]["md5"].endswith(".dir")
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    md5 = fixtures["cub"].files["CUB_200_2011.tgz"]
    assert not (cache / md5[:2] / md5[2:]).exists()  # raw files are not cached...
    images = hashlib.md5((repo / "data/prepared/cub/images.npy").read_bytes()).hexdigest()
    assert (cache / images[:2] / images[2:]).exists()  # ... prepared ones are

    # a second run does nothing and downloads nothing, even when the download stages are forced
    before, locked, state = len(server.requests), (repo / "dvc.lock").read_text(), snapshot(repo)
    again = dvc(repo, "repro", "--pull", *[f"prepare_raw@{n}" for n in DOWNLOADED])
    assert "Running stage" not in again.stdout
    forced = dvc(repo, "repro", "--force", "--single-item", *[f"download@{n}" for n in DOWNLOADED])
    assert forced.stdout.count("Running stage") == len(DOWNLOADED)
    assert server.requests[before:] == []
    assert (repo / "dvc.lock").read_text() == locked and snapshot(repo) == state

    # one short cell per dataset through the workflow (the data rule finds each prepared: a receipt of
    # its hash, no stage runs), and CIFAR-100's superclass hierarchy
    config = training_config(repo, "fixtures", DOWNLOADED)
    snakemake(repo, "all", "data/hierarchies/cifar100_coarse.txt", "--cores", "2", "--configfile", str(config))
    for name in DOWNLOADED:
        receipt = json.loads((repo / "data" / "prepared" / f"{name}.json").read_text())
        (path,) = (repo / "results" / "cells" / name / "softmax_ce" / "spc1").glob("*/split0/seed0/metrics.json")
        metrics = json.loads(path.read_text())
        assert metrics["status"] == "ok" and metrics["num_classes"] == len(fixtures[name].classes)
        assert metrics["identity"]["data"] == receipt["data_hash"] == metrics["data_hash"]
        assert metrics["train_images"] == len(fixtures[name].classes)  # 1 per class
    assert (repo / "results" / "tables" / "fixtures.md").is_file()
    after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {k: v for k, v in after.items() if k != "hierarchy_coarse"} == lock  # nothing prepared again
    from benchmark.hierarchy import coarse_label_hierarchy

    coarse = (repo / "data" / "hierarchies" / "cifar100_coarse.txt").read_text()
    assert coarse == coarse_label_hierarchy(archives.FINE_TO_COARSE).to_text()
    assert server.requests[before:] == []

    with capsys.disabled():
        print(f"\n\ndownload + prepare of the six fixture datasets: {seconds:.1f} s (one dvc repro)")
        print("dataset   fixture images  prepared bytes   real images at r   expected bytes")
        for name, f in figures.items():
            facts = dataset_module(name).FACTS
            print(f"{name:9} {f['images']:14} {f['bytes']:15,}   {facts.train + facts.test:16,} {real_size(name):16,}")


# --- bad sources, each through `dvc repro` -----------------------------------------------------

def prepared_repo(tmp_path: Path, www, server, names: list[str]) -> tuple[Path, dict]:
    """A repository copy with `names` prepared once from good sources, and its snapshot."""
    repo = copy_repo(tmp_path / "repo")
    configure(repo, www, server.base, names)
    dvc(repo, "repro", "--pull", *[f"prepare_raw@{n}" for n in names])
    return repo, snapshot(repo)


def test_cub_checksum_mismatch_and_link_out_of_folder(www, server, tmp_path):
    folder, fixtures = www
    repo, before = prepared_repo(tmp_path, www, server, ["cub"])
    good_md5 = fixtures["cub"].files["CUB_200_2011.tgz"]

    # a mirror serving other bytes, on a machine without the verified copy
    archives.write_file(folder / "changed" / "CUB_200_2011.tgz", b"an error page saved under the archive's name")
    edit_settings(repo, "cub", sources={"CUB_200_2011.tgz": {"url": server.url("changed/CUB_200_2011.tgz"),
                                                             "md5": good_md5}})
    shutil.rmtree(repo / "data" / "raw" / "cub")
    fails_cleanly(repo, before, "cub", "file CUB_200_2011.tgz", "checksum mismatch", f"expected md5 {good_md5}")

    # a (checksum-matching) archive with a symbolic link pointing out of the folder
    evil = tar_of(folder / "link" / "CUB_200_2011.tgz",
                  [member("CUB_200_2011/images.txt", b"1 a.jpg\n"),
                   member("CUB_200_2011/images/escape", link_to="../../../../etc/passwd")])
    edit_settings(repo, "cub", sources={"CUB_200_2011.tgz": {"url": server.url("link/CUB_200_2011.tgz"),
                                                             "md5": evil}})
    fails_cleanly(repo, before, "cub", "archive CUB_200_2011.tgz", "symbolic link", "escape")
    assert not (repo / "data" / "raw" / "cub" / "CUB_200_2011" / "CUB_200_2011" / "images" / "escape").exists()


def test_http_errors_and_truncated_transfer(www, server, tmp_path):
    repo, before = prepared_repo(tmp_path, www, server, ["flowers", "cifar100"])

    server.faults["setid.mat"] = Fault(status=404)
    shutil.rmtree(repo / "data" / "raw" / "flowers")
    fails_cleanly(repo, before, "flowers", "file setid.mat", "HTTP 404")

    server.faults["cifar-100-python.tar.gz"] = Fault(status=500)
    shutil.rmtree(repo / "data" / "raw" / "cifar100")
    fails_cleanly(repo, before, "cifar100", "file cifar-100-python.tar.gz", "HTTP 500")

    server.faults.clear()
    server.faults["102flowers.tgz"] = Fault(truncate_at=1000)
    shutil.rmtree(repo / "data" / "raw" / "flowers")
    fails_cleanly(repo, before, "flowers", "file 102flowers.tgz", "truncated download", "received 1000 of")
    assert (repo / "data" / "raw" / "flowers" / "102flowers.tgz.part").stat().st_size == 1000

    # the next run resumes the partial file with a Range request, and the lock still matches
    server.faults.clear()
    start = len(server.requests)
    result = dvc(repo, "repro", "--pull", "prepare_raw@flowers")
    assert ("102flowers.tgz", "bytes=1000-", 206) in server.requests[start:]
    assert "Running stage 'prepare_raw@flowers'" not in result.stdout  # same raw bytes: nothing to rebuild
    assert snapshot(repo) == before

    # through the workflow (changed settings, so the download must run): the error line is in the job's
    # log, and the previously prepared folder stays as it was (the rule's output is the receipt beside
    # it, which is all Snakemake deletes of a failed job). Not on the console: the default profile's
    # `quiet: [rules]` also silences --show-failed-logs (Snakemake 9.27).
    server.faults["setid.mat"] = Fault(status=404)
    shutil.rmtree(repo / "data" / "raw" / "flowers")
    edit_settings(repo, "flowers", resolution=RES - 4)
    result = snakemake(repo, "data/prepared/flowers.json", "--cores", "1", check=False)
    assert result.returncode != 0
    log = (repo / "logs" / "prepare" / "flowers.log").read_text()
    assert "data error: dataset flowers, file setid.mat" in log and "HTTP 404" in log, log
    # the console says what failed and where to look (onerror: the profile's quiet rules hide the log)
    assert "logs/prepare/flowers.log: data error: dataset flowers, file setid.mat" in result.stderr
    assert snapshot(repo) == before and not (repo / "data" / "prepared" / "flowers.json").exists()


def test_mit67_unsafe_and_truncated_archives_and_wrong_class_count(www, server, tmp_path):
    folder, fixtures = www
    repo, before = prepared_repo(tmp_path, www, server, ["mit67"])
    raw = repo / "data" / "raw" / "mit67"
    # MIT67 publishes no checksums: only extraction checks and the count check stand guard
    unpinned = {name: {"url": server.url(name), "md5": None} for name in fixtures["mit67"].files}

    tar_of(folder / "absolute" / "indoorCVPR_09.tar", [member("/tmp/planted.txt")], mode="w")
    edit_settings(repo, "mit67", sources={**unpinned, "indoorCVPR_09.tar": {
        "url": server.url("absolute/indoorCVPR_09.tar"), "md5": None}})
    shutil.rmtree(raw)
    fails_cleanly(repo, before, "mit67", "archive indoorCVPR_09.tar", "absolute path")

    good = (folder / "indoorCVPR_09.tar").read_bytes()
    with tarfile.open(folder / "indoorCVPR_09.tar") as tar:
        cut = next(m for m in tar if m.isfile() and m.size > 200)
    archives.write_file(folder / "truncated" / "indoorCVPR_09.tar", good[: cut.offset_data + cut.size // 2])
    edit_settings(repo, "mit67", sources={**unpinned, "indoorCVPR_09.tar": {
        "url": server.url("truncated/indoorCVPR_09.tar"), "md5": None}})
    shutil.rmtree(raw)
    fails_cleanly(repo, before, "mit67", "archive indoorCVPR_09.tar", "corrupt or truncated")

    for name in ("TrainImages.txt", "TestImages.txt"):  # lists that lost a class
        lines = (folder / name).read_text().splitlines(keepends=True)
        archives.write_file(folder / "lists" / name, "".join(x for x in lines if "kitchen" not in x).encode())
    edit_settings(repo, "mit67", sources={**unpinned, **{
        name: {"url": server.url(f"lists/{name}"), "md5": None} for name in ("TrainImages.txt", "TestImages.txt")}})
    shutil.rmtree(raw)
    fails_cleanly(repo, before, "mit67", "classes/train/test/min-per-class (2, 6, 2, 3)",
                  "expected_counts of its settings are (3, 9, 3, 3)", "TrainImages.txt", "data/raw/mit67")


def test_manual_archives_dotdot_missing_annotation_and_missing_file(www, server, tmp_path):
    folder, fixtures = www
    repo, before = prepared_repo(tmp_path, www, server, ["nabirds", "cars"])
    manual = repo / "data" / "manual" / "nabirds"

    evil = tar_of(manual / "nabirds.tar.gz", [member("nabirds/images.txt", b""), member("nabirds/../../../x.txt")])
    edit_settings(repo, "nabirds", sources={"nabirds.tar.gz": {"md5": evil}})
    fails_cleanly(repo, before, "nabirds", "archive nabirds.tar.gz", "'..' component")
    assert not (repo / "data" / "x.txt").exists() and not (repo / "x.txt").exists()

    incomplete = filtered_tar(folder / "nabirds.tar.gz", manual / "nabirds.tar.gz", "nabirds/image_class_labels.txt")
    edit_settings(repo, "nabirds", sources={"nabirds.tar.gz": {"md5": incomplete}})
    fails_cleanly(repo, before, "nabirds", "image_class_labels.txt is missing")

    placed = repo / "data" / "manual" / "cars" / "cars_annos.mat"
    placed.unlink()
    shutil.rmtree(repo / "data" / "raw" / "cars")
    fails_cleanly(repo, before, "cars", "file cars_annos.mat", f"Put it at {placed}")


# --- DVC remote -----------------------------------------------------------------------------------

def test_dvc_remote_round_trip(www, server, tmp_path):
    repo = copy_repo(tmp_path / "repo")
    configure(repo, www, server.base, ["cub"])
    stages = ["prepare@digits", "prepare_raw@cub"]
    dvc(repo, "repro", "--pull", *stages)
    before, locked = snapshot(repo), (repo / "dvc.lock").read_text()

    remote = tmp_path / "dvc-remote"
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    dvc(repo, "push", *stages)
    assert any(remote.rglob("*"))

    # a fresh machine: no prepared data, no cache, no raw files (cache: false, never pushed)
    for path in ("data/prepared", "data/raw", ".dvc/cache"):
        shutil.rmtree(repo / path)
    dvc(repo, "pull", *stages)
    assert snapshot(repo) == before
    assert not (repo / "data" / "raw" / "cub").exists()

    # the workflow's `dvc repro --pull` uses the pulled data: nothing rebuilt, nothing downloaded
    requests = len(server.requests)
    result = dvc(repo, "repro", "--pull", *stages)
    assert "Running stage" not in result.stdout
    assert server.requests[requests:] == [] and snapshot(repo) == before
    assert (repo / "dvc.lock").read_text() == locked


# --- class hierarchies ------------------------------------------------------------------------------

def serve_hierarchies(repo: Path, folder: Path, server, files: dict[str, bytes], **pins) -> None:
    """Serve `files` (hierarchy name -> bytes) and point the copy's `hierarchies` settings at them."""
    path = repo / "config" / "datasets.yaml"
    settings = yaml.safe_load(path.read_text())
    for name, data in files.items():
        archives.write_file(folder / "hierarchies" / f"{name}.txt", data)
        settings["hierarchies"][name] = {"url": server.url(f"hierarchies/{name}.txt"), **pins.get(name, {})}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"no copies of the official hierarchies at {REFERENCE}")
def test_official_hierarchies_match_their_pinned_checksums(www, server, tmp_path):
    folder, _ = www
    repo = copy_repo(tmp_path / "repo")
    files = {name: (REFERENCE / Path(entry["path"]).name).read_bytes() for name, entry in HIERARCHIES.items()}
    serve_hierarchies(repo, folder, server, files)
    dvc(repo, "repro", *[f"hierarchy@{name}" for name in HIERARCHIES])
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for name, entry in HIERARCHIES.items():
        assert (repo / "data" / "hierarchies" / f"{name}.txt").read_bytes() == files[name]
        assert lock[f"hierarchy@{name}"]["outs"][0]["md5"] == entry["md5"]


def test_hierarchy_checks(www, server, tmp_path):
    folder, _ = www
    repo = copy_repo(tmp_path / "repo")
    star = "".join(f"1000 {leaf}\n" for leaf in range(1, 201)).encode()  # a flat tree over CUB's ids 1..200
    serve_hierarchies(repo, folder, server, {"cub_flat": star})  # with the official checksums
    result = dvc(repo, "repro", "hierarchy@cub_flat", check=False)
    assert result.returncode != 0
    assert "data error: dataset cub, file cub_flat.txt: checksum mismatch" in result.stderr
    assert not (repo / "data" / "hierarchies" / "cub_flat.txt").exists()

    pins = {"md5": hashlib.md5(star).hexdigest(), "sha256": hashlib.sha256(star).hexdigest()}
    serve_hierarchies(repo, folder, server, {"cub_flat": star}, cub_flat=pins)  # a mirror with its own pins
    dvc(repo, "repro", "hierarchy@cub_flat")
    assert (repo / "data" / "hierarchies" / "cub_flat.txt").read_bytes() == star

    wrong = "".join(f"1000 {leaf}\n" for leaf in range(200)).encode()  # leaves 0..199, not CUB's ids
    pins = {"md5": hashlib.md5(wrong).hexdigest(), "sha256": hashlib.sha256(wrong).hexdigest()}
    serve_hierarchies(repo, folder, server, {"cub_flat": wrong}, cub_flat=pins)
    result = dvc(repo, "repro", "hierarchy@cub_flat", check=False)
    assert "not a class hierarchy of the 200 classes" in result.stderr and "leaves 0 are not class ids" in result.stderr
    assert not (repo / "data" / "hierarchies" / "cub_flat.txt").exists()


def test_nabirds_hierarchy_stage(www, server, tmp_path):
    """hierarchy_nabirds: the archive's taxonomy as a tree over the prepared class ids, through DVC."""
    folder, fixtures = www
    fixture = fixtures["nabirds"]
    repo = copy_repo(tmp_path / "repo")
    configure(repo, www, server.base, ["nabirds"])
    out = repo / "data" / "hierarchies" / "nabirds.txt"
    result = dvc(repo, "repro", "--pull", "prepare_raw@nabirds", "hierarchy_nabirds")
    assert "Running stage 'hierarchy_nabirds'" in result.stdout

    class_ids = load_metadata(repo / "data" / "prepared" / "nabirds")["class_ids"]
    hierarchy = parse_hierarchy(out, len(class_ids), class_ids)  # as the embeddings read it
    assert sorted((p, c) for c, p in hierarchy.parent.items()) == sorted(fixture.extra["hierarchy_edges"])
    run(repo, "benchmark", "embed", "--hierarchy", "data/hierarchies/nabirds.txt", "--data", "data/prepared/nabirds",
        "--class-ids", "metadata", "--out", "results/embeddings/nabirds/nabirds.npy")
    assert np.load(repo / "results" / "embeddings" / "nabirds" / "nabirds.npy").shape == (3, 3)

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    deps = {d["path"]: d["md5"] for d in lock["hierarchy_nabirds"]["deps"]}
    assert deps["data/raw/nabirds"] == lock["download@nabirds"]["outs"][0]["md5"]
    assert "Running stage" not in dvc(repo, "repro", "--pull", "hierarchy_nabirds").stdout

    # an archive without hierarchy.txt: one error line naming the file, and no hierarchy file
    manual = repo / "data" / "manual" / "nabirds" / "nabirds.tar.gz"
    md5 = filtered_tar(folder / "nabirds.tar.gz", manual, "nabirds/hierarchy.txt")
    edit_settings(repo, "nabirds", sources={"nabirds.tar.gz": {"md5": md5}})
    result = dvc(repo, "repro", "hierarchy_nabirds", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("data error:")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr
    assert "dataset nabirds: hierarchy.txt is missing" in errors[0] and "Traceback" not in result.stderr
    assert not out.exists()
