"""Accuracy versus samples per class: one figure per dataset, one line per loss, a band over seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_dataset(frame: pd.DataFrame, dataset: str, losses: list[str], prefix: Path) -> list[Path]:
    """Write <prefix>.png and .pdf for `dataset`; x is images per class on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = frame[(frame.dataset == dataset) & (frame.status != "missing")]
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=150)
    if not data.empty:
        sns.lineplot(data=data, x="per_class", y="test_accuracy", hue="loss", hue_order=losses,
                     errorbar="sd", marker="o", ax=ax)
        ticks = data.groupby("spc", sort=False)["per_class"].mean()
        ax.set_xscale("log")
        ax.set_xticks(ticks.values)
        ax.set_xticklabels([f"all ({v:.0f})" if s == "all" else s for s, v in ticks.items()])
        ax.minorticks_off()
    ax.set_xlabel("training images per class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: accuracy vs. samples per class (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths = []
    for suffix in (".png", ".pdf"):
        path = prefix.with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{suffix}")
        fig.savefig(tmp)
        tmp.replace(path)
        paths.append(path)
    plt.close(fig)
    return paths
