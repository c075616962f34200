"""Command line: `python -m benchmark <verb>`; each workflow rule calls one verb.

Verbs import what they need inside their function, so `prepare` never loads MLflow and the
Snakefile's imports stay light.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def gc_paused():
    """Run a block of heavy imports without the cyclic garbage collector.

    Importing torch and MLflow allocates hundreds of thousands of objects and so triggers many full
    collections that find nothing: 0.2 s of torch's import and 0.5 s of MLflow's on our 2-core
    machine. What the block allocated is then frozen (never scanned again).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _download(args: argparse.Namespace) -> None:
    from benchmark.data import dataset_module, load_settings
    from benchmark.data.errors import DataError
    from benchmark.data.sources import raw_dir

    settings = load_settings(args.dataset, Path(args.params))
    module = dataset_module(args.dataset)
    if not hasattr(module, "download"):
        raise DataError(f"dataset {args.dataset} has no source files to download (it is built in)")
    if args.out and raw_dir(args.dataset, settings) != Path(args.out):
        # dvc.yaml tracks args.out; a raw_dir elsewhere would leave DVC checking an empty folder.
        raise DataError(f"dataset {args.dataset}: raw_dir is {settings['raw_dir']} in {args.params}, but the "
                        f"download stage writes {args.out}; set raw_dir: {args.out}")
    record = module.download(settings)
    total = sum(f["size"] for f in record["files"].values())
    print(f"downloaded {args.dataset}: {len(record['files'])} source files verified, {total:,} bytes "
          f"-> {raw_dir(args.dataset, settings)}")


def _prepare(args: argparse.Namespace) -> None:
    from benchmark.data import dataset_module, load_settings
    from benchmark.data.errors import DataError
    from benchmark.data.facts import counts, expected_facts
    from benchmark.data.prepared import write_prepared

    settings = load_settings(args.dataset, Path(args.params))
    module = dataset_module(args.dataset)
    built = module.build(settings)
    try:  # the count check always runs, against the published counts or explicit expected_counts
        facts, source = expected_facts(args.dataset, module.FACTS, settings)
        found = counts(built["labels"], built["train_idx"], built["test_idx"], len(built["classes"]))
        facts.check(args.dataset, **found, source=source)
    except ValueError as error:
        files = ", ".join(getattr(module, "SOURCES", {}))
        where = f" (source files {files} in {settings.get('raw_dir')})" if files else ""
        raise DataError(f"{error}{where}") from None
    meta = write_prepared(Path(args.out), args.dataset, built["images"], built["labels"], built["train_idx"],
                          built["test_idx"], built["classes"], built.get("extra"))
    print(f"prepared {args.dataset}: {meta['num_train']} train, {meta['num_test']} test, "
          f"{len(meta['classes'])} classes -> {args.out}")


def _download_hierarchy(args: argparse.Namespace) -> None:
    import yaml

    from benchmark.data.hierarchies import download

    params = yaml.safe_load(Path(args.params).read_text()) or {}
    settings = (params.get("hierarchies") or {}).get(args.name)
    path = download(args.name, settings, Path(args.out))
    print(f"hierarchy {args.name}: verified -> {path}")


def _coarse_hierarchy(args: argparse.Namespace) -> None:
    from benchmark.data.hierarchies import coarse_hierarchy_text
    from benchmark.io import write_atomic

    write_atomic(Path(args.out), coarse_hierarchy_text(Path(args.data)))
    print(f"CIFAR-100 superclass hierarchy -> {args.out}")


def _tracking_init(args: argparse.Namespace) -> None:
    from benchmark.io import write_json
    from benchmark.tracking import init_experiment

    info = init_experiment(args.grid)
    write_json(Path(args.out), info)
    print(f"MLflow experiment {info['experiment']!r} (id {info['experiment_id']}) at {info['tracking_uri']}")


def _spc(value: str) -> int | str:
    return value if value == "all" else int(value)


def _claim_gpu(args: argparse.Namespace):
    """Pin this cell to one GPU slot before torch starts CUDA; None where there is nothing to pin.

    Under SLURM the scheduler already gives each job its own GPU (CUDA_VISIBLE_DEVICES).
    """
    from benchmark.device import cuda_requested
    from benchmark.gpus import claim_gpu, visible_gpus

    gpus = visible_gpus()
    if "SLURM_JOB_ID" in os.environ or not cuda_requested(args.device) or not gpus:
        return None
    return claim_gpu(gpus, cells_per_gpu=args.cells_per_gpu)


def _train(args: argparse.Namespace) -> None:
    """Train the cells of one pack: the seeds `args.seed` of one (dataset, method, samples per class)."""
    saved = [Path(p) for p in args.checkpoint] if args.checkpoint else [None] * len(args.seed)
    if not len(args.seed) == len(args.out) == len(saved):
        sys.exit(f"error: train got {len(args.seed)} --seed, {len(args.out)} --out and {len(saved)} --checkpoint "
                 "values; give one of each per cell, in the same order")
    claim = _claim_gpu(args)  # held until the process ends; the kernel frees it however it ends
    with gc_paused():
        from benchmark import packs  # noqa: F401 (torch, numpy: imported once, up front)

    settings = json.loads(args.settings)
    tracking = json.loads(Path(args.tracking).read_text()) if args.tracking else None
    packs.train_pack(args, settings, [Path(o) for o in args.out], saved, claim, tracking)


