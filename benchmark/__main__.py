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
    from benchmark.data.errors import DataError
    from benchmark.data.settings import load_settings
    from benchmark.data.sources import raw_dir
    from benchmark.registry import dataset_module

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
    from benchmark.data.errors import DataError
    from benchmark.data.facts import counts, expected_facts
    from benchmark.data.prepared import write_prepared
    from benchmark.data.settings import load_settings
    from benchmark.registry import dataset_module

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
                          built["test_idx"], built["classes"], built.get("extra"), built.get("sizes"))
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
    """Check the store (reachable and writable within --timeout seconds) and create the grid's experiment."""
    import signal

    from benchmark.io import write_json
    from benchmark.tracking import tracking_uri

    def give_up(signum, frame):  # noqa: ARG001 (signal handler signature)
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)
    signal.alarm(args.timeout)
    fix = ("start it, point MLFLOW_TRACKING_URI at a working store, or run without tracking "
           "(--config tracking=false)")
    try:
        with gc_paused():
            from benchmark.tracking import init_grid
        info = init_grid(args.grid, json.loads(args.config_json))
    except TimeoutError:
        sys.exit(f"tracking error: the MLflow store {tracking_uri()} did not answer within {args.timeout} s; {fix}")
    except Exception as error:  # noqa: BLE001 (any store failure is the user's to fix: one line)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        sys.exit(f"tracking error: the MLflow store {tracking_uri()} cannot be used ({first}); {fix}")
    finally:
        signal.alarm(0)
    write_json(Path(args.out), info)
    print(f"MLflow experiment {info['experiment']!r} (id {info['experiment_id']}) at {info['uri']}")


def _grid_config(args: argparse.Namespace) -> dict:
    """The validated grid config of --config-file (written by the grid_config rule) or --config-json."""
    from benchmark.config import validate

    text = Path(args.config_file).read_text() if getattr(args, "config_file", None) else args.config_json
    return validate(json.loads(text))


def _run_options(args: argparse.Namespace) -> dict:
    """How a job runs: the workflow's BENCHMARK_RUN (common.smk), each option overridable on the command line."""
    run = json.loads(os.environ.get("BENCHMARK_RUN", "{}"))
    defaults = {"device": "auto", "cells_per_gpu": 1, "eval_batch_size": 1024, "grid": "", "tracking": None}
    out = {key: run.get(key, value) for key, value in defaults.items()}
    for key in defaults:
        if getattr(args, key, None) is not None:
            out[key] = getattr(args, key)
    return out


def _write_config(args: argparse.Namespace) -> None:
    """The workflow's grid config (BENCHMARK_GRID_CONFIG) as a file the table rules read."""
    from benchmark.io import write_atomic

    text = os.environ.get("BENCHMARK_GRID_CONFIG")
    if not text:
        sys.exit("error: BENCHMARK_GRID_CONFIG is not set; this verb is run by the workflow's grid_config rule")
    write_atomic(Path(args.out), text)
    print(f"grid config -> {args.out}")


def _claim_gpu(device: str, cells_per_gpu: int):
    """Pin this job to one GPU slot before torch starts CUDA; None where there is nothing to pin.

    Under SLURM the scheduler already gives each job its own GPU (CUDA_VISIBLE_DEVICES).
    """
    from benchmark.device import cuda_requested
    from benchmark.gpus import claim_gpu, visible_gpus

    gpus = visible_gpus()
    if "SLURM_JOB_ID" in os.environ or not cuda_requested(device) or not gpus:
        return None
    return claim_gpu(gpus, cells_per_gpu=cells_per_gpu)


def _train(args: argparse.Namespace) -> None:
    """Train the cells of one pack and write its marker (benchmark/packs.py)."""
    spec = json.loads(args.pack)
    run = _run_options(args)
    claim = _claim_gpu(run["device"], run["cells_per_gpu"])  # held until the process ends; the kernel frees it
    with gc_paused():
        from benchmark import packs
        from benchmark.train import RunOptions

    store = run["tracking"]
    context = {"grid": run["grid"], "tracking": json.loads(Path(store).read_text()) if store else None,
               "provenance": {"gpu": claim.gpu} if claim is not None else {}}
    if context["tracking"] is not None:
        with gc_paused():
            import mlflow.tracking  # noqa: F401 (imported once per pack, with the collector paused)
    options = RunOptions(device=run["device"], threads=args.threads, eval_batch_size=run["eval_batch_size"])
    packs.run_pack(spec, Path(args.marker), options, context, Path(args.receipt) if args.receipt else None,
                   args.checkpoint_every)


