"""A grid's tables (with their statistics) and plots, built from its cells' records.

Every number comes from a cell whose record matches what the grid asks for: its coordinates, its
settings key, its code and its data (benchmark/records.py). A record that does not match is refused
with one line naming the file; a cell without a record is "missing" in the tables, never dropped. The
statistics (confidence intervals, paired tests against the baseline with Holm's correction, ranks,
the Friedman test, the critical difference) are computed by benchmark/tables.py and benchmark/stats.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

from benchmark.code import cell_roots, code_files, code_hash
from benchmark.config import table_rows
from benchmark.grid import Grid
from benchmark.records import check_record


def outputs(config: dict, tables: Path = Path("results/tables"), plots: Path = Path("results/plots")) -> dict:
    """The files the aggregate writes for `config` (the workflow declares them as the rule's outputs)."""
    grid = config["grid"]
    rows = table_rows(config)
    out = {"tables": [tables / f"{grid}.{s}" for s in ("md", "tex", "csv", "html")],
           "plots": [plots / f"{grid}_{d}.{s}" for d in config["datasets"] for s in ("png", "pdf")],
           "curves": [plots / f"{grid}_curves_{c.dataset}_{c.spc}.{s}" for c in _columns(config)
                      for s in ("png", "pdf")],
           "cd": [tables / f"{grid}_cd.{s}" for s in ("png", "pdf")] if len(rows) >= 2 else []}
    return out


def _columns(config: dict):
    """One (dataset, spc) configuration per column, in table order."""
    seen = {}
    for c in Grid(config).configurations:
        seen.setdefault((c.dataset, str(c.spc)), c)
    return list(seen.values())


@functools.cache
def _code_hash(settings_json: str) -> str:
    return code_hash(code_files(cell_roots(json.loads(settings_json))))


def data_hash_of(dataset: str, root: Path = Path(".")) -> str | None:
    """The data hash the workflow prepared `dataset` as (its receipt); None without a receipt."""
    receipt = root / "data" / "prepared" / f"{dataset}.json"
    return json.loads(receipt.read_text())["data_hash"] if receipt.exists() else None


def expected_identity(configuration, root: Path = Path("."), selection: str | None = None) -> dict:
    """What the record of a cell of `configuration` must state (a tuned cell: also its selection's digest)."""
    from benchmark.io import file_hash

    identity = {"settings": configuration.key, "data": data_hash_of(configuration.dataset, root),
                "code": _code_hash(json.dumps(configuration.settings, sort_keys=True))}
    if selection is not None and (root / selection).exists():
        identity["selection"] = file_hash(root / selection)[:16]
    return identity


def _identities(grid: Grid, root: Path) -> dict:
    selections = {t.configuration.folder: t.selection for t in grid.tunings}
    return {c.folder: expected_identity(c, root, selections.get(c.folder)) for c in grid.configurations}


def grid_records(config: dict, root: Path = Path(".")) -> list[tuple[dict, Path]]:
    """(coordinates, record path) of every cell of the grid that has a record, each checked against its cell."""
    grid = Grid(config)
    identities = _identities(grid, root)
    out = []
    for configuration, split, seed in grid.cells():
        path = root / configuration.record(split, seed)
        if path.exists():
            check_record(path, configuration.coordinates(split, seed), identities[configuration.folder])
            out.append((configuration.coordinates(split, seed), path))
    return out


def collect(config: dict, root: Path = Path(".")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per expected cell (status "missing" without a record) and the long frame of training curves."""
    rows, curves = [], []
    grid = Grid(config)
    identities = _identities(grid, root)
    for configuration, split, seed in grid.cells():
        path = root / configuration.record(split, seed)
        row = {"dataset": configuration.dataset, "method": configuration.method, "spc": str(configuration.spc),
               "split": split, "seed": seed, "status": "missing", "accuracy": float("nan"),
               "balanced_accuracy": float("nan"), "per_class": float("nan")}
        if path.exists():
            record = check_record(path, configuration.coordinates(split, seed), identities[configuration.folder])
            row.update(status=record["status"], accuracy=100.0 * record["test_accuracy"],
                       balanced_accuracy=100.0 * record["test_balanced_accuracy"],
                       per_class=record["train_images"] / record["num_classes"])
            base = {k: row[k] for k in ("dataset", "method", "spc", "split", "seed")}
            for name, values in record["curves"].items():
                scale = 100.0 if name == "val_accuracy" else 1.0
                curves += [{**base, "epoch": epoch, "name": name, "value": scale * value}
                           for epoch, value in enumerate(values, start=1)]
        rows.append(row)
    columns = ["dataset", "method", "spc", "split", "seed", "epoch", "name", "value"]
    return pd.DataFrame(rows), pd.DataFrame(curves, columns=columns)


def reference(config: dict, root: Path = Path(".")):
    from benchmark.reference import load_reference
    from benchmark.tables import Reference

    if "reference" not in config:
        return None
    ref = load_reference(root / config["reference"])
    values = {(label, dataset): float(v) for label, row in ref["values"].items() for dataset, v in row.items()}
    return Reference(values=values, spc=ref["samples_per_class"], source=ref["source"])


def protocol(config: dict) -> str:
    """How the grid's hyperparameters were chosen, with the tuning budget every method got."""
    if "tune" not in config:
        return _with_selected(config)
    from benchmark.tuning import points

    tune = config["tune"]
    n, runs = len(points(tune["space"])), len(config["splits"]) * len(tune["seeds"])
    searched = ", ".join(tune["space"])
    epochs = tune.get("epochs") or config["train"]["epochs"]
    return (f"tuned protocol ({tune['strategy']}: {searched} over {n} points x {runs} runs = {n * runs} trials of "
            f"{epochs} epochs per method and samples per class, the same for every method, on validation splits "
            f"of {tune['validation_fraction']:.0%} carved from each training subset; the test set read once)")


def _with_selected(config: dict) -> str:
    """The config's protocol, and what a `selected` file changed: rates a tuned grid chose, for all or some cells."""
    from benchmark.config import dataset_spc, method_labels
    from benchmark.grid import load_selected, selected_for

    chosen = load_selected(config)
    found = [selected_for(chosen, config, d, label, spc) is not None for d in config["datasets"]
             for label in method_labels(config, d) for spc in dataset_spc(config, d)]
    how = f"selected on validation splits by the tuned protocol ({config['selected'][config['grid']]})" if any(found) \
        else ""
    if not how:
        return config["protocol"]
    if all(found):
        return f"learning rate and weight decay per method and size {how}; the rest set in the config"
    return (f"{config['protocol']}, except the learning rate and weight decay of {sum(found)} of the {len(found)} "
            f"(dataset, method, size), {how}")


def primary_metric(config: dict) -> tuple[str, str]:
    """(frame column, name in the tables) of the grid's metric: balanced accuracy on long-tailed subsets
    (plain accuracy would reward predicting the head classes), else accuracy."""
    if config["imbalance"]["factor"] > 1:
        return "balanced_accuracy", "test balanced accuracy"
    return "accuracy", "test accuracy"


def aggregate(config: dict, tables: Path, plots: Path, root: Path = Path(".")) -> list[Path]:
    """Write the grid's tables and plots; return the paths written."""
    from benchmark.figures import note_figure
    from benchmark.plots import plot_dataset, plot_training_curves
    from benchmark.tables import summarise, write_tables

    frame, curves = collect(config, root)
    methods = table_rows(config)
    columns = [(c.dataset, str(c.spc)) for c in _columns(config)]
    baseline = config["baseline"]
    metric, metric_name = primary_metric(config)
    summary = summarise(frame, methods, columns, metric=metric, metric_name=metric_name, baseline=baseline,
                        reference=reference(config, root))
    grid = config["grid"]
    from benchmark.tables import default_caption, latex_escape

    how = protocol(config)
    title = f"{metric_name[:1].upper()}{metric_name[1:]} (%) of grid {grid}: {how}"
    written = write_tables(summary, Path(tables) / grid, grid, title=title,
                           caption=f"{default_caption(summary)} Hyperparameters: {latex_escape(how)}.")
    expected = outputs(config, Path(tables), Path(plots))
    for path in expected["cd"]:
        if path not in written:  # no column where every method has a result: say so instead of a diagram
            written += note_figure("No critical-difference diagram: no column has a result for every method",
                                   path.with_suffix(""))
            break
    for dataset in config["datasets"]:
        written += plot_dataset(frame, dataset, methods, Path(plots) / f"{grid}_{dataset}", metric, metric_name)
    for c in _columns(config):
        written += plot_training_curves(curves, c.dataset, str(c.spc), methods,
                                        Path(plots) / f"{grid}_curves_{c.dataset}_{c.spc}")
    return written
