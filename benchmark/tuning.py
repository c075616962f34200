"""The tuned protocol: every method gets the same search, with the same budget, on validation data.

For each (dataset, method, samples per class) of a grid with a `tune:` block:
- the points: the product of the searched settings (`lr`, `weight_decay` on log ranges; `epochs`,
  `batch_size` as lists), in a fixed order;
- a trial: one point trained on one split's training subset minus a stratified validation split carved
  from it (tune.validation_fraction, at least one image per class), with one of tune.seeds, scored on that
  validation split by its mean accuracy over its last `objective_epochs` epochs; a trial never tests
  (benchmark/train/record.py skips the test set for it);
- the selection: the point with the best mean score over every split and seed (ties: the first point),
  written with the whole trial table; the final cells train on the whole subset with the selected values
  and read the test set once.
Strategies: `grid` trains every trial as an ordinary cached, resumable job (the DAG's packs); `halving`
runs synchronous successive halving in one job: all points start, and at each rung (min_epochs, then eta
times more, ..., up to the trial's epochs) only the best 1/eta go on, resuming their checkpoints; a trial
is trained with its full schedule, so the epochs a trial has seen at a rung are those a full trial sees.
Why our own successive halving and not Optuna's: the rungs are synchronous and ordered, so the selection
is deterministic (an asynchronous pruner's depends on which trial finished first), and trials are the
same cells, records and checkpoints as everything else (no second store).
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import math
from pathlib import Path

SEARCHED = ("lr", "weight_decay", "epochs", "batch_size")


def log_points(low: float, high: float, points: int) -> list[float]:
    """`points` values from low to high, evenly spaced on a log scale, rounded to 4 significant digits."""
    if points == 1:
        return [float(f"{math.sqrt(low * high):.4g}")]
    step = (math.log(high) - math.log(low)) / (points - 1)
    return [float(f"{math.exp(math.log(low) + i * step):.4g}") for i in range(points)]


def points(space: dict) -> list[dict]:
    """Every point of the search space, lr varying fastest... in the order of SEARCHED (first key slowest)."""
    axes = []
    for name in SEARCHED:
        if name not in space:
            continue
        entry = space[name]
        values = log_points(*entry["log"], entry["points"]) if isinstance(entry, dict) else list(entry)
        axes.append([(name, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def apply_point(train: dict, point: dict) -> dict:
    """Training settings with a point's values (weight_decay is the optimiser's)."""
    train = copy.deepcopy(train)
    for name, value in point.items():
        if name == "weight_decay":
            train["optimizer"]["weight_decay"] = value
        else:
            train[name] = value
    return train


def budget(tune: dict, runs: int, epochs: int) -> dict:
    """What one (dataset, method, spc) costs under `tune`: trials and epochs (the same for every method)."""
    n_points = len(points(tune["space"]))
    trials = n_points * runs
    return {"points": n_points, "trials": trials, "trial_epochs": epochs, "epochs": trials * epochs,
            "strategy": tune["strategy"]}


def score(record: dict, objective_epochs: int, upto: int | None = None) -> float:
    """A trial's score: mean validation accuracy (fraction) over its last `objective_epochs` epochs (of the
    first `upto` epochs); a diverged trial scores -1 (worse than any accuracy)."""
    curve = record["curves"].get("val_accuracy", [])
    if upto is not None:
        curve = curve[:upto]
    if record.get("status") == "diverged" or not curve:
        return -1.0
    tail = curve[-objective_epochs:]
    return float(sum(tail) / len(tail))


def choose(table: list[dict]) -> dict:
    """The selected row of a trial table (one row per point with its mean score): the best mean score, the
    first point on ties (the table is in the space's order)."""
    best = max(row["score"] for row in table)
    return next(row for row in table if row["score"] == best)


def summarise_trials(trials: list[dict], point_list: list[dict]) -> list[dict]:
    """One row per point: its mean score over the trials that ran it, and their count."""
    rows = []
    for i, point in enumerate(point_list):
        scores = [t["score"] for t in trials if t["point"] == i]
        rows.append({"point": i, **point, "trials": len(scores),
                     "score": sum(scores) / len(scores) if scores else -1.0})
    return rows


def write_selection(path: Path, table_path: Path, point_list: list[dict], trials: list[dict], meta: dict,
                    scored: list[dict] | None = None) -> dict:
    """selection.json (the chosen values, the table's summary, the budget) and the whole trial table (CSV).

    The choice is made from `scored` (default: all `trials`; successive halving: its last rung's).
    """
    from benchmark.io import write_atomic, write_json

    rows = summarise_trials(trials if scored is None else scored, point_list)
    chosen = choose(rows)
    selection = {"values": {k: chosen[k] for k in point_list[0]}, "score": chosen["score"], "point": chosen["point"],
                 "points": rows, **meta}
    out = io.StringIO()
    fields = ["point", *point_list[0], "split", "seed", "rung", "epochs", "score", "record"]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for trial in trials:
        writer.writerow({**point_list[trial["point"]], **trial})
    write_atomic(table_path, out.getvalue())
    write_json(path, selection)
    return selection


def selected_values(path: Path) -> dict:
    return json.loads(Path(path).read_text())["values"]


# ------------------------------------------------------------------------------------------ the two strategies


def tuning_spec(tuning, tune: dict, dataset_dir: str) -> dict:
    """What the select / tune job gets (a Snakemake param): the points, their trials' specs, the runs."""
    trials = [{"dataset": t.dataset, "method": t.method, "spc": t.spc, "key": t.key, "settings": t.settings,
               "folder": t.folder} for t in tuning.trials]
    return {"points": tuning.points, "trials": trials, "runs": [list(r) for r in tuning.runs], "tune": tune,
            "data": dataset_dir, "selection": tuning.selection, "table": tuning.table,
            "budget": budget(tune, len(tuning.runs), trial_epochs(tuning.trials[0].settings))}


def trial_epochs(settings: dict) -> int:
    return int(settings["train"]["epochs"])


def select_from_records(spec: dict) -> dict:
    """The grid strategy's selection: every trial has its record (the trials' packs ran); score and choose."""
    from benchmark.records import read_record

    k = spec["tune"]["objective_epochs"]
    trials = []
    for i, trial in enumerate(spec["trials"]):
        for split, seed in spec["runs"]:
            path = Path(trial["folder"]) / f"split{split}" / f"seed{seed}" / "metrics.json"
            record = read_record(path)
            trials.append({"point": i, "split": split, "seed": seed, "epochs": record["epochs_run"],
                           "score": score(record, k), "record": str(path)})
    meta = {"strategy": "grid", "budget": spec["budget"], "epochs_trained": sum(t["epochs"] for t in trials)}
    return write_selection(Path(spec["selection"]), Path(spec["table"]), spec["points"], trials, meta)


def halving_epochs(n_points: int, runs: int, epochs: int, halving: dict) -> int:
    """The epochs successive halving trains in all: at each rung the survivors go on from the last rung."""
    total, alive, previous = 0, n_points, 0
    for upto in rungs(halving["min_epochs"], halving["eta"], epochs):
        total += alive * runs * (upto - previous)
        alive, previous = math.ceil(alive / halving["eta"]), upto
    return total


def rungs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """Epochs at which successive halving compares the surviving trials: min_epochs * eta^r, up to `epochs`."""
    out, e = [], min_epochs
    while e < epochs:
        out.append(e)
        e *= eta
    return [*out, epochs]


def run_halving(spec: dict, train_trial) -> dict:
    """Synchronous successive halving over the points of `spec`.

    `train_trial(i, split, seed, until)` trains trial point i on (split, seed) up to `until` epochs (resuming
    its checkpoint) and returns its record or its partial results (with "curves"). At each rung every
    surviving point is scored by its mean over the runs; the best ceil(n / eta) go on (ties: the earlier
    point). The selection is the best point of the last rung.
    """
    tune = spec["tune"]
    k, eta = tune["objective_epochs"], tune["halving"]["eta"]
    epochs = trial_epochs(spec["trials"][0]["settings"])
    schedule = rungs(tune["halving"]["min_epochs"], eta, epochs)
    alive = list(range(len(spec["points"])))
    trials, trained = [], 0
    for rung, upto in enumerate(schedule):
        previous = schedule[rung - 1] if rung else 0
        scores = {}
        for i in alive:
            values = []
            for split, seed in spec["runs"]:
                result = train_trial(i, split, seed, upto)
                trained += upto - previous
                value = score(result, k, upto)
                values.append(value)
                trials.append({"point": i, "split": split, "seed": seed, "epochs": upto, "score": value,
                               "rung": rung, "record": result.get("path", "")})
            scores[i] = sum(values) / len(values)
        if rung == len(schedule) - 1:
            break
        ranked = sorted(alive, key=lambda i: (-scores[i], i))
        alive = sorted(ranked[:math.ceil(len(alive) / eta)])
    last = [t for t in trials if t["rung"] == len(schedule) - 1]
    meta = {"strategy": "halving", "rungs": schedule, "budget": spec["budget"], "epochs_trained": trained}
    return write_selection(Path(spec["selection"]), Path(spec["table"]), spec["points"], trials, meta, last)


def export_selection(grid, tune: dict, source: str) -> dict:
    """The values a tuned grid selected, as the `selected` file other grids read (config/selected/*.yaml):
    {"source": how to regenerate it, "tune": the search that produced it, "values": {dataset: {method:
    {spc: values}}}}. Every (dataset, method, spc) of the grid must have its selection."""
    values: dict = {}
    for tuning in grid.tunings:
        c = tuning.configuration
        chosen = selected_values(Path(tuning.selection))
        values.setdefault(c.dataset, {}).setdefault(c.method, {})[str(c.spc)] = chosen
    return {"source": source, "tune": tune, "values": values}
