"""The training loop of a cell: epochs of a fixed number of SGD steps, per-epoch curves and validation.

`Progress` is everything the loop has done so far besides the weights: the position (epoch, step),
the running loss of the epoch, the curves, the best validation epoch. A checkpoint saves it with the
weights, the optimiser and the generators' states (`snapshot`), so a resumed cell continues from the
exact step it stopped at: on CPU it ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch

from benchmark import checkpoint
from benchmark.evaluate import accuracy, predict
from benchmark.schedules import learning_rate
from benchmark.train.build import CellRun


@dataclass
class Progress:
    epoch: int = 0  # epochs finished
    step: int = 0  # steps finished in the current epoch
    loss_sum: float = 0.0  # training loss summed over those steps
    elapsed_s: float = 0.0  # wall time of earlier, interrupted runs of this cell
    status: str = "ok"  # "diverged" once the loss is not finite
    curves: dict = field(default_factory=lambda: {"train_loss": [], "lr": []})
    best: dict = field(default_factory=lambda: {"accuracy": -1.0, "epoch": None, "state": None})


def snapshot(run: CellRun, progress: Progress, fingerprint: str) -> dict:
    """The checkpoint of a cell in training (see `restore`)."""
    saved = asdict(progress)
    saved["elapsed_s"] += time.perf_counter() - run.started
    return {"fingerprint": fingerprint, "method": run.method.state_dict(), "optimizer": run.optimizer.state_dict(),
            "stream": run.stream.state(), "augment": run.aug_generator.get_state(), "progress": saved,
            "recipe": run.recipe.state_dict() if run.recipe is not None else None}


def restore(run: CellRun, state: dict) -> Progress:
    run.method.load_state_dict(state["method"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.stream.restore(state["stream"])
    run.aug_generator.set_state(state["augment"])
    if run.recipe is not None:
        run.recipe.load_state_dict(state["recipe"])
    return Progress(**state["progress"])


def validation_accuracy(run: CellRun) -> float:
    """Accuracy on the cell's validation split (never the test set)."""
    return accuracy(predict_images(run, run.val_idx), run.prepared.labels[run.val_idx])


def predict_images(run: CellRun, idx) -> torch.Tensor:
    """Predicted classes of the images `idx`, seen as at test time."""
    batches = run.data.eval_batches(idx, run.settings["augment"], run.options.eval_batch_size,
                                    run.runtime.memory_format)
    with torch.autocast(run.runtime.device.type, dtype=torch.bfloat16, enabled=run.runtime.autocast):
        return predict(run.evaluated, batches)


def train_step(run: CellRun, x: torch.Tensor, y) -> torch.Tensor:
    """One SGD step on a batch (forward, objective, backward, clip, update); returns the batch loss."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=run.runtime.autocast):
        value = run.method.objective(x, y)
    run.optimizer.zero_grad()
    value.backward()
    torch.nn.utils.clip_grad_norm_(run.optimizer.parameters(), run.train["grad_clip_norm"])
    run.optimizer.step()
    if run.recipe is not None:
        run.recipe.after_step(run.method)
    return value.detach()


def train_epochs(run: CellRun, progress: Progress, checkpoints: checkpoint.Checkpoints | None,
                 on_first_step=None, on_epoch=None, until_epoch: int | None = None) -> None:
    """Train until the last epoch, divergence or early stopping; `progress` is updated in place.

    With `checkpoints`, SIGTERM saves a checkpoint and raises `checkpoint.Preempted` between two steps, and
    a checkpoint is also saved at an epoch's end when the last one is older than its period.
    `on_epoch(run, progress, metrics)` gets each finished epoch's metrics (epoch 1-based). With
    `until_epoch`, training pauses after that many epochs (successive halving's rungs).
    """
    train = run.train
    validate = run.val_idx.size > 0
    if validate:
        progress.curves.setdefault("val_accuracy", [])
    last = train["epochs"] if until_epoch is None else min(train["epochs"], until_epoch)
    while progress.epoch < last and progress.status == "ok":
        epoch = progress.epoch
        lr = learning_rate(epoch, train["epochs"], train["lr"], train["schedule"])
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        run.method.train()
        loss_sum = torch.tensor(progress.loss_sum, device=run.runtime.device)
        epoch_started = time.perf_counter()
        for step in range(progress.step, run.steps):
            if checkpoints is not None and checkpoint.stop_requested():
                progress.step, progress.loss_sum = step, float(loss_sum)
                checkpoints.save(snapshot(run, progress, checkpoints.fingerprint))
                raise checkpoint.Preempted(checkpoints.path, epoch, step, checkpoint.seconds_since_stop_request())
            if on_first_step is not None:
                on_first_step()
                on_first_step = None
            idx = next(run.stream)
            x, y = run.data.train_batch(idx, run.settings["augment"], run.aug_generator, run.runtime.memory_format,
                                        run.recipe)
            x, y = run.method.train_batch(x, y, epoch)
            loss_sum += train_step(run, x, y)
        progress.epoch, progress.step, progress.loss_sum = epoch + 1, 0, 0.0
        epoch_loss = float(loss_sum) / run.steps
        progress.curves["train_loss"].append(epoch_loss)
        progress.curves["lr"].append(lr)
        print(f"{run.cell.name}: epoch {epoch + 1}/{train['epochs']} train loss {epoch_loss:.4f}", flush=True)
        epoch_s = time.perf_counter() - epoch_started
        stop = False
        if not math.isfinite(epoch_loss):
            progress.status = "diverged"
            stop = True
        elif validate:
            stop = not _validate(run, progress, epoch)
        if on_epoch is not None:
            metrics = {"train_loss": epoch_loss, "lr": lr, "epoch_s": epoch_s,
                       "images_per_s": run.steps * train["batch_size"] / max(epoch_s, 1e-9)}
            if validate and len(progress.curves["val_accuracy"]) == epoch + 1:
                metrics["val_accuracy"] = progress.curves["val_accuracy"][-1]
            on_epoch(run, progress, metrics)
        if stop:
            break
        if checkpoints is not None and checkpoints.due():
            checkpoints.save(snapshot(run, progress, checkpoints.fingerprint))


def _validate(run: CellRun, progress: Progress, epoch: int) -> bool:
    """Record the epoch's validation accuracy; False when early stopping ends training."""
    value = validation_accuracy(run)
    progress.curves["val_accuracy"].append(value)
    best = progress.best
    if value > best["accuracy"]:
        best["accuracy"], best["epoch"] = value, epoch
        if run.train["select"] == "best_val":
            best["state"] = copy.deepcopy(run.evaluated.state_dict())
        return True
    patience = run.train["patience"]
    return not (patience and epoch - best["epoch"] >= patience)