def _select(args: argparse.Namespace) -> None:
    """Choose a tuned (dataset, method, spc)'s values: from its trials' records (grid) or by running
    successive halving (halving)."""
    spec = json.loads(args.spec)
    if spec["tune"]["strategy"] == "grid":
        from benchmark.tuning import select_from_records

        selection = select_from_records(spec)
    else:
        with gc_paused():
            from benchmark import packs
            from benchmark.train import RunOptions
        run = _run_options(args)
        options = RunOptions(device=run["device"], threads=args.threads, eval_batch_size=run["eval_batch_size"])
        context = {"grid": run["grid"], "tracking": None, "provenance": {}}
        selection = packs.run_halving(spec, options, context, Path(args.receipt) if args.receipt else None)
    print(f"{spec['selection']}: {selection['values']} (validation score {100 * selection['score']:.1f}%, "
          f"{selection['epochs_trained']} trial epochs)")


def _export_selection(args: argparse.Namespace) -> None:
    """Write the values a tuned grid selected as a `selected` file (what config/config.yaml reads)."""
    import yaml

    from benchmark.config import load_config
    from benchmark.grid import Grid
    from benchmark.io import write_atomic
    from benchmark.tuning import export_selection

    config = load_config(*args.config, base=_base(args.config))
    if "tune" not in config:
        sys.exit(f"error: {' + '.join(args.config)} has no `tune:` block, so nothing was selected")
    only = ""
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(config["datasets"]))
        if unknown:
            sys.exit(f"error: --datasets {' '.join(unknown)}: not in {' + '.join(args.config)} "
                     f"(its datasets: {', '.join(config['datasets'])})")
        config = {**config, "datasets": [d for d in config["datasets"] if d in args.datasets]}
        only = f" --datasets {' '.join(config['datasets'])}"
    command = f"snakemake --cores all --configfile {' '.join(args.config)} && python -m benchmark export-selection " \
              f"--config {' '.join(args.config)}{only} --out {args.out}"
    try:
        data = export_selection(Grid(config), config["tune"], command)
    except FileNotFoundError as missing:
        sys.exit(f"error: {missing.filename} does not exist: run the tuned grid first ({command.split(' && ')[0]})")
    header = (f"# Values selected by the tuned protocol of {' + '.join(args.config)} (benchmark/tuning.py), by\n"
              f"#   {command}\n# Do not edit by hand; tests/test_selected.py checks it against that config.\n")
    write_atomic(Path(args.out), header + yaml.safe_dump(data, sort_keys=False))
    print(f"{args.out}: the selections of {sum(len(m) for d in data['values'].values() for m in d.values())} "
          f"(dataset, method, spc)")


def _data_receipt(args: argparse.Namespace) -> None:
    from benchmark.data.prepared import data_hash, load_metadata
    from benchmark.io import write_json

    meta = load_metadata(Path(args.data))
    receipt = {"dataset": args.dataset, "prepared": args.data, "data_hash": data_hash(meta),
               "classes": len(meta["classes"]), "train": meta["num_train"], "test": meta["num_test"]}
    write_json(Path(args.out), receipt)
    print(f"{args.dataset}: data {receipt['data_hash']} -> {args.out}")


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
    from benchmark.aggregate import aggregate
    from benchmark.config import load_config

    config = load_config(*args.config, base=_base(args.config)) if args.config else _grid_config(args)
    written = aggregate(config, Path(args.tables), Path(args.plots))
    print(f"grid {config['grid']!r}: {len(written)} tables and plots -> {args.tables}, {args.plots}")


def _claim(args: argparse.Namespace) -> None:
    """The grid's claim document (config key `claim`), from its cells."""
    from benchmark.aggregate import collect, grid_records
    from benchmark.claims import document
    from benchmark.io import write_atomic

    config = _grid_config(args)
    frame, _ = collect(config)
    records = [json.loads(path.read_text()) for _, path in grid_records(config)]
    write_atomic(Path(config["claim"]["out"]), document(config, frame, records, config["claim"]["few"]))
    print(f"{config['claim']['out']}: {len(records)} cells")


