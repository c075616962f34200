"""Every real dataset module, end to end on tiny archives in the real layout.

Each archive is served by a local HTTP server, downloaded, verified and extracted by the module's
`download`, then built by its `build`; the arrays are compared with what the fixture says a
correct build holds (labels per image, official splits, class names). The published counts are
checked separately: FACTS.check must reject the fixtures' counts, naming the dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from fixtures import archives
from fixtures.http import Fault, serve

from benchmark.data import cars, cifar100, cub, flowers, mit67, nabirds
from benchmark.data.errors import DataError
from benchmark.data.images import load_image, load_images
from benchmark.data.prepared import channel_stats, data_hash, load_prepared, write_prepared

MODULES: dict[str, ModuleType] = {
    "cub": cub, "nabirds": nabirds, "cars": cars, "flowers": flowers, "mit67": mit67, "cifar100": cifar100,
}
RES = 12
LONG = 18  # the canvas' long side: round(1.5 x RES), the default max_aspect


@pytest.fixture(scope="module")
def www(tmp_path_factory) -> tuple[Path, dict[str, archives.Fixture]]:
    folder = tmp_path_factory.mktemp("www")
    return folder, {name: getattr(archives, name)(folder) for name in MODULES}


@pytest.fixture(scope="module")
def server(www):
    with serve(www[0]) as srv:
        yield srv


def settings_for(name: str, tmp_path: Path, fixture: archives.Fixture, base: str | None, **more) -> dict:
    return {"raw_dir": str(tmp_path / "raw" / name), "resolution": RES, "workers": 2,
            "sources": fixture.sources(base), **more}


def own_image(images: np.ndarray, sizes: np.ndarray | None, i: int) -> np.ndarray:
    """Image i in its own orientation: its region of the canvas (transposed back when taller than wide)."""
    if sizes is None:
        return images[i]
    height, width = sizes[i]
    if height > width:
        return images[i, :width, :height].transpose(1, 0, 2)
    return images[i, :height, :width]


def check_built(built: dict, fixture: archives.Fixture, side: int = RES, long: int | None = LONG) -> None:
    """Shapes and order; `long` set: whole images (crop "whole") in a side x long canvas with sizes."""
    images, sizes = built["images"], built.get("sizes")
    assert images.dtype == np.uint8 and images.shape == (len(fixture.labels), side, long or side, 3)
    if long is None:
        assert sizes is None
    else:  # shorter side `side`, longer side up to `long`, zero outside each image's region
        assert sizes.dtype == np.int64 and sizes.shape == (len(fixture.labels), 2)
        assert (sizes.min(axis=1) == side).all() and (sizes.max(axis=1) <= long).all()
        for i, (height, width) in enumerate(sizes):
            assert images[i, :, max(height, width):].max(initial=0) == 0
    assert built["labels"].dtype == np.int64
    assert built["labels"].tolist() == fixture.labels
    assert built["train_idx"].tolist() == fixture.train
    assert built["test_idx"].tolist() == fixture.test
    assert built["classes"] == fixture.classes


def check_colours(built: dict) -> None:
    """Each coloured image's mean colour (over its own pixels) is nearest to the palette colour of its label."""
    images, sizes = built["images"], built.get("sizes")
    means = np.stack([own_image(images, sizes, i).reshape(-1, 3).mean(axis=0) for i in range(len(images))])
    palette = np.asarray(archives.PALETTE[: len(built["classes"])], dtype=float)
    coloured = np.ptp(means, axis=1) > 20  # the greyscale fixture images carry no colour
    nearest = np.argmin(((means[:, None] - palette[None]) ** 2).sum(-1), axis=1)
    assert coloured.sum() >= len(means) - 2
    assert (nearest[coloured] == built["labels"][coloured]).all()


def counts(built: dict) -> dict:
    """What the prepare verb passes to FACTS.check."""
    labels = built["labels"][built["train_idx"]]
    return {"classes": len(built["classes"]), "train": int(built["train_idx"].size),
            "test": int(built["test_idx"].size),
            "min_train_per_class": int(min((labels == c).sum() for c in range(len(built["classes"]))))}


