"""The default grid trains with the values the tuned protocol selected (config/selected/digits.yaml), and that
file is what config/tuned.yaml's search produces (regenerate it with the command in its header)."""

from __future__ import annotations

import yaml
from conftest import REPO

from benchmark.config import load_config
from benchmark.grid import Grid

SELECTED = REPO / "config/selected/digits.yaml"


def test_the_selected_file_comes_from_the_current_tuned_config() -> None:
    data = yaml.safe_load(SELECTED.read_text())
    tuned = load_config(REPO / "config/tuned.yaml", base=REPO / "config/config.yaml")
    assert data["tune"] == tuned["tune"], "config/tuned.yaml's search changed: regenerate config/selected/digits.yaml"
    assert "export-selection --config config/tuned.yaml" in SELECTED.read_text().splitlines()[1]
    # every (method, size) the tuned grid searched on digits has its values
    searched = {(c.method, str(c.spc)) for c in Grid(tuned).configurations if c.dataset == "digits"}
    assert {(m, s) for m, sizes in data["values"]["digits"].items() for s in sizes} == searched


def test_every_cell_of_the_default_grid_trains_with_its_selected_values() -> None:
    config = load_config(REPO / "config/config.yaml")
    assert config["selected"] == {"digits": "config/selected/digits.yaml"}
    values = yaml.safe_load(SELECTED.read_text())["values"]["digits"]
    for c in Grid(config).configurations:
        chosen = values[c.method][str(c.spc)]
        assert c.settings["train"]["lr"] == chosen["lr"]
        assert c.settings["train"]["optimizer"]["weight_decay"] == chosen["weight_decay"]


def test_a_cell_the_selected_file_lacks_stops_with_one_line(tmp_path) -> None:
    import pytest

    from benchmark.config import ConfigError, validate

    data = yaml.safe_load(SELECTED.read_text())
    del data["values"]["digits"]["mse"]["5"]
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump(data))
    config = validate({"grid": "g", "datasets": ["digits"], "methods": ["mse", "cosine"], "samples_per_class": [5],
                       "seeds": [0], "selected": {"g": str(partial)},
                       "dataset_settings": {"digits": {"model": "small_cnn"}}})
    with pytest.raises(ConfigError, match=r"^config error at 'selected': .*partial.yaml has no learning rate for mse "
                                          r"on digits at 5 per class"):
        Grid(config)
    config["methods"] = ["cosine"]
    assert Grid(config).configurations[0].settings["train"]["lr"] == data["values"]["digits"]["cosine"]["5"]["lr"]


def test_the_tables_say_where_the_rates_came_from() -> None:
    from benchmark.aggregate import protocol

    assert protocol(load_config(REPO / "config/config.yaml")).startswith(
        "learning rate and weight decay per method and size selected on validation splits by the tuned protocol "
        "(config/selected/digits.yaml)")
    assert protocol(load_config(REPO / "config/paper.yaml", base=REPO / "config/config.yaml")) == \
        "hyperparameters set in the config"  # no paper dataset in the file: nothing of it applies


def test_only_the_grids_named_take_the_selected_values(tmp_path) -> None:
    """An overlay with a name of its own keeps the rates it sets (the file is the default grid's); a grid named
    with a file that is not there stops with one line."""
    import pytest

    from benchmark.config import ConfigError

    overlay = tmp_path / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"grid": "mine", "train": {"epochs": 10}}))
    mine = Grid(load_config(overlay, base=REPO / "config/config.yaml"))
    hand = {"softmax_ce": 0.05, "label_smoothing": 0.05, "mse": 0.01, "cosine": 0.5, "cosine_ce": 0.5}
    assert {c.method: c.settings["train"]["lr"] for c in mine.configurations} == hand
    overlay.write_text(yaml.safe_dump({"grid": "mine", "selected": {"mine": "config/selected/nowhere.yaml"}}))
    with pytest.raises(ConfigError, match=r"^config error at 'selected.mine': config/selected/nowhere.yaml does not "
                                          r"exist; write it with `python -m benchmark export-selection`"):
        Grid(load_config(overlay, base=REPO / "config/config.yaml"))