def _embed(args: argparse.Namespace) -> None:
    from benchmark.hierarchy import dataset_embeddings, save_embeddings
    from benchmark.io import file_hash

    metadata = json.loads((Path(args.data) / "metadata.json").read_text())
    try:
        emb = dataset_embeddings(args.hierarchy, metadata, args.class_ids)
    except (OSError, ValueError) as error:  # a missing or malformed hierarchy file: the user's to fix
        raise SystemExit(f"error: {error}") from None
    save_embeddings(Path(args.out), emb, file_hash(args.hierarchy), "unitsphere",
                    hierarchy_file=str(args.hierarchy), dataset=metadata["name"], class_ids=args.class_ids)
    print(f"class embeddings of {metadata['name']} from {args.hierarchy}: {emb.shape} -> {args.out}")


def _aggregate(args: argparse.Namespace) -> None:
    from benchmark.aggregate import summary_metrics, write_tables
    from benchmark.config import load_config, table_rows, validate
    from benchmark.plots import plot_dataset

    config = validate(json.loads(args.config_json)) if args.config_json else load_config(Path(args.config))
    tables = Path(args.tables) / config["grid"]
    frame, summary = write_tables(config, tables)
    artifacts = [tables.with_suffix(s) for s in (".md", ".tex", ".csv")]
    for dataset in config["datasets"]:
        artifacts += plot_dataset(frame, dataset, table_rows(config), Path(args.plots) / f"{config['grid']}_{dataset}")
    counts = frame.status.value_counts().to_dict()
    print(f"aggregated {len(frame)} cells of grid {config['grid']!r}: {counts}")
    if args.tracking:
        from benchmark.tracking import log_summary

        tracking = json.loads(Path(args.tracking).read_text())
        log_summary(tracking["experiment"], artifacts, summary_metrics(summary))


def _validate(args: argparse.Namespace) -> None:
    from benchmark.config import cells, load_config

    config = load_config(Path(args.config))
    print(f"{args.config}: valid, {len(cells(config))} cells")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("download", help="fetch, verify and extract a dataset's source files (run by DVC)")
    p.add_argument("dataset")
    p.add_argument("--params", default="config/datasets.yaml")
    p.add_argument("--out", help="the folder the DVC stage tracks; must equal the dataset's raw_dir")
    p.set_defaults(func=_download)

    p = verbs.add_parser("prepare", help="build a dataset's canonical prepared folder (run by DVC)")
    p.add_argument("dataset")
    p.add_argument("--params", default="config/datasets.yaml")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_prepare)

    p = verbs.add_parser("download-hierarchy", help="fetch and verify an official class hierarchy (run by DVC)")
    p.add_argument("name")
    p.add_argument("--params", default="config/datasets.yaml", help="its `hierarchies` entry may set a mirror")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_download_hierarchy)

    p = verbs.add_parser("coarse-hierarchy", help="CIFAR-100's superclass tree from its prepared metadata")
    p.add_argument("--data", required=True, help="the prepared CIFAR-100 folder")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_coarse_hierarchy)

    p = verbs.add_parser("tracking-init", help="create the MLflow store and the grid's experiment")
    p.add_argument("--grid", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_tracking_init)

    p = verbs.add_parser("train", help="train and evaluate one cell, or several seeds of one in a row")
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", required=True, help="the method label")
    p.add_argument("--spc", required=True, help="samples per class: a positive integer or 'all'")
    p.add_argument("--seed", type=int, nargs="+", required=True, help="one or more seeds, trained in this order")
    p.add_argument("--settings", required=True, help="the cell's settings as JSON (from the Snakefile)")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", nargs="+", required=True, help="metrics.json to write, one per seed")
    p.add_argument("--tracking", help="JSON written by tracking-init; omit to skip MLflow")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cells-per-gpu", type=int, default=1, help="cells packed on one GPU at once")
    p.add_argument("--checkpoint", nargs="+",
                   help="resume from / save to these files, one per seed (SIGTERM saves and exits with 75)")
    p.add_argument("--checkpoint-every", type=float, default=600.0, help="seconds between periodic checkpoints")
    p.set_defaults(func=_train)

    p = verbs.add_parser("embed", help="class embeddings of a dataset from a class hierarchy (unitsphere)")
    p.add_argument("--hierarchy", required=True, help="parent-child file, e.g. data/hierarchies/cub_flat.txt")
    p.add_argument("--data", required=True, help="prepared dataset folder (for its classes and class ids)")
    p.add_argument("--class-ids", choices=("labels", "metadata"), default="labels",
                   help="leaf i is class i (labels) or leaf metadata class_ids[i] (metadata)")
    p.add_argument("--out", required=True, help=".npy to write (a .json sidecar is written beside it)")
    p.set_defaults(func=_embed)

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
    from benchmark.data.errors import DataError

    # Short verbs run without the cyclic collector (see gc_paused); `train` pauses it only for its
    # imports, as a cell's training loop may run for hours.
    try:
        with contextlib.nullcontext() if args.verb == "train" else gc_paused():
            args.func(args)
    except ConfigError as error:
        sys.exit(str(error))
    except DataError as error:  # bad or missing source data: one line naming the dataset and file
        sys.exit(f"data error: {error}")
    finally:
        # The interpreter's shutdown collects every live object (torch's and MLflow's modules): up to
        # 1.4 s per process. Frozen objects are skipped; nothing is left that needs collecting.
        gc.freeze()


if __name__ == "__main__":
    main()
