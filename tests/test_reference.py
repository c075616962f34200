"""Published numbers beside ours: the reference files hold the paper's tables, and the tables show
them with our difference; the paired-difference section of the Markdown table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from benchmark.aggregate import write_tables
from benchmark.config import REPO_ROOT, cell_dir
from benchmark.reference import ReferenceFileError, load_reference

# Barz & Denzler, WACV 2020, Table 2 (rows) x (CUB, NAB, Cars, Flowers-102, MIT67, CIFAR-100), as in PAPER.md.
DATASETS = ["cub", "nabirds", "cars", "flowers", "mit67", "cifar100"]
TABLE2 = {
    "mse": [42.0, 27.7, 41.8, 63.0, 38.2, 75.1],
    "softmax_ce": [51.9, 59.4, 78.2, 67.3, 44.3, 77.0],
    "label_smoothing": [55.5, 68.3, 78.1, 66.8, 38.7, 77.5],
    "cosine": [67.6, 71.7, 84.3, 71.1, 51.5, 75.3],
    "cosine_ce": [68.0, 71.9, 85.0, 70.6, 52.7, 76.4],
}
TABLE2_SEMANTIC = {"cosine_semantic": (59.6, 72.1, 74.6), "cosine_ce_semantic": (70.4, 73.8, 76.7)}
TABLE3 = {"cosine": 67.6, "cosine_ce": 68.0,
          "cosine_semantic-cub_flat": 66.6, "cosine_ce_semantic-cub_flat": 68.8,
          "cosine_semantic-cub_wikispecies": 61.6, "cosine_ce_semantic-cub_wikispecies": 69.9,
          "cosine_semantic-cub_balanced": 59.9, "cosine_ce_semantic-cub_balanced": 70.4}


def test_table2_file_holds_the_papers_numbers():
    ref = load_reference(REPO_ROOT / "config" / "reference" / "paper_table2.yaml")
    assert ref["metric"] == "test_accuracy" and ref["samples_per_class"] == "all"
    for loss, values in TABLE2.items():
        assert ref["values"][loss] == dict(zip(DATASETS, values, strict=True)), loss
    for loss, (cub, nab, cifar) in TABLE2_SEMANTIC.items():
        assert ref["values"][f"{loss}-cub_balanced"] == {"cub": cub}
        assert ref["values"][f"{loss}-nabirds"] == {"nabirds": nab}
        assert ref["values"][f"{loss}-cifar100"] == {"cifar100": cifar}
    assert len(ref["values"]) == len(TABLE2) + 3 * len(TABLE2_SEMANTIC)


def test_table3_file_holds_the_papers_numbers():
    ref = load_reference(REPO_ROOT / "config" / "reference" / "paper_table3.yaml")
    assert {label: row["cub"] for label, row in ref["values"].items()} == TABLE3
    assert all(set(row) == {"cub"} for row in ref["values"].values())


def _write(root: Path, dataset: str, loss: str, spc, seed: int, accuracy: float) -> None:
    path = root / cell_dir(dataset, loss, spc, seed) / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "ok", "test_accuracy": accuracy, "test_balanced_accuracy": accuracy,
                                "train_images": 100, "num_classes": 10}))


@pytest.fixture
def grid(tmp_path) -> dict:
    """Two seeds of softmax_ce and cosine on digits at 5 per class and 'all', a reference for 'all'."""
    accuracy = {("softmax_ce", 5): [0.60, 0.70], ("cosine", 5): [0.75, 0.70],
                ("softmax_ce", "all"): [0.90, 0.92], ("cosine", "all"): [0.93, 0.95]}
    for (loss, spc), values in accuracy.items():
        for seed, value in enumerate(values):
            _write(tmp_path, "digits", loss, spc, seed, value)
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump({
        "source": "A & B 2020, Table 9", "metric": "test_accuracy", "samples_per_class": "all",
        "values": {"softmax_ce": {"digits": 95.0, "cub": 50.0}, "cosine": {"digits": 90.25}, "mse": {"digits": 1}},
    }))
    return {"grid": "ref", "datasets": ["digits"], "losses": ["softmax_ce", "cosine"],
            "samples_per_class": [5, "all"], "seeds": [0, 1], "reference": "ref.yaml",
            "paired_baseline": "softmax_ce"}


def _md_rows(text: str) -> dict[str, list[str]]:
    table = text.split("### Paired")[0]
    return {cells[0]: cells[1:] for line in table.splitlines() if line.startswith("| ") and "| loss |" not in line
            for cells in [[c.strip() for c in line.strip().strip("|").split(" | ")]]}


def test_tables_show_reference_and_difference(grid, tmp_path):
    prefix = tmp_path / "t"
    _, summary = write_tables(grid, prefix, root=tmp_path)
    md = prefix.with_suffix(".md").read_text()
    assert "[paper X, Δ ours - X]: A & B 2020, Table 9" in md.splitlines()[0]
    assert _md_rows(md) == {
        "softmax_ce": ["65.0 ± 7.1 (n=2)", "91.0 ± 1.4 (n=2) [paper 95.0, Δ -4.0]"],
        "cosine": ["**72.5 ± 3.5** (n=2)", "**94.0 ± 1.4** (n=2) [paper 90.2, Δ +3.8]"],
    }
    tex = prefix.with_suffix(".tex").read_text()
    assert r"\textbf{94.0 $\pm$ 1.4} (n=2) [paper 90.2, $\Delta$ +3.8]" in tex
    assert r"A \& B 2020" in tex
    with open(prefix.with_suffix(".csv"), newline="") as handle:
        rows = {(r["loss"], r["spc"]): r for r in csv.DictReader(handle)}
    assert float(rows[("cosine", "all")]["reference"]) == pytest.approx(90.25)
    assert float(rows[("cosine", "all")]["difference"]) == pytest.approx(3.75)
    assert rows[("cosine", "5")]["reference"] == "" and rows[("cosine", "5")]["difference"] == ""
    assert set(summary.columns) >= {"reference", "difference"}


def test_paired_differences_per_seed(grid, tmp_path):
    prefix = tmp_path / "p"
    write_tables(grid, prefix, root=tmp_path)
    md = prefix.with_suffix(".md").read_text()
    paired = md.split("### Paired difference to softmax_ce")[1]
    # cosine - softmax_ce per seed: 5/class +15, 0 -> mean 7.5, std 10.6, ahead on 1 of 2; all: +3, +3.
    assert "| cosine | +7.5 ± 10.6 (1/2) | +3.0 ± 0.0 (2/2) |" in paired


def test_a_loss_a_dataset_does_not_run_shows_a_dash(tmp_path):
    _write(tmp_path, "digits", "softmax_ce", 5, 0, 0.5)
    config = {"grid": "dash", "datasets": ["digits"], "losses": ["softmax_ce", "cosine"], "samples_per_class": [5],
              "seeds": [0], "dataset_settings": {"digits": {"model": "small_cnn", "losses": ["softmax_ce"]}}}
    write_tables(config, tmp_path / "d", root=tmp_path)
    assert _md_rows((tmp_path / "d.md").read_text()) == {"softmax_ce": ["**50.0 ± 0.0** (n=1)"]}


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"),
    ("values: [", "not valid YAML"),
    ({"source": "x", "metric": "test_accuracy", "values": {}}, "needs the keys"),
    ({"source": "x", "metric": "top5", "samples_per_class": "all", "values": {}}, "metric 'top5' is unknown"),
    ({"source": "x", "metric": "test_accuracy", "samples_per_class": "all", "values": {"triplet": {"cub": 1}}},
     "'triplet' does not name a registered loss"),
    ({"source": "x", "metric": "test_accuracy", "samples_per_class": "all", "values": {"cosine": {"cub": 101}}},
     "cosine.cub is 101"),
    ({"source": "x", "metric": "test_accuracy", "samples_per_class": "all", "values": {"cosine": 5}},
     "must map datasets"),
])
def test_bad_reference_files_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "ref.yaml"
    if content is not None:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    with pytest.raises(ReferenceFileError) as info:
        load_reference(path)
    assert needle in str(info.value) and "\n" not in str(info.value)