def _track(args: argparse.Namespace) -> None:
    from benchmark.aggregate import grid_records
    from benchmark.io import write_json

    config = _grid_config(args)
    info = json.loads(Path(args.store).read_text())
    with gc_paused():
        from benchmark.tracking import mirror_grid
    cells = grid_records(config)
    ledger = mirror_grid(info, cells, [Path(a) for a in args.artifacts], config["grid"])
    write_json(Path(args.out), {**info, "cells": ledger})
    print(f"grid {config['grid']!r}: {len(ledger)} cells mirrored in MLflow experiment {info['experiment']!r}")


def _base(paths: list[str]) -> Path | None:
    """config/config.yaml under an overlay, as `snakemake --configfile` merges it (not under itself)."""
    default = Path("config/config.yaml")
    return None if any(Path(p).resolve() == default.resolve() for p in paths) else default


def _validate(args: argparse.Namespace) -> None:
    from benchmark.config import load_config
    from benchmark.grid import Grid

    config = load_config(*args.config, base=None if args.alone else _base(args.config))
    grid = Grid(config)
    print(f"{' + '.join(args.config)}: valid, {len(grid.cells())} cells in {len(grid.packs)} jobs")


def _status(args: argparse.Namespace) -> None:
    from benchmark.status import main as status

    sys.exit(status(args.configfile, _base(args.configfile), args.device, args.all))


def _estimate(args: argparse.Namespace) -> None:
    from benchmark.estimate import main as estimate

    estimate(args.configfile, _base(args.configfile), args.gpu, args.gpus, args.peak_fraction)


def _report_config(args: argparse.Namespace) -> None:
    from benchmark.io import write_atomic
    from benchmark.report import config_page

    write_atomic(Path(args.out), config_page(_grid_config(args)))
    print(f"resolved config of the grid -> {args.out}")


