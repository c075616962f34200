"""Figures of a grid: accuracy versus samples per class per dataset, and training curves per (dataset, spc).

Every method has its own marker AND line style (readable when printed in greyscale) besides its
colour; PDFs embed TrueType (Type 42) fonts (benchmark.figures.save_figure).

Inputs:
- `plot_dataset`: the cell frame (dataset, method, spc, split, seed, status, <metric>, per_class),
  one row per run; a run counts where its status is not "missing" and its metric is a number.
- `plot_training_curves`: a long frame (dataset, method, spc, split, seed, epoch (1-based),
  name in {train_loss, val_accuracy, lr}, value).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.figures import save_figure

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 2, 2)),
              (0, (4, 4)), (0, (2, 1, 2, 4)), (0, (6, 1, 1, 1)), (0, (1, 1))]
CURVES = [("train_loss", "train loss", False), ("val_accuracy", "validation accuracy (%)", False),
          ("lr", "learning rate (log scale)", True)]


INSIDE = 8  # methods whose legend fits inside the axes; more go to the right, in columns of ROWS
ROWS = 17


def legend_columns(n: int) -> int:
    return max(1, math.ceil(n / ROWS))


def place_legend(ax, n: int, handles=None, labels=None) -> None:
    """The legend inside the axes for a few methods, beside them (right, in columns) for many."""
    args = (handles, labels) if handles is not None else ()
    if n <= INSIDE:
        ax.legend(*args, fontsize=7, frameon=False)
    else:
        ax.legend(*args, fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  ncol=legend_columns(n), borderaxespad=0.0)


def style(i: int) -> dict:
    """Colour, marker and line style of the i-th method; markers and line styles cycle with different periods."""
    import matplotlib

    return {"color": matplotlib.colormaps["tab10"](i % 10), "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def _n_text(counts: pd.Series) -> str:
    lo, hi = int(counts.min()), int(counts.max())
    return f"n={lo}" if lo == hi else f"n={lo}–{hi}"


def accuracy_points(frame: pd.DataFrame, dataset: str, method: str, metric: str = "accuracy") -> pd.DataFrame:
    """Per spc of one method on one dataset: x (mean images per class), mean, sd (ddof 1, NaN for n=1), n; by x."""
    rows = frame[(frame.dataset == dataset) & (frame.method == method) & (frame.status != "missing")
                 & frame[metric].notna()]
    points = rows.groupby(rows.spc.astype(str), sort=False).agg(
        x=("per_class", "mean"), mean=(metric, "mean"), sd=(metric, lambda v: v.std(ddof=1)), n=(metric, "size"))
    return points.sort_values("x")


def band(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """mean - sd and mean + sd, clipped to [0, 100] (an accuracy band beyond 100 % would be meaningless)."""
    mean, sd = points["mean"].to_numpy(dtype=float), points["sd"].to_numpy(dtype=float)
    return np.clip(mean - sd, 0.0, 100.0), np.clip(mean + sd, 0.0, 100.0)


def dataset_figure(frame: pd.DataFrame, dataset: str, methods: list[str], metric: str = "accuracy",
                   metric_name: str = "test accuracy", labels: dict[str, str] | None = None):
    """The figure of `plot_dataset` (not saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    columns = legend_columns(len(methods))
    fig, ax = plt.subplots(figsize=(6.4 + (2.3 * columns if len(methods) > INSIDE else 0), 4.2), dpi=150)
    ticks: dict[str, float] = {}
    for i, method in enumerate(methods):
        points = accuracy_points(frame, dataset, method, metric)
        if points.empty:
            continue
        st = style(i)
        ax.plot(points.x, points["mean"], label=f"{labels.get(method, method)} ({_n_text(points.n)})",
                markersize=5, lw=1.4, **st)
        low, high = band(points)
        ax.fill_between(points.x, low, high, color=st["color"], alpha=0.15, lw=0)
        ticks.update(points.x.to_dict())
    if ticks:
        ax.set_xscale("log")
        ax.set_xticks(list(ticks.values()))
        ax.set_xticklabels([f"all ({v:.0f})" if s == "all" else s for s, v in ticks.items()])
        ax.minorticks_off()
        place_legend(ax, len(methods))
    else:
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training images per class (log scale)")
    ax.set_ylabel(f"{metric_name} (%)")
    ax.set_title(f"{labels.get(dataset, dataset)}: {metric_name} vs. images per class\n"
                 "mean ± sd over n runs (subset draws × seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_dataset(frame: pd.DataFrame, dataset: str, methods: list[str], prefix: Path, metric: str = "accuracy",
                 metric_name: str = "test accuracy", labels: dict[str, str] | None = None) -> list[Path]:
    """Write <prefix>.png and <prefix>.pdf: `metric_name` (%) vs. training images per class (log x) for `dataset`.

    One line per method (mean over runs), a band of mean ± sd (sample sd over runs, clipped to
    [0, 100]; none where n = 1), the number of runs per point in the legend.
    """
    return save_figure(dataset_figure(frame, dataset, methods, metric, metric_name, labels), prefix)


def curve_means(curves: pd.DataFrame, dataset: str, spc: str) -> pd.DataFrame:
    """Per (method, name, epoch) of one (dataset, spc): mean `value` over the runs (split, seed), and their number n."""
    rows = curves[(curves.dataset == dataset) & (curves.spc.astype(str) == str(spc)) & curves.value.notna()]
    return rows.groupby(["method", "name", "epoch"]).value.agg(mean="mean", n="size")


def training_curves_figure(curves: pd.DataFrame, dataset: str, spc: str, methods: list[str],
                           labels: dict[str, str] | None = None):
    """The figure of `plot_training_curves` (not saved): one panel per quantity present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    labels = labels or {}
    rows = curves[(curves.dataset == dataset) & (curves.spc.astype(str) == str(spc))]
    if not rows.empty and rows.epoch.min() < 1:
        raise ValueError(f"training curves of {dataset} spc {spc} have epoch {rows.epoch.min()}; epochs are 1-based")
    panels = [c for c in CURVES if (rows["name"] == c[0]).any()]
    width = max(len(panels), 1)
    extra = 2.3 * legend_columns(len(methods)) if len(methods) > INSIDE else 0
    fig, axes = plt.subplots(1, width, figsize=(4.0 * width + extra, 3.4), dpi=150, squeeze=False)
    means_all = curve_means(rows, dataset, spc)
    for ax, (name, ylabel, log) in zip(axes[0], panels, strict=False):
        for i, method in enumerate(methods):
            if (method, name) not in means_all.index.droplevel("epoch"):
                continue
            means = means_all.loc[(method, name)]
            # A marker on every epoch would hide long curves; space them to about ten per line.
            every = max(1, math.ceil(len(means) / 10))
            ax.plot(means.index, means["mean"], label=f"{labels.get(method, method)} ({_n_text(means.n)})",
                    markevery=every, markersize=4, lw=1.2, **style(i))
        if log:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch (1-based)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if panels:
        if len(methods) > INSIDE:
            place_legend(axes[0][-1], len(methods), *axes[0][0].get_legend_handles_labels())
        else:
            axes[0][0].legend(fontsize=7, frameon=False)
    else:
        axes[0][0].text(0.5, 0.5, "no training curves", ha="center", va="center", transform=axes[0][0].transAxes)
    spc_text = "all training images" if str(spc) == "all" else f"{spc} images per class"
    fig.suptitle(f"{labels.get(dataset, dataset)}, {spc_text}: mean over n runs per epoch", fontsize=9)
    fig.tight_layout()
    return fig


def plot_training_curves(curves: pd.DataFrame, dataset: str, spc: str, methods: list[str], prefix: Path,
                         labels: dict[str, str] | None = None) -> list[Path]:
    """Write <prefix>.png/.pdf: per-epoch train loss, validation accuracy (when present) and learning rate.

    Each panel shows, per method, the mean over runs (split, seed) at each epoch; epochs are
    1-based (epoch 1 is the first pass over the data), which is checked.
    """
    return save_figure(training_curves_figure(curves, dataset, spc, methods, labels), prefix)


def training_curve_figures(curves: pd.DataFrame, methods: list[str], directory: Path, stem: str,
                           labels: dict[str, str] | None = None) -> list[Path]:
    """One training-curves figure per (dataset, spc) of `curves`: <directory>/<stem>_<dataset>_<spc>.png/.pdf."""
    paths = []
    for dataset, spc in dict.fromkeys(zip(curves.dataset, curves.spc.astype(str), strict=True)):
        paths += plot_training_curves(curves, dataset, spc, methods, Path(directory) / f"{stem}_{dataset}_{spc}",
                                      labels)
    return paths