@pytest.mark.parametrize("name", ["cub", "nabirds", "cars", "flowers", "mit67"])
def test_download_and_build(name, tmp_path, www, server):
    fixture = www[1][name]
    settings = settings_for(name, tmp_path, fixture, server.base)
    record = MODULES[name].download(settings)
    assert set(record["files"]) == set(fixture.files)
    built = MODULES[name].build(settings)
    check_built(built, fixture)
    check_colours(built)
    assert built["extra"]["source_files"] == record["files"]
    assert not list((tmp_path / "raw" / name).glob("*.part"))
    meta = write_prepared(tmp_path / "prepared" / name, name, built["images"], built["labels"],
                          built["train_idx"], built["test_idx"], built["classes"], built["extra"], built["sizes"])
    assert meta["classes"] == fixture.classes and meta["num_train"] == len(fixture.train)
    prepared = load_prepared(tmp_path / "prepared" / name)
    assert prepared.labels.tolist() == fixture.labels and np.array_equal(prepared.sizes, built["sizes"])
    with pytest.raises(ValueError) as caught:  # the fixture is not the published dataset
        MODULES[name].FACTS.check(name, **counts(built))
    message = str(caught.value)
    assert name in message and str(tuple(counts(built).values())) in message
    assert str(MODULES[name].FACTS.train) in message


def test_published_counts_pass_the_check():
    for name, module in MODULES.items():
        facts = module.FACTS
        facts.check(name, facts.classes, facts.train, facts.test, facts.min_train_per_class)
    assert (cub.FACTS.classes, cub.FACTS.train, cub.FACTS.test) == (200, 5994, 5794)
    assert (nabirds.FACTS.classes, nabirds.FACTS.train, nabirds.FACTS.test) == (555, 23929, 24633)
    assert (cars.FACTS.classes, cars.FACTS.train, cars.FACTS.test) == (196, 8144, 8041)
    assert (flowers.FACTS.classes, flowers.FACTS.train, flowers.FACTS.test) == (102, 2040, 6149)
    assert (mit67.FACTS.classes, mit67.FACTS.train, mit67.FACTS.test) == (67, 5360, 1340)
    assert (cifar100.FACTS.classes, cifar100.FACTS.train, cifar100.FACTS.test) == (100, 50000, 10000)


def test_second_download_reuses_verified_files(tmp_path, www, server):
    fixture = www[1]["cub"]
    settings = settings_for("cub", tmp_path, fixture, server.base)
    cub.download(settings)
    extracted = tmp_path / "raw" / "cub" / "CUB_200_2011"
    marker = extracted / "marker"
    marker.write_text("still the same extraction")
    before = len(server.requests)
    cub.download(settings)
    assert len(server.requests) == before  # verified by md5, nothing fetched
    assert marker.exists()  # not extracted again


def test_download_failure_names_dataset_and_file(tmp_path, www, server):
    fixture = www[1]["flowers"]
    settings = settings_for("flowers", tmp_path, fixture, server.base)
    server.faults["setid.mat"] = Fault(status=404, times=1)
    with pytest.raises(DataError) as caught:
        flowers.download(settings)
    assert "dataset flowers, file setid.mat" in str(caught.value) and "HTTP 404" in str(caught.value)
    assert not (tmp_path / "raw" / "flowers" / "setid.mat").exists()
    with pytest.raises(DataError, match="download stage"):
        flowers.build(settings)


def test_nabirds_manual_file(tmp_path, www):
    folder, fixtures = www
    manual = tmp_path / "manual"
    settings = settings_for("nabirds", tmp_path, fixtures["nabirds"], None, manual_dir=str(manual))
    with pytest.raises(DataError) as caught:
        nabirds.download(settings)
    message = str(caught.value)
    assert str((manual / "nabirds.tar.gz").resolve()) in message and "terms of use" in message
    manual.mkdir()
    shutil.copy(folder / "nabirds.tar.gz", manual)
    nabirds.download(settings)
    assert not (tmp_path / "raw" / "nabirds" / "nabirds.tar.gz").exists()  # extracted in place, not copied
    built = nabirds.build(settings)
    check_built(built, fixtures["nabirds"])
    assert built["extra"]["class_ids"] == fixtures["nabirds"].extra["class_ids"]  # leaves 313, 611, 964 have no images
    assert built["extra"]["source_files"]["nabirds.tar.gz"]["manual"] is True


