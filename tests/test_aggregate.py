"""The aggregate: every expected cell from its checked record (percent, per class, missing, diverged), a
record of another cell or other settings refused with one line, and the tables written from them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from fixtures.configs import minimal_config
from fixtures.records import write_records

from benchmark.aggregate import aggregate, collect, expected_identity, outputs
from benchmark.grid import Grid
from benchmark.records import RecordError

# Test accuracy (fraction) per (method, spc) and seed; None = no metrics.json (a missing cell).
ACCURACY = {
    ("softmax_ce", 5): [0.80, 0.85, 0.90],
    ("cosine", 5): [0.90, 0.94, None],       # seed 2 missing
    ("mse", 5): [0.70, 0.72, 0.77],
    ("softmax_ce", "all"): [0.97, 0.98, 0.99],
    ("cosine", "all"): [0.96, 0.965, 0.97],
    ("mse", "all"): [0.95, 0.10, 0.96],      # seed 1 diverged
}
DIVERGED = frozenset({("mse", "all", 1)})


@pytest.fixture
def config() -> dict:
    return minimal_config(grid="toy", methods=["softmax_ce", "cosine", "mse"], samples_per_class=[5, "all"],
                          seeds=[0, 1, 2], device="cpu", precision="fp32")


@pytest.fixture
def populated(tmp_path, config) -> Path:
    write_records(tmp_path, config, ACCURACY, DIVERGED, train_images={5: 50, "all": 1297})
    return tmp_path


def test_collect_has_every_expected_cell(populated, config):
    frame, curves = collect(config, root=populated)
    assert len(frame) == 3 * 2 * 3
    by_key = {(r.method, r.spc, r.seed): r for r in frame.itertuples()}
    assert by_key[("cosine", "5", 2)].status == "missing"
    assert math.isnan(by_key[("cosine", "5", 2)].accuracy)
    assert by_key[("mse", "all", 1)].status == "diverged"
    assert by_key[("mse", "all", 1)].accuracy == pytest.approx(10.0)  # percent, the accuracy it reached
    assert by_key[("softmax_ce", "5", 1)].accuracy == pytest.approx(85.0)
    assert by_key[("softmax_ce", "5", 1)].balanced_accuracy == pytest.approx(84.0)
    assert by_key[("softmax_ce", "5", 1)].per_class == pytest.approx(5.0)
    assert by_key[("softmax_ce", "all", 0)].per_class == pytest.approx(129.7)
    assert sorted(frame.status.value_counts().items()) == [("diverged", 1), ("missing", 1), ("ok", 16)]
    assert set(frame.split) == {0}
    # curves: epochs 1-based, one row per (cell, curve, epoch); seed 2's train loss ends at 3.0
    loss = curves[(curves.method == "mse") & (curves.spc == "5") & (curves.seed == 2) & (curves.name == "train_loss")]
    assert loss.epoch.tolist() == [1, 2] and loss.value.tolist() == [2.0, 3.0]


def _record_path(root: Path, config: dict, method: str, spc, seed: int) -> Path:
    configuration = next(c for c in Grid(config).configurations if (c.method, c.spc) == (method, spc))
    return root / configuration.record(0, seed)


def test_a_record_of_another_cell_is_refused(populated, config):
    """A result written into the wrong folder (another seed's coordinates) never enters a table."""
    path = _record_path(populated, config, "cosine", 5, 1)
    record = json.loads(path.read_text())
    record["cell"]["seed"] = 0
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match=rf"{path}.*record of cell .*'seed': 0") as info:
        collect(config, root=populated)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("part", ["settings", "code"])
def test_a_record_with_another_identity_is_refused(populated, config, part):
    path = _record_path(populated, config, "mse", "all", 2)
    record = json.loads(path.read_text())
    record["identity"][part] = "0" * len(record["identity"][part])
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match=f"its {part} identity is 0+"):
        collect(config, root=populated)


def test_records_of_other_data_are_refused_once_the_data_has_a_receipt(populated, config):
    receipt = populated / "data" / "prepared" / "digits.json"
    receipt.parent.mkdir(parents=True)
    receipt.write_text(json.dumps({"data_hash": "feedfacefeedface"}))
    configuration = Grid(config).configurations[0]
    assert expected_identity(configuration, populated)["data"] == "feedfacefeedface"
    with pytest.raises(RecordError, match="its data identity is None, the grid asks for feedfacefeedface"):
        collect(config, root=populated)


def test_changed_settings_look_for_their_own_records(populated, config):
    """Another learning rate is another settings key, another folder: the old records are not used."""
    config["train"]["lr"] = 0.07
    frame, _ = collect(config, root=populated)
    assert set(frame.status) == {"missing"}


@pytest.mark.slow
def test_aggregate_writes_every_declared_output(populated, config):
    tables, plots = populated / "results" / "tables", populated / "results" / "plots"
    written = aggregate(config, tables, plots, root=populated)
    declared = [p for paths in outputs(config, tables, plots).values() for p in paths]
    assert sorted(map(str, declared)) == sorted({str(p) for p in written} & set(map(str, declared)))
    assert all(p.exists() for p in declared)
    md = (tables / "toy.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| cosine |"))
    assert "92.0 ± 2.8" in row and "1 missing" in row  # mean and sd of 90 and 94 by hand
    csv = pd.read_csv(tables / "toy.csv")
    mse_all = csv[(csv.method == "mse") & (csv.spc == "all")].iloc[0]
    assert mse_all["mean"] == pytest.approx(67.0) and mse_all["diverged"] == 1
