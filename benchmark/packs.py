"""Several cells in one process: the seeds of one (dataset, method, samples per class) trained in a row.

Each cell writes its own metrics.json and logs its own MLflow run. In a pack of several, a finished
cell also leaves its metrics in its checkpoint file until the whole pack is done: a failed job loses
its outputs to Snakemake, and the rerun then restores those cells instead of training them again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmark import checkpoint
from benchmark.io import write_json
from benchmark.train import Cell, cell_fingerprint, train_cell


def _spc(value: str) -> int | str:
    return value if value == "all" else int(value)


def train_pack(args, settings: dict, outs: list[Path], saved: list[Path | None], claim, tracking: dict | None) -> None:
    checkpoint.install_sigterm_handler()
    packed = len(args.seed) > 1
    for seed, out, path in zip(args.seed, outs, saved, strict=True):
        cell = Cell(args.dataset, args.method, _spc(args.spc), seed)
        run_settings = {**settings, "device": args.device, "threads": args.threads}
        finished = _finished(path, cell, run_settings) if packed else None
        if finished is None:
            finished = _train_one(cell, run_settings, settings, args, path, claim, tracking)
        write_json(out, finished)  # last: its existence means the cell is complete
        if packed and path is not None:
            checkpoint.Checkpoints(path, cell_fingerprint(cell, run_settings, finished["data_hash"])).save(
                {"fingerprint": cell_fingerprint(cell, run_settings, finished["data_hash"]), "finished": finished})
        print(f"{cell.key}: {finished['status']}, test accuracy {finished['test_accuracy']:.4f}, "
              f"{finished['wall_time_s']:.1f} s on {finished['device']}", flush=True)
    for path in filter(None, saved):
        path.unlink(missing_ok=True)


def _finished(path: Path | None, cell: Cell, run_settings: dict) -> dict | None:
    """The record a failed pack left for `cell` in its checkpoint file (it is restored, not retrained)."""
    if path is None or not path.exists():
        return None
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    finished = state.get("finished")
    if finished is None or state["fingerprint"] != cell_fingerprint(cell, run_settings, finished["data_hash"]):
        return None
    return finished


def _train_one(cell: Cell, run_settings: dict, settings: dict, args, path: Path | None, claim,
               tracking: dict | None) -> dict:
    from benchmark.provenance import provenance

    try:
        metrics = train_cell(cell, run_settings, Path(args.data), path, args.checkpoint_every)
    except checkpoint.Preempted as stop:
        print(f"{cell.key}: {stop}", file=sys.stderr, flush=True)
        sys.exit(checkpoint.EXIT_PREEMPTED)
    metrics["settings"] = settings
    metrics["provenance"] = provenance(metrics["device"])
    if claim is not None:
        metrics["provenance"]["gpu"] = claim.gpu
    if tracking is not None:
        from benchmark.tracking import log_cell

        metrics["mlflow_run_id"] = log_cell(tracking["experiment"], metrics, settings)
    return metrics