def test_cars_manual_files(tmp_path, www):
    folder, fixtures = www
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(folder / "car_ims.tgz", manual)
    settings = settings_for("cars", tmp_path, fixtures["cars"], None, manual_dir=str(manual))
    with pytest.raises(DataError, match=r"cars_annos\.mat.*dead"):
        cars.download(settings)
    shutil.copy(folder / "cars_annos.mat", manual)
    cars.download(settings)
    assert (tmp_path / "raw" / "cars" / "cars_annos.mat").is_file()
    check_built(cars.build(settings), fixtures["cars"])


def test_flowers_train_is_trnid_plus_valid(tmp_path, www, server):
    import scipy.io

    folder, fixtures = www
    settings = settings_for("flowers", tmp_path, fixtures["flowers"], server.base)
    flowers.download(settings)
    built = flowers.build(settings)
    setid = scipy.io.loadmat(folder / "setid.mat")
    trnid, valid, tstid = (setid[k].ravel().astype(int) for k in ("trnid", "valid", "tstid"))
    assert built["train_idx"].tolist() == sorted((np.concatenate([trnid, valid]) - 1).tolist())
    assert built["test_idx"].tolist() == sorted((tstid - 1).tolist())
    assert built["extra"]["official_val_idx"] == fixtures["flowers"].extra["valid"]
    labels = scipy.io.loadmat(folder / "imagelabels.mat")["labels"].ravel().astype(int)
    assert built["labels"].tolist() == (labels - 1).tolist()  # images stored by image number


@pytest.mark.parametrize("test_set", ["cifar", "cifair"])
def test_cifar100(tmp_path, www, server, test_set):
    fixture = www[1]["cifar100"]
    settings = settings_for("cifar100", tmp_path, fixture, server.base, test_set=test_set)
    before = len(server.requests)
    record = cifar100.download(settings)
    fetched = {name for name, _, _ in server.requests[before:]}
    assert fetched == ({"cifar-100-python.tar.gz", "ciFAIR-100.zip"} if test_set == "cifair"
                       else {"cifar-100-python.tar.gz"})
    assert set(record["files"]) == fetched
    built = cifar100.build(settings)
    write_prepared(tmp_path / "prepared", "cifar100", built["images"], built["labels"], built["train_idx"],
                   built["test_idx"], built["classes"], built["extra"])  # extra is JSON-serialisable
    test_data = fixture.extra["cifair_data" if test_set == "cifair" else "test_data"]
    data = np.concatenate([fixture.extra["train_data"], test_data])
    images = built["images"]
    assert images.shape == (len(data), 32, 32, 3) and images.dtype == np.uint8
    # channel-major rows: value of channel c at (y, x) is data[c * 1024 + y * 32 + x]
    for i, (y, x, c) in enumerate([(0, 0, 0), (31, 0, 1), (5, 17, 2), (31, 31, 2)]):
        assert images[i, y, x, c] == data[i, c * 1024 + y * 32 + x]
    expected = fixture.extra["cifair_labels"] if test_set == "cifair" else fixture.labels
    assert built["labels"].tolist() == expected
    assert built["train_idx"].tolist() == fixture.train and built["test_idx"].tolist() == fixture.test
    assert built["classes"] == archives.FINE
    assert built["extra"]["coarse_classes"] == archives.COARSE
    assert built["extra"]["fine_to_coarse"] == archives.FINE_TO_COARSE
    assert built["extra"]["test_set"] == test_set


def test_mit67_records_unpublished_checksums(tmp_path, www, server):
    fixture = www[1]["mit67"]
    settings = settings_for("mit67", tmp_path, fixture, server.base)
    settings["sources"] = {name: {"url": entry["url"]} for name, entry in settings["sources"].items()}
    mit67.download(settings)
    record = json.loads((tmp_path / "raw" / "mit67" / "sources.json").read_text())["files"]
    for name, md5 in fixture.files.items():
        assert record[name]["md5"] == md5 and record[name]["md5_published"] is False
        assert len(record[name]["sha256"]) == 64
    check_built(mit67.build(settings), fixture)


