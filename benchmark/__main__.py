"""Command line: `python -m benchmark <verb>`; each workflow rule calls one verb.

Verbs import what they need inside their function, so `prepare` never loads MLflow and the
Snakefile's imports stay light.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _prepare(args: argparse.Namespace) -> None:
    import yaml

    from benchmark.data import dataset_module
    from benchmark.data.prepared import write_prepared

    params = yaml.safe_load(Path(args.params).read_text()) or {}
    if args.dataset not in params:
        raise SystemExit(f"error: {args.params} has no entry for dataset {args.dataset!r}; add one")
    module = dataset_module(args.dataset)
    built = module.build(params[args.dataset])
    counts = {
        "classes": len(built["classes"]),
        "train": int(built["train_idx"].size),
        "test": int(built["test_idx"].size),
        "min_train_per_class": int(min(
            (built["labels"][built["train_idx"]] == c).sum() for c in range(len(built["classes"])))),
    }
    module.FACTS.check(args.dataset, **counts)
    meta = write_prepared(Path(args.out), args.dataset, built["images"], built["labels"], built["train_idx"],
                          built["test_idx"], built["classes"], built.get("extra"))
    print(f"prepared {args.dataset}: {meta['num_train']} train, {meta['num_test']} test, "
          f"{len(meta['classes'])} classes -> {args.out}")


def _tracking_init(args: argparse.Namespace) -> None:
    from benchmark.io import write_json
    from benchmark.tracking import init_experiment

    info = init_experiment(args.grid)
    write_json(Path(args.out), info)
    print(f"MLflow experiment {info['experiment']!r} (id {info['experiment_id']}) at {info['tracking_uri']}")


def _spc(value: str) -> int | str:
    return value if value == "all" else int(value)


def _train(args: argparse.Namespace) -> None:
    from benchmark.io import write_json
    from benchmark.provenance import provenance
    from benchmark.train import Cell, train_cell

    settings = json.loads(args.settings)
    cell = Cell(args.dataset, args.loss, _spc(args.spc), args.seed)
    metrics = train_cell(cell, {**settings, "device": args.device, "threads": args.threads}, Path(args.data))
    metrics["settings"] = settings
    metrics["provenance"] = provenance(metrics["device"])
    if args.tracking:
        from benchmark.tracking import log_cell

        tracking = json.loads(Path(args.tracking).read_text())
        metrics["mlflow_run_id"] = log_cell(tracking["experiment_id"], tracking["experiment"], metrics, settings)
    write_json(Path(args.out), metrics)  # last: its existence means the cell is complete
    print(f"{cell.key}: {metrics['status']}, test accuracy {metrics['test_accuracy']:.4f}, "
          f"{metrics['wall_time_s']:.1f} s on {metrics['device']}")


def _aggregate(args: argparse.Namespace) -> None:
    from benchmark.aggregate import summary_metrics, write_tables
    from benchmark.config import load_config, validate
    from benchmark.plots import plot_dataset

    config = validate(json.loads(args.config_json)) if args.config_json else load_config(Path(args.config))
    tables = Path(args.tables) / config["grid"]
    frame, summary = write_tables(config, tables)
    artifacts = [tables.with_suffix(s) for s in (".md", ".tex", ".csv")]
    for dataset in config["datasets"]:
        artifacts += plot_dataset(frame, dataset, config["losses"], Path(args.plots) / f"{config['grid']}_{dataset}")
    counts = frame.status.value_counts().to_dict()
    print(f"aggregated {len(frame)} cells of grid {config['grid']!r}: {counts}")
    if args.tracking:
        from benchmark.tracking import log_summary

        tracking = json.loads(Path(args.tracking).read_text())
        log_summary(tracking["experiment_id"], config["grid"], artifacts, summary_metrics(summary))


def _validate(args: argparse.Namespace) -> None:
    from benchmark.config import cells, load_config

    config = load_config(Path(args.config))
    print(f"{args.config}: valid, {len(cells(config))} cells")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("prepare", help="build a dataset's canonical prepared folder (run by DVC)")
    p.add_argument("dataset")
    p.add_argument("--params", default="config/datasets.yaml")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_prepare)

    p = verbs.add_parser("tracking-init", help="create the MLflow store and the grid's experiment")
    p.add_argument("--grid", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_tracking_init)

    p = verbs.add_parser("train", help="train and evaluate one cell")
    p.add_argument("--dataset", required=True)
    p.add_argument("--loss", required=True)
    p.add_argument("--spc", required=True, help="samples per class: a positive integer or 'all'")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--settings", required=True, help="the cell's settings as JSON (from the Snakefile)")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", required=True, help="metrics.json to write")
    p.add_argument("--tracking", help="JSON written by tracking-init; omit to skip MLflow")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_train)

    p = verbs.add_parser("aggregate", help="tables and plots of a grid (and the MLflow summary run)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="grid config file")
    source.add_argument("--config-json", help="the grid config as JSON (what the Snakefile passes)")
    p.add_argument("--tables", default="results/tables")
    p.add_argument("--plots", default="results/plots")
    p.add_argument("--tracking")
    p.set_defaults(func=_aggregate)

    p = verbs.add_parser("validate", help="check a config file")
    p.add_argument("config")
    p.set_defaults(func=_validate)

    args = parser.parse_args(argv)
    from benchmark.config import ConfigError

    try:
        args.func(args)
    except ConfigError as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
