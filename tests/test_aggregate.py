"""Tables from fake cell results: mean +- std by hand, best in bold, missing and diverged shown."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest

from benchmark.aggregate import collect, summary_metrics, write_tables
from benchmark.config import cell_dir

GRID = {
    "grid": "toy",
    "datasets": ["digits"],
    "losses": ["softmax_ce", "cosine", "mse"],
    "samples_per_class": [5, "all"],
    "seeds": [0, 1, 2],
}

# Test accuracy (fraction) per (loss, spc) and seed; None = no metrics.json (a missing cell).
ACCURACY = {
    ("softmax_ce", 5): [0.80, 0.85, 0.90],
    ("cosine", 5): [0.90, 0.94, None],       # seed 2 missing
    ("mse", 5): [0.70, 0.72, 0.77],
    ("softmax_ce", "all"): [0.97, 0.98, 0.99],
    ("cosine", "all"): [0.96, 0.965, 0.97],
    ("mse", "all"): [0.95, 0.10, 0.96],      # seed 1 diverged
}
DIVERGED = {("mse", "all", 1)}

# Worked out by hand, in %:
#   softmax_ce 5:   80, 85, 90        mean 85.0, std sqrt((25 + 0 + 25) / 2) = 5.0
#   cosine 5:       90, 94            mean 92.0, std sqrt((4 + 4) / 1) = 2.828  (1 missing)  <- best
#   mse 5:          70, 72, 77        mean 73.0, std sqrt((9 + 1 + 16) / 2) = 3.606
#   softmax_ce all: 97, 98, 99        mean 98.0, std 1.0                                     <- best
#   cosine all:     96, 96.5, 97      mean 96.5, std 0.5
#   mse all:        95, 10, 96        mean 67.0, std sqrt((784 + 3249 + 841) / 2) = 49.366 (1 diverged)
EXPECTED = {
    ("softmax_ce", "5"): (85.0, 5.0, 3, 0, 0),
    ("cosine", "5"): (92.0, math.sqrt(8), 2, 1, 0),
    ("mse", "5"): (73.0, math.sqrt(13), 3, 0, 0),
    ("softmax_ce", "all"): (98.0, 1.0, 3, 0, 0),
    ("cosine", "all"): (96.5, 0.5, 3, 0, 0),
    ("mse", "all"): (67.0, math.sqrt(2437), 3, 0, 1),
}
EXPECTED_MD_ROWS = {
    "softmax_ce": ["85.0 ± 5.0 (n=3)", "**98.0 ± 1.0** (n=3)"],
    "cosine": ["**92.0 ± 2.8** (n=2, 1 missing)", "96.5 ± 0.5 (n=3)"],
    "mse": ["73.0 ± 3.6 (n=3)", "67.0 ± 49.4 (n=3, 1 diverged)"],
}
EXPECTED_TEX_ROWS = {
    r"softmax\_ce": [r"85.0 $\pm$ 5.0 (n=3)", r"\textbf{98.0 $\pm$ 1.0} (n=3)"],
    "cosine": [r"\textbf{92.0 $\pm$ 2.8} (n=2, 1 missing)", r"96.5 $\pm$ 0.5 (n=3)"],
    "mse": [r"73.0 $\pm$ 3.6 (n=3)", r"67.0 $\pm$ 49.4 (n=3, 1 diverged)"],
}


def _write_metrics(root: Path, dataset: str, loss: str, spc, seed: int, accuracy: float, status: str = "ok",
                   train_images: int = 50) -> None:
    path = root / cell_dir(dataset, loss, spc, seed) / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "status": status, "test_accuracy": accuracy, "test_balanced_accuracy": accuracy - 0.01,
        "train_images": train_images, "num_classes": 10,
    }))


def _populate(root: Path, accuracy: dict = ACCURACY) -> None:
    for (loss, spc), values in accuracy.items():
        for seed, acc in enumerate(values):
            if acc is None:
                continue
            status = "diverged" if (loss, spc, seed) in DIVERGED else "ok"
            _write_metrics(root, "digits", loss, spc, seed, acc, status,
                           train_images=50 if spc == 5 else 1297)


@pytest.fixture
def written(tmp_path):
    _populate(tmp_path)
    prefix = tmp_path / "results" / "tables" / "toy"
    frame, summary = write_tables(GRID, prefix, root=tmp_path)
    return tmp_path, prefix, frame, summary


def _md_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| loss"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_collect_has_every_expected_cell(tmp_path):
    _populate(tmp_path)
    frame = collect(GRID, root=tmp_path)
    assert len(frame) == 3 * 2 * 3
    by_key = {(r.loss, r.spc, r.seed): r for r in frame.itertuples()}
    assert by_key[("cosine", "5", 2)].status == "missing"
    assert math.isnan(by_key[("cosine", "5", 2)].test_accuracy)
    assert by_key[("mse", "all", 1)].status == "diverged"
    assert by_key[("mse", "all", 1)].test_accuracy == pytest.approx(10.0)
    assert by_key[("softmax_ce", "5", 1)].test_accuracy == pytest.approx(85.0)
    assert by_key[("softmax_ce", "5", 1)].test_balanced_accuracy == pytest.approx(84.0)
    assert by_key[("softmax_ce", "5", 1)].per_class == pytest.approx(5.0)
    assert by_key[("softmax_ce", "all", 0)].per_class == pytest.approx(129.7)
    assert sorted(frame.status.value_counts().items()) == [("diverged", 1), ("missing", 1), ("ok", 16)]


def test_summary_mean_std_by_hand(written):
    _, _, _, summary = written
    assert len(summary) == 6
    for row in summary.itertuples():
        mean, std, n, missing, diverged = EXPECTED[(row.loss, row.spc)]
        assert row.mean == pytest.approx(mean, abs=1e-9), (row.loss, row.spc)
        assert row.std == pytest.approx(std, abs=1e-9), (row.loss, row.spc)
        assert (row.n, row.missing, row.diverged, row.seeds) == (n, missing, diverged, 3), (row.loss, row.spc)


def test_markdown_table(written):
    _, prefix, _, _ = written
    text = prefix.with_suffix(".md").read_text()
    assert text.startswith("### Test accuracy (%) on grid 'toy'")
    assert "| loss | digits 5/class | digits all |" in text
    rows = _md_rows(text)
    assert rows == EXPECTED_MD_ROWS
    # Exactly one bold entry per column.
    for col in range(2):
        assert sum(rows[loss][col].startswith("**") for loss in rows) == 1


def test_latex_table(written):
    _, prefix, _, _ = written
    text = prefix.with_suffix(".tex").read_text()
    assert r"\begin{tabular}{lrr}" in text
    assert r"loss & digits 5 & digits all \\" in text
    body = {}
    for line in text.splitlines():
        if line.endswith(r" \\") and not line.startswith("loss &"):
            cells = line[: -len(r" \\")].split(" & ")
            body[cells[0]] = cells[1:]
    assert body == EXPECTED_TEX_ROWS
    assert text.count(r"\textbf{") == 2
    for env in ("table", "tabular"):
        assert text.count(rf"\begin{{{env}}}") == text.count(rf"\end{{{env}}}") == 1


def test_latex_has_no_unescaped_percent(written):
    _, prefix, _, _ = written
    text = prefix.with_suffix(".tex").read_text()
    offending = [ln for ln in text.splitlines() if re.search(r"(?<!\\)%", ln)]
    assert offending == []


def test_csv_summary(written):
    _, prefix, _, _ = written
    with open(prefix.with_suffix(".csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert set(rows[0]) >= {"dataset", "loss", "spc", "mean", "std", "n", "missing", "diverged", "seeds"}
    for row in rows:
        mean, std, n, missing, diverged = EXPECTED[(row["loss"], row["spc"])]
        assert row["dataset"] == "digits"
        assert float(row["mean"]) == pytest.approx(mean, abs=1e-4)
        assert float(row["std"]) == pytest.approx(std, abs=1e-4)
        assert (float(row["n"]), float(row["missing"]), float(row["diverged"])) == (n, missing, diverged)


def test_summary_metrics_names(written):
    _, _, _, summary = written
    metrics = summary_metrics(summary)
    assert metrics["acc/digits/cosine/spc5"] == pytest.approx(92.0)
    assert metrics["acc/digits/mse/spcall"] == pytest.approx(67.0)
    assert len(metrics) == 6


def test_entry_with_no_results_is_missing_and_never_bold(tmp_path):
    accuracy = dict(ACCURACY)
    accuracy[("cosine", 5)] = [None, None, None]
    _populate(tmp_path, accuracy)
    prefix = tmp_path / "t"
    _, summary = write_tables(GRID, prefix, root=tmp_path)
    rows = _md_rows(prefix.with_suffix(".md").read_text())
    assert set(rows) == {"softmax_ce", "cosine", "mse"}  # the loss is not dropped
    assert rows["cosine"][0] == "missing"
    assert rows["softmax_ce"][0] == "**85.0 ± 5.0** (n=3)"  # best of the remaining ones
    row = summary[(summary.loss == "cosine") & (summary.spc == "5")].iloc[0]
    assert (row.n, row.missing) == (0, 3)
    assert "missing" in prefix.with_suffix(".tex").read_text()
    assert "acc/digits/cosine/spc5" not in summary_metrics(summary)


def test_single_seed_has_zero_std(tmp_path):
    grid = {**GRID, "losses": ["cosine"], "samples_per_class": [5], "seeds": [0]}
    _write_metrics(tmp_path, "digits", "cosine", 5, 0, 0.9)
    prefix = tmp_path / "one"
    _, summary = write_tables(grid, prefix, root=tmp_path)
    assert summary.iloc[0]["std"] == 0.0
    assert _md_rows(prefix.with_suffix(".md").read_text()) == {"cosine": ["**90.0 ± 0.0** (n=1)"]}


def test_latex_escapes_underscore_in_grid_name(tmp_path):
    _populate(tmp_path)
    prefix = tmp_path / "u"
    write_tables({**GRID, "grid": "toy_grid"}, prefix, root=tmp_path)
    lines = prefix.with_suffix(".tex").read_text().splitlines()
    caption = next(ln for ln in lines if ln.startswith(r"\caption"))
    assert re.search(r"(?<!\\)_", caption) is None, caption