@pytest.mark.parametrize(
    ("name", "relative"),
    [
        ("cub", "CUB_200_2011/CUB_200_2011/train_test_split.txt"),
        ("cub", "CUB_200_2011/CUB_200_2011/classes.txt"),
        ("nabirds", "nabirds/nabirds/image_class_labels.txt"),
        ("cars", "cars_annos.mat"),
        ("flowers", "setid.mat"),
        ("mit67", "TestImages.txt"),
        ("cifar100", "cifar-100-python/cifar-100-python/meta"),
    ],
)
def test_missing_annotation_file(name, relative, tmp_path, www, server):
    settings = settings_for(name, tmp_path, www[1][name], server.base)
    MODULES[name].download(settings)
    (tmp_path / "raw" / name / relative).unlink()
    with pytest.raises(DataError) as caught:
        MODULES[name].build(settings)
    message = str(caught.value)
    assert Path(relative).name in message and name in message and "download stage" in message


def test_missing_image_is_named(tmp_path, www, server):
    settings = settings_for("cub", tmp_path, www[1]["cub"], server.base)
    cub.download(settings)
    victim = next((tmp_path / "raw" / "cub" / "CUB_200_2011" / "CUB_200_2011" / "images").rglob("*.jpg"))
    victim.unlink()
    with pytest.raises(DataError, match=victim.name):
        cub.build(settings)
    victim.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=f"{victim.name} cannot be decoded"):
        cub.build(settings)


def test_build_before_download(tmp_path, www):
    settings = settings_for("cub", tmp_path, www[1]["cub"], None)
    with pytest.raises(DataError, match=r"dataset cub: .*CUB_200_2011.*download@cub"):
        cub.build(settings)


def test_unknown_source_override(tmp_path, www):
    settings = settings_for("cub", tmp_path, www[1]["cub"], None)
    settings["sources"]["CUB_200_2011.zip"] = {"url": "http://example.invalid/x"}
    with pytest.raises(DataError, match=r"CUB_200_2011\.zip"):
        cub.download(settings)