def _config_source(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config-file", help="the grid config as a JSON file (written by the grid_config rule)")
    source.add_argument("--config-json", help="the grid config as JSON")


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

    p = verbs.add_parser("tracking-init", help="check the MLflow store and create the grid's experiment (onstart)")
    p.add_argument("--grid", required=True)
    p.add_argument("--config-json", required=True, help="the grid's resolved config (the parent run's parameters)")
    p.add_argument("--out", required=True, help="where the jobs read the store's description")
    p.add_argument("--timeout", type=int, default=20, help="seconds the store has to answer")
    p.set_defaults(func=_tracking_init)

    p = verbs.add_parser("train", help="train the cells of one pack and write its marker (run by the train rule)")
    p.add_argument("--pack", required=True, help="the pack's spec as JSON (benchmark.grid.Pack.spec)")
    p.add_argument("--marker", required=True, help="the pack's marker file, written when every cell has its record")
    p.add_argument("--threads", type=int, required=True)
    # how the job runs: from the workflow's BENCHMARK_RUN unless given here
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--cells-per-gpu", type=int, help="cells sharing one GPU at once")
    p.add_argument("--grid", help="the grid the job runs for (its MLflow experiment)")
    p.add_argument("--tracking", help="store.json written by tracking-init (default: none, no MLflow)")
    p.add_argument("--receipt", help="the data receipt the prepared data must match")
    p.add_argument("--checkpoint-every", type=float, default=600.0, help="seconds between periodic checkpoints")
    p.set_defaults(func=_train)

    p = verbs.add_parser("select", help="choose a tuned (dataset, method, spc)'s values (run by the tuning rules)")
    p.add_argument("--spec", required=True, help="the tuning's spec as JSON (benchmark.tuning.tuning_spec)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", help="default: the workflow's BENCHMARK_RUN, else auto")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--grid")
    p.add_argument("--receipt")
    p.set_defaults(func=_select)

    p = verbs.add_parser("write-config", help="write the workflow's grid config to a file (run by grid_config)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_write_config)

    p = verbs.add_parser("export-selection", help="write a tuned grid's selected values as a `selected` file")
    p.add_argument("--config", nargs="+", required=True, help="the tuned grid's config files")
    p.add_argument("--datasets", nargs="+", help="only these datasets' selections (default: all of the grid's)")
    p.add_argument("--out", required=True, help="e.g. config/selected/digits.yaml")
    p.set_defaults(func=_export_selection)

    p = verbs.add_parser("data-receipt", help="record the hash of a prepared dataset (run by the data rule)")
    p.add_argument("dataset")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_data_receipt)

    p = verbs.add_parser("embed", help="class embeddings of a dataset from a class hierarchy (unitsphere)")
    p.add_argument("--hierarchy", required=True, help="parent-child file, e.g. data/hierarchies/cub_flat.txt")
    p.add_argument("--data", required=True, help="prepared dataset folder (for its classes and class ids)")
    p.add_argument("--class-ids", choices=("labels", "metadata"), default="labels",
                   help="leaf i is class i (labels) or leaf metadata class_ids[i] (metadata)")
    p.add_argument("--out", required=True, help=".npy to write (a .json sidecar is written beside it)")
    p.set_defaults(func=_embed)

    p = verbs.add_parser("aggregate", help="tables (with statistics) and plots of a grid")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", nargs="+", help="config files, merged over config/config.yaml as --configfile")
    source.add_argument("--config-json", help="the grid config as JSON")
    source.add_argument("--config-file", help="the grid config as a JSON file (what the workflow passes)")
    p.add_argument("--tables", default="results/tables")
    p.add_argument("--plots", default="results/plots")
    p.set_defaults(func=_aggregate)

    p = verbs.add_parser("claim", help="write the grid's claim document from its cells (run by the claim rule)")
    _config_source(p)
    p.set_defaults(func=_claim)

    p = verbs.add_parser("track", help="mirror a grid's cells, tables and plots in MLflow (run by the track rule)")
    _config_source(p)
    p.add_argument("--store", required=True, help="store.json written by tracking-init")
    p.add_argument("--out", required=True, help="the ledger: which run mirrors which cell")
    p.add_argument("--artifacts", nargs="*", default=[], help="files for the grid's parent run")
    p.set_defaults(func=_track)

    p = verbs.add_parser("validate", help="check config files (merged over config/config.yaml, as --configfile)")
    p.add_argument("config", nargs="+")
    p.add_argument("--alone", action="store_true", help="validate the files without config/config.yaml under them")
    p.set_defaults(func=_validate)

    p = verbs.add_parser("status", help="every cell of a grid: done, running (with an ETA), queued, missing, failed, "
                         "diverged; read from the results folder (exit 1 when a cell failed)")
    p.add_argument("--configfile", nargs="*", default=[], help="config files, merged over config/config.yaml as "
                   "snakemake --configfile does")
    p.add_argument("--device", help="expand the grid for this device (auto, cpu, cuda): where cells were trained "
                   "elsewhere than here, e.g. on a cluster's GPU nodes")
    p.add_argument("--all", action="store_true", help="list every cell, not only those that need a look")
    p.set_defaults(func=_status)

    p = verbs.add_parser("estimate", help="what a grid costs before it runs: images x epochs x FLOPs per cell, "
                         "GPU-hours and wall time on N GPUs")
    p.add_argument("--configfile", nargs="*", default=[], help="config files, merged over config/config.yaml")
    p.add_argument("--gpu", default="H100", help="the GPU, as its name or part of it (H100, H200, A100, ...)")
    p.add_argument("--gpus", type=int, default=1, help="GPUs the cells spread over")
    p.add_argument("--peak-fraction", type=float, default=None,
                   help="the fraction of the GPU's bf16 peak a cell reaches where no throughput was measured "
                        "(default: benchmark.estimate.PEAK_FRACTION)")
    p.set_defaults(func=_estimate)

    p = verbs.add_parser("report-config", help="the grid's resolved config as a page of the Snakemake report "
                         "(run by the report_config rule)")
    _config_source(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_report_config)

    args = parser.parse_args(argv)
    from benchmark.config import ConfigError
    from benchmark.data.errors import DataError
    from benchmark.device import DeviceError
    from benchmark.records import DataReceiptError, RecordError

    # Short verbs run without the cyclic collector (see gc_paused); `train` pauses it only for its
    # imports, as a cell's training loop may run for hours.
    try:
        with contextlib.nullcontext() if args.verb == "train" else gc_paused():
            args.func(args)
    except ConfigError as error:
        sys.exit(str(error))
    except DataError as error:  # bad or missing source data: one line naming the dataset and file
        sys.exit(f"data error: {error}")
    except (DeviceError, RecordError, DataReceiptError) as error:
        sys.exit(f"error: {error}")
    finally:
        # The interpreter's shutdown collects every live object (torch's and MLflow's modules): up to
        # 1.4 s per process. Frozen objects are skipped; nothing is left that needs collecting.
        gc.freeze()


if __name__ == "__main__":
    main()
