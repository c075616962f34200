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
    assert config["selected"] == "config/selected/digits.yaml"
    values = yaml.safe_load(SELECTED.read_text())["values"]["digits"]
    for c in Grid(config).configurations:
        chosen = values[c.method][str(c.spc)]
        assert c.settings["train"]["lr"] == chosen["lr"]
        assert c.settings["train"]["optimizer"]["weight_decay"] == chosen["weight_decay"]