def test_resize_and_crop_modes(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white left border that the centre crop cuts away
    pixels[:, 10:30] = (0, 0, 200)
    Image.fromarray(pixels).save(path)
    whole = load_image(path, 10, "whole", max_aspect=2.0)  # 40 x 20 -> 20 x 10, kept whole
    assert whole.shape == (10, 20, 3)
    assert whole[:, 1].min() > 200 and whole[:, 3:4, 2].max() > 200  # the white border, then blue
    capped = load_image(path, 10, "whole", max_aspect=1.5)  # 20 x 10 -> its central 15 columns (2..16)
    assert capped.shape == (10, 15, 3) and np.array_equal(capped, whole[:, 2:17])
    centre = load_image(path, 10, "center")  # 40 x 20 -> 20 x 10 -> columns 5..14
    assert np.array_equal(centre, whole[:, 5:15])
    assert centre.shape == (10, 10, 3) and centre[:, 1:-1].max(axis=(0, 1)).tolist()[:2] == [0, 0]
    padded = load_image(path, 10, "pad")  # 40 x 20 -> 10 x 5, pasted at rows 2..6
    assert padded.shape == (10, 10, 3)
    assert padded[:2].max() == 0 and padded[-3:].max() == 0
    assert padded[3, 0].min() > 200  # the white border survives
    tall = tmp_path / "tall.png"
    Image.fromarray(np.full((37, 23, 3), 90, np.uint8)).save(tall)
    assert load_image(tall, 8, "center").shape == (8, 8, 3) and load_image(tall, 8, "pad").shape == (8, 8, 3)
    # 23 x 37 -> 8 x round(37 * 8 / 23) = 8 x 13 (the official rounding), capped at round(1.5 * 8) = 12
    assert load_image(tall, 8).shape == (12, 8, 3) and load_image(tall, 8, max_aspect=2.0).shape == (13, 8, 3)


def test_whole_images_share_a_canvas_portraits_transposed(tmp_path):
    """crop whole: each image top-left in an r x 1.5 r zero canvas, a portrait one transposed, and its
    (height, width) in sizes; the decoded pixels are exactly load_image's."""
    from PIL import Image

    rng = np.random.default_rng(0)
    shapes = {"wide": (10, 16), "tall": (17, 10), "square": (10, 10), "long": (10, 30)}  # (height, width)
    paths = []
    for name, shape in shapes.items():
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(paths[-1])
    photos = load_images("toy", paths, resolution=10, workers=2)
    images, sizes = photos["images"], photos["sizes"]
    assert images.shape == (4, 10, 15, 3) and sizes.tolist() == [[10, 15], [15, 10], [10, 10], [10, 15]]
    for i, path in enumerate(paths):
        own = load_image(path, 10)
        assert np.array_equal(own_image(images, sizes, i), own)
        stored = own.transpose(1, 0, 2) if own.shape[0] > own.shape[1] else own
        assert np.array_equal(images[i, :, :stored.shape[1]], stored)
        assert images[i, :, stored.shape[1]:].max(initial=0) == 0  # zero padding beyond the image
    assert np.array_equal(images[1, :, :15], load_image(paths[1], 10).transpose(1, 0, 2))
    assert "sizes" not in load_images("toy", paths, resolution=10, crop="center")


def test_prepared_canvas_round_trip_and_statistics_of_the_images_only(tmp_path):
    """sizes.npy is written, hashed and read back; the mean and std count each image's own pixels, not
    the canvas' zero padding (by hand: numpy over the concatenated regions)."""
    rng = np.random.default_rng(1)
    images = np.zeros((3, 4, 6, 3), np.uint8)
    sizes = np.array([[4, 6], [5, 4], [4, 4]])  # landscape, portrait (stored transposed: 4 x 5), square
    images[0] = rng.integers(100, 256, (4, 6, 3))
    images[1, :, :5] = rng.integers(100, 256, (4, 5, 3))
    images[2, :, :4] = rng.integers(100, 256, (4, 4, 3))
    labels, train, test = np.array([0, 1, 0]), np.array([0, 1]), np.array([2])
    meta = write_prepared(tmp_path / "toy", "toy", images, labels, train, test, ["a", "b"], sizes=sizes)
    own = np.concatenate([images[0].reshape(-1, 3), images[1, :, :5].reshape(-1, 3)]) / 255.0
    assert meta["mean"] == pytest.approx(own.mean(axis=0).tolist(), abs=1e-6)
    assert meta["std"] == pytest.approx(own.std(axis=0).tolist(), abs=1e-6)
    assert channel_stats(images, train) != (meta["mean"], meta["std"])  # padding would darken them
    prepared = load_prepared(tmp_path / "toy")
    assert prepared.sizes.tolist() == sizes.tolist() and "sizes" in meta["sha256"]
    plain = write_prepared(tmp_path / "plain", "toy", images, labels, train, test, ["a", "b"])
    assert load_prepared(tmp_path / "plain").sizes is None and data_hash(plain) != data_hash(meta)
    for bad, says in ((np.array([[4, 6], [5, 4]]), "sizes must be"), (np.array([[4, 7], [5, 4], [4, 4]]), "fit")):
        with pytest.raises(ValueError, match=says):
            write_prepared(tmp_path / "bad", "toy", images, labels, train, test, ["a", "b"], sizes=bad)


def test_pad_mode_build_and_bad_settings(tmp_path, www, server):
    settings = settings_for("cars", tmp_path, www[1]["cars"], server.base, crop="pad")
    cars.download(settings)
    check_built(cars.build(settings), www[1]["cars"], long=None)
    check_built(cars.build({**settings, "crop": "center"}), www[1]["cars"], long=None)
    check_built(cars.build({**settings, "crop": "whole", "max_aspect": 2.0}), www[1]["cars"], long=24)
    with pytest.raises(DataError, match="crop must be one of"):
        cars.build({**settings, "crop": "stretch"})
    with pytest.raises(DataError, match="max_aspect"):
        cars.build({**settings, "crop": "whole", "max_aspect": 0.5})
    with pytest.raises(DataError, match="test_set must be one of"):
        cifar100.download({"raw_dir": str(tmp_path / "raw" / "cifar100"), "test_set": "cifar10"})


def test_module_contract():
    for name, module in MODULES.items():
        assert name == module.NAME
        assert callable(module.build) and callable(module.download)
        for filename, entry in module.SOURCES.items():
            assert set(entry) <= {"url", "md5", "how"}, filename
            assert entry["url"] or entry.get("how"), f"{name}/{filename}: no URL and no manual instructions"
            assert entry["md5"] is None or len(entry["md5"]) == 32
