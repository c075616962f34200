"""The harness's own helpers, by hand: timing calls from outside, synthetic records the product accepts,
parsing Snakemake's output, and the tracking part's figures. No assertion on how fast anything is."""

from __future__ import annotations

import json
import time
import types

import pytest

from perf import dag, tracking
from perf.common import timed_calls
from perf.records import fake_data_hash, write_markers, write_receipts, write_records


class Worker:
    def step(self, seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    def fail(self) -> None:
        raise ValueError("boom")


def test_timed_calls_times_each_call_and_puts_the_originals_back():
    module = types.SimpleNamespace(double=lambda x: 2 * x)
    original_double, original_step = module.double, Worker.step
    with timed_calls([(module, "double"), (Worker, "step"), (Worker, "fail")]) as calls:
        assert module.double(4) == 8 and Worker().step(0.02) == "done" and Worker().step(0.0) == "done"
        with pytest.raises(ValueError, match="boom"):
            Worker().fail()  # a call that raises is timed too, and the error passes through
    assert [len(calls[n]) for n in ("double", "step", "fail")] == [1, 2, 1]
    assert calls["step"][0] >= 0.02 > calls["step"][1]
    assert module.double is original_double and Worker.step is original_step


@pytest.fixture(scope="module")
def small_grid():
    from benchmark.config import validate
    from benchmark.grid import Grid
    from perf.common import synthetic_grid

    config = validate(synthetic_grid(2))
    config["methods"], config["samples_per_class"] = ["softmax_ce", "cosine"], [5, "all"]
    return config, Grid(validate(config))


def test_synthetic_records_are_accepted_by_the_aggregate_and_the_dag(small_grid, tmp_path):
    from benchmark.aggregate import grid_records
    from benchmark.grid import remove_stale_markers

    config, grid = small_grid
    assert write_receipts(["digits"], tmp_path) == {"digits": fake_data_hash("digits")}
    receipt = json.loads((tmp_path / "data" / "prepared" / "digits.json").read_text())
    assert receipt["data_hash"] == fake_data_hash("digits") and receipt["classes"] == 10
    assert write_records(grid, tmp_path) == len(grid.cells()) == 8  # 2 methods x 2 sizes x 2 seeds
    # every record passes the aggregate's check (coordinates, settings key, code and data identity)
    assert len(grid_records(config, tmp_path)) == 8
    record = json.loads((tmp_path / grid.configurations[0].record(0, 1)).read_text())
    assert record["cell"]["seed"] == 1 and record["train_images"] == 50 and record["epochs_run"] == 10
    assert [len(record["curves"][name]) for name in ("train_loss", "lr")] == [10, 10]  # one value per epoch
    assert write_markers(grid, tmp_path) == len(grid.packs) == 4  # one pack of 2 seeds per configuration
    assert remove_stale_markers(grid, tmp_path) == []  # the DAG keeps every marker: each names existing records
    marker = json.loads((tmp_path / grid.packs[0].marker).read_text())
    assert [c["record"] for c in marker["cells"]] == grid.packs[0].records


def test_records_of_other_data_are_refused(small_grid, tmp_path):
    from benchmark.aggregate import grid_records
    from benchmark.records import RecordError

    config, grid = small_grid
    write_receipts(["digits"], tmp_path)
    write_records(grid, tmp_path)
    (tmp_path / "data" / "prepared" / "digits.json").write_text(json.dumps({"data_hash": "another"}))
    with pytest.raises(RecordError, match="data identity"):
        grid_records(config, tmp_path)


def test_snakemake_output_is_parsed():
    summary = ("output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
               "results/a.pack\t-\ttrain\t-\tmissing\tupdate pending\n"
               "Building DAG of jobs...\n"
               "data/prepared/digits.json\tTue Dec  1 14:58:21 2026\tprepare_data\tlogs/x.log\tok\tno update\n")
    assert dag.summary_files(summary) == ["results/a.pack", "data/prepared/digits.json"]
    stats = "Job stats:\njob      count\n-----  -------\nall          1\ntrain       25\ntotal       26\n"
    assert dag.job_count(stats) == 26 and dag.job_count("Nothing to be done") is None


def test_tracking_figures_by_hand():
    # 2 cells of 2 epochs of 0.5 s; the tracker took 5 ms per epoch, 1 s to start and 0.5 s to finish a cell
    raw = {"flush_s": 0.0, "epoch_s": [0.5] * 4,
           "calls": {"__init__": [1.0, 1.0], "epoch": [0.005] * 4, "_flush": [0.004] * 6, "finished": [0.5, 0.5],
                     "stopped": []}}
    records = [{"timing": {"train_s": 1.2}}, {"timing": {"train_s": 1.4}}]
    figures = tracking.summarise(raw, records, wall_s=9.0)
    assert figures["cells"] == 2 and figures["epochs"] == 4 and figures["flushes"] == 6
    assert figures["tracker_epoch_ms_mean"] == pytest.approx(5.0)
    assert figures["per_epoch_fraction"] == pytest.approx(0.01)  # 5 ms of a 500 ms epoch
    assert figures["with_start_and_finish_fraction"] == pytest.approx((0.02 + 3.0) / 2.0)
    assert figures["flush_ms_mean"] == pytest.approx(4.0) and figures["train_s_median"] == pytest.approx(1.3)
    assert figures["run_start_s"] == [1.0, 1.0]


def test_tracking_pack_spec_is_a_default_grid_pack_in_its_own_folder():
    from benchmark.config import load_config
    from benchmark.grid import Grid
    from perf.repo_copy import REPO

    config = load_config(REPO / "config" / "config.yaml")
    spec = tracking.pack_spec(config, "flush_0", cells=3, epochs=None)
    grid_pack = next(p for p in Grid(config).packs if p.configuration.method == "softmax_ce"
                     and p.configuration.spc == "all")
    assert spec["folder"] == f"flush_0/{grid_pack.configuration.folder}"
    assert spec["key"] == grid_pack.configuration.key and spec["runs"] == [[0, 0], [0, 1], [0, 2]]
    short = tracking.pack_spec(config, "off", cells=1, epochs=2)
    assert short["settings"]["train"]["epochs"] == 2 and short["key"] != spec["key"]
