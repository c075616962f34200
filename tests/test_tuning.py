"""The tuned protocol (benchmark/tuning.py): points, scores, selection, successive halving, and that the test
set never enters a trial or a selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, snakemake, write_config

from benchmark import tuning


def test_log_points_and_the_product_of_the_space() -> None:
    assert tuning.log_points(0.01, 1.0, 3) == [0.01, 0.1, 1.0]
    assert tuning.log_points(0.003, 3.0, 4) == [0.003, 0.03, 0.3, 3.0]
    assert tuning.log_points(1e-4, 1e-2, 1) == [0.001]  # one point: the geometric middle
    space = {"weight_decay": {"log": [1e-4, 1e-3], "points": 2}, "lr": {"log": [0.1, 1.0], "points": 2},
             "batch_size": [16, 32]}
    points = tuning.points(space)
    assert len(points) == 8
    # the order of SEARCHED (lr slowest, then weight_decay, then batch_size), whatever the file's order
    assert points[0] == {"lr": 0.1, "weight_decay": 1e-4, "batch_size": 16}
    assert points[1] == {"lr": 0.1, "weight_decay": 1e-4, "batch_size": 32}
    assert points[-1] == {"lr": 1.0, "weight_decay": 1e-3, "batch_size": 32}


def test_a_point_sets_the_optimisers_weight_decay() -> None:
    train = {"lr": "tuned", "epochs": 10, "optimizer": {"weight_decay": "tuned", "momentum": 0.9}}
    out = tuning.apply_point(train, {"lr": 0.3, "weight_decay": 1e-4})
    assert out["lr"] == 0.3 and out["optimizer"] == {"weight_decay": 1e-4, "momentum": 0.9}
    assert train["lr"] == "tuned"  # not changed in place


def test_score_is_the_mean_of_the_last_validation_epochs_and_a_diverged_trial_loses() -> None:
    record = {"status": "ok", "curves": {"val_accuracy": [0.1, 0.5, 0.6, 0.8]}}
    assert tuning.score(record, 2) == pytest.approx(0.7)
    assert tuning.score(record, 3, upto=3) == pytest.approx((0.1 + 0.5 + 0.6) / 3)
    assert tuning.score({"status": "diverged", "curves": {"val_accuracy": [0.9]}}, 1) == -1.0
    assert tuning.score({"status": "ok", "curves": {}}, 1) == -1.0


def test_choose_takes_the_best_mean_and_the_first_point_on_ties() -> None:
    points = [{"lr": 0.1}, {"lr": 0.3}, {"lr": 1.0}]
    trials = [{"point": 0, "score": 0.5}, {"point": 0, "score": 0.7}, {"point": 1, "score": 0.6},
              {"point": 1, "score": 0.6}, {"point": 2, "score": 0.9}, {"point": 2, "score": 0.1}]
    rows = tuning.summarise_trials(trials, points)
    assert [r["score"] for r in rows] == pytest.approx([0.6, 0.6, 0.5])
    assert tuning.choose(rows)["lr"] == 0.1  # 0.1 and 0.3 tie at 0.6: the first point


def test_rungs_and_the_epochs_successive_halving_trains() -> None:
    assert tuning.rungs(1, 3, 10) == [1, 3, 9, 10]
    assert tuning.rungs(2, 2, 8) == [2, 4, 8]
    assert tuning.rungs(5, 3, 4) == [4]
    # 12 points x 3 runs: 12 x 1 + 4 x 2 + 2 x 6 + 1 x 1 epochs per run
    assert tuning.halving_epochs(12, 3, 10, {"eta": 3, "min_epochs": 1}) == 3 * (12 + 8 + 12 + 1)


def test_successive_halving_stops_and_promotes_as_declared(tmp_path: Path) -> None:
    """Point i's validation accuracy is i / 10 at every epoch except point 0, a late bloomer that is best only
    after 5 epochs: halving (eta 2) drops the weaker half at each rung and never trains a dropped point on."""
    points = [{"lr": v} for v in (0.1, 0.2, 0.3, 0.4)]
    spec = {"points": points, "runs": [[0, 0], [1, 0]], "selection": str(tmp_path / "selection.json"),
            "table": str(tmp_path / "trials.csv"), "budget": {},
            "tune": {"objective_epochs": 1, "halving": {"eta": 2, "min_epochs": 1}},
            "trials": [{"settings": {"train": {"epochs": 4}}}] * 4}
    trained: list[tuple[int, int]] = []

    def train_trial(i: int, split: int, seed: int, until: int) -> dict:
        trained.append((i, until))
        curve = [i / 10 + (0.5 if i == 0 and epoch >= 5 else 0.0) for epoch in range(1, until + 1)]
        return {"status": "ok", "curves": {"val_accuracy": curve}, "path": f"p{i}"}

    selection = tuning.run_halving(spec, train_trial)
    by_rung = {}
    for i, until in trained:
        by_rung.setdefault(until, set()).add(i)
    assert by_rung == {1: {0, 1, 2, 3}, 2: {2, 3}, 4: {3}}  # rungs 1, 2, 4 epochs; halves kept: {2, 3}, then {3}
    assert all(trained.count((i, u)) == 2 for i, u in trained)  # both runs of each surviving point
    assert selection["values"] == {"lr": 0.4} and selection["epochs_trained"] == 2 * (4 * 1 + 2 * 1 + 1 * 2)
    table = (tmp_path / "trials.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * (4 + 2 + 1)  # every trial of every rung is in the table


@pytest.mark.slow
def test_trials_and_selection_never_read_the_test_set_and_are_deterministic(digits: Path, tmp_path: Path) -> None:
    """Scrambling the test labels changes no trial and no selection; running the search twice selects the same."""
    from benchmark import packs
    from benchmark.config import load_config
    from benchmark.grid import Grid
    from benchmark.train import RunOptions

    config_path = tmp_path / "tuned.yaml"
    config_path.write_text(yaml.safe_dump({
        "grid": "t", "methods": ["softmax_ce"], "samples_per_class": [5], "seeds": [0], "splits": [0, 1],
        "train": {"epochs": 4, "steps_per_epoch": 6},
        "tune": {"strategy": "halving", "space": {"lr": {"log": [0.01, 1.0], "points": 3}}, "seeds": [0],
                 "objective_epochs": 2, "halving": {"eta": 2, "min_epochs": 1}}}))
    grid = Grid(load_config(config_path, base=REPO / "config/config.yaml"))
    scrambled = tmp_path / "scrambled"
    shutil.copytree(digits, scrambled)
    labels = np.load(scrambled / "labels.npy")
    test_idx = np.load(scrambled / "test_idx.npy")
    labels[test_idx] = np.random.default_rng(0).permutation(labels[test_idx])
    np.save(scrambled / "labels.npy", labels)  # metadata's hashes are not checked by the trainer
    options = RunOptions(device="cpu", threads=1, eval_batch_size=256)
    context = {"grid": "t", "tracking": None, "provenance": {}}
    selections = []
    for name, data in (("a", digits), ("b", digits), ("scrambled", scrambled)):
        from benchmark.tuning import tuning_spec

        spec = tuning_spec(grid.tunings[0], grid.config["tune"], str(data))
        for trial in spec["trials"]:
            trial["folder"] = str(tmp_path / name / trial["folder"])
        spec["selection"] = str(tmp_path / name / "selection.json")
        spec["table"] = str(tmp_path / name / "trials.csv")
        selections.append(packs.run_halving(spec, options, context))
    assert selections[0] == selections[1]  # deterministic
    assert selections[0]["values"] == selections[2]["values"]
    assert selections[0]["points"] == selections[2]["points"]  # every score identical: no test label was read
    trial_records = list((tmp_path / "a").rglob("metrics.json"))
    assert trial_records and all(json.loads(p.read_text())["test_accuracy"] is None for p in trial_records)


@pytest.mark.slow
def test_a_tuned_grid_and_its_claim_document_through_snakemake(repo: Path) -> None:
    """The grid strategy's trials are ordinary packs; the final cells train with the selection; the claim
    document is written by the rule from the cells, and its numbers are the cells' numbers."""
    from benchmark.aggregate import collect
    from benchmark.claims import comparisons
    from benchmark.config import load_config

    config = write_config(repo, "claim", epochs=2, grid="claim", methods=["softmax_ce", "cosine"],
                          samples_per_class=[5, "all"], seeds=[0, 1], splits=[0], tracking=False,
                          seeds_per_job=2, tune={"space": {"lr": {"log": [0.05, 0.5], "points": 2}}, "seeds": [0],
                                                 "objective_epochs": 1},
                          claim={"method": "cosine", "baseline": "softmax_ce", "out": "docs/claim_test.md"})
    data = yaml.safe_load(config.read_text())
    data["train"]["steps_per_epoch"] = 5
    config.write_text(yaml.safe_dump(data))
    snakemake(repo, "--cores", "2", "--configfile", str(config))
    selections = sorted((repo / "results/tuning").rglob("selection.json"))
    assert len(selections) == 4  # (softmax_ce, cosine) x (5, all)
    chosen = json.loads(selections[0].read_text())
    assert chosen["strategy"] == "grid" and chosen["values"]["lr"] in (0.05, 0.5)
    record = json.loads(next((repo / "results/cells").rglob("metrics.json")).read_text())
    assert record["settings"]["train"]["lr"] in (0.05, 0.5) and "selection" in record["identity"]
    document = (repo / "docs/claim_test.md").read_text()
    import os

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        frame, _ = collect(load_config(config, base=repo / "config/config.yaml"))
    finally:
        os.chdir(cwd)
    table = comparisons(frame, "cosine", "softmax_ce")
    for row in table.itertuples():
        assert f"| {row.baseline_mean:.1f} | {row.method_mean:.1f} | {row.diff:+.1f} |" in document
    assert "tuned protocol" in document and "Machine:" in document
    assert "Nothing to be done" in snakemake(repo, "-n", "--configfile", str(config)).stdout


def test_the_claim_reading_says_narrows_reverses_or_not_from_the_numbers() -> None:
    import pandas as pd

    from benchmark.claims import summary

    def reading(diffs: list[float], verdicts: list[str]) -> str:
        part = pd.DataFrame({"spc": ["2", "5", "50", "all"], "diff": diffs, "verdict": verdicts})
        return summary(part, "cosine", "softmax_ce", few=10)

    text = reading([4.0, 2.0, 1.0, 0.0], ["ahead", "-", "-", "-"])
    assert "mean difference +3.0 points" in text and "the gap narrows" in text and "holds here" in text
    text = reading([4.0, 2.0, -3.0, -5.0], ["ahead", "ahead", "behind", "behind"])
    assert "the gap closes and reverses" in text and "significantly ahead at 2 size(s)" in text
    text = reading([-1.0, 1.0, 2.0, 3.0], ["-", "-", "-", "-"])
    assert "does not narrow" in text and "does not hold here" in text
