"""Published numbers beside ours: the reference files hold the paper's tables, and the tables show
them with our difference; the paired-difference section of the Markdown table."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from fixtures.configs import minimal_config
from fixtures.records import write_records

from benchmark.aggregate import collect, reference
from benchmark.config import REPO_ROOT, table_rows
from benchmark.reference import ReferenceFileError, load_reference
from benchmark.tables import summarise, to_csv, to_latex, to_markdown

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


@pytest.fixture
def grid(tmp_path, monkeypatch) -> tuple[dict, object]:
    """Two seeds of softmax_ce and cosine on digits at 5 per class and 'all', a reference for 'all'."""
    accuracy = {("softmax_ce", 5): [0.60, 0.70], ("cosine", 5): [0.75, 0.70],
                ("softmax_ce", "all"): [0.90, 0.92], ("cosine", "all"): [0.93, 0.95]}
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump({
        "source": "A & B 2020, Table 9", "metric": "test_accuracy", "samples_per_class": "all",
        "values": {"softmax_ce": {"digits": 95.0, "cub": 50.0}, "cosine": {"digits": 90.25}, "mse": {"digits": 1}},
    }))
    monkeypatch.chdir(tmp_path)  # the config names its reference file relative to the repository
    config = minimal_config(grid="ref", methods=["softmax_ce", "cosine"], samples_per_class=[5, "all"],
                            seeds=[0, 1], reference="ref.yaml", baseline="softmax_ce")
    write_records(tmp_path, config, accuracy)
    frame, _ = collect(config, root=tmp_path)
    # the test accuracy, as the aggregate computes it
    summary = summarise(frame, table_rows(config), [("digits", "5"), ("digits", "all")], baseline="softmax_ce",
                        reference=reference(config, tmp_path))
    return config, summary


def _md_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("| ") and "| method |" not in line
            for cells in [[c.strip() for c in line.strip().strip("|").split(" | ")]]}


def test_tables_show_reference_and_difference(grid):
    _, summary = grid
    md = to_markdown(summary)
    rows = _md_rows(md)
    # means by hand: softmax_ce all (90 + 92) / 2 = 91 vs 95 -> -4.0; cosine all 94 vs 90.25 -> +3.75
    assert rows["softmax_ce"][1].endswith("[paper 95.0, Δ -4.0]")
    assert rows["cosine"][1].endswith("[paper 90.2, Δ +3.8]")
    assert "paper" not in rows["cosine"][0]  # the reference is for 'all' only
    assert "A & B 2020, Table 9" in md
    tex = to_latex(summary, "ref")
    assert r"[paper 90.2, $\Delta$ +3.8]" in tex and r"A \& B 2020" in tex
    csv = to_csv(summary)
    assert "reference" in csv.splitlines()[0]
    cells = summary.cells.set_index(["method", "spc"])
    assert cells.loc[("cosine", "all"), "reference"] == pytest.approx(90.25)
    assert cells.loc[("cosine", "all"), "reference_diff"] == pytest.approx(3.75)
    assert pd.isna(cells.loc[("cosine", "5"), "reference"])


def test_paired_differences_to_the_baseline(grid):
    _, summary = grid
    cells = summary.cells.set_index(["method", "spc"])
    # cosine - softmax_ce per seed: 5/class +15, 0 -> mean 7.5; all: +3, +3 -> 3.0 (sd 0)
    assert cells.loc[("cosine", "5"), "diff_to_baseline"] == pytest.approx(7.5)
    assert cells.loc[("cosine", "all"), "diff_to_baseline"] == pytest.approx(3.0)
    assert cells.loc[("cosine", "all"), "n_pairs"] == 2


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"),
    ("values: [", "not valid YAML"),
    ({"source": "x", "metric": "test_accuracy", "values": {}}, "needs the keys"),
    ({"source": "x", "metric": "top5", "samples_per_class": "all", "values": {}}, "metric 'top5' is unknown"),
    ({"source": "x", "metric": "test_accuracy", "samples_per_class": "all", "values": {"triplet": {"cub": 1}}},
     "'triplet' does not name a registered"),
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
