"""benchmark.plots: what each figure shows (checked on the matplotlib objects) and how its files are written."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest
from fixtures.pdf_fonts import assert_no_type3, font_types

from benchmark.plots import (
    accuracy_points,
    band,
    curve_means,
    dataset_figure,
    plot_dataset,
    style,
    training_curve_figures,
    training_curves_figure,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def cells() -> pd.DataFrame:
    """cub: a at 5/class 95, 100, 100 (near the ceiling), at all 70, 74, missing; b at 5/class one run of 40."""
    rows = []
    grid = [("a", "5", 5.0, [95.0, 100.0, 100.0]), ("a", "all", 29.97, [70.0, 74.0, None]),
            ("b", "5", 5.0, [40.0, None, None]), ("b", "all", 29.97, [60.0, 62.0, 64.0])]
    for method, spc, per_class, values in grid:
        for seed, v in enumerate(values):
            rows.append({"dataset": "cub", "method": method, "spc": spc, "split": 0, "seed": seed,
                         "status": "missing" if v is None else "ok", "accuracy": math.nan if v is None else v,
                         "per_class": per_class})
    rows.append({"dataset": "cars", "method": "a", "spc": "5", "split": 0, "seed": 0, "status": "ok",
                 "accuracy": 10.0, "per_class": 5.0})
    return pd.DataFrame(rows)


def test_accuracy_points_by_hand():
    p = accuracy_points(cells(), "cub", "a")
    # 5/class: mean 295 / 3 = 98.333, sd sqrt((11.11 + 2.78 + 2.78) / 2) = sqrt(25 / 3) = 2.8868; all: 72, sd 2.8284.
    assert list(p.index) == ["5", "all"] and p.x.tolist() == [5.0, 29.97]
    assert p["mean"].tolist() == pytest.approx([295 / 3, 72.0])
    assert p.sd.tolist() == pytest.approx([math.sqrt(25 / 3), math.sqrt(8)])
    assert p.n.tolist() == [3, 2]
    single = accuracy_points(cells(), "cub", "b")
    assert single.loc["5", "n"] == 1 and math.isnan(single.loc["5", "sd"])


def test_band_is_clipped_to_percent_range():
    low, high = band(accuracy_points(cells(), "cub", "a"))
    # 98.333 + 2.887 = 101.22 -> 100; 98.333 - 2.887 = 95.45 stays; 72 ± 2.83.
    assert high.tolist() == pytest.approx([100.0, 72 + math.sqrt(8)])
    assert low.tolist() == pytest.approx([295 / 3 - math.sqrt(25 / 3), 72 - math.sqrt(8)])


def test_styles_differ_in_marker_and_line_style():
    styles = [style(i) for i in range(10)]
    assert len({s["marker"] for s in styles}) == 10
    assert len({str(s["linestyle"]) for s in styles}) == 10


def test_dataset_figure_lines_legend_and_band():
    fig = dataset_figure(cells(), "cub", ["a", "b", "never_run"])
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a (n=2–3)", "b (n=1–3)"]  # n per point in the legend
    assert lines[0].get_marker() != lines[1].get_marker()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_ydata().tolist() == pytest.approx([295 / 3, 72.0])
    top = max(path.vertices[:, 1].max() for path in ax.collections[0].get_paths())
    assert top == pytest.approx(100.0)  # the band of a stops at 100 %
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "all (30)"]
    plt.close(fig)


@pytest.mark.slow  # renders and saves PNG and PDF, and reads the PDF's fonts back
def test_plot_dataset_writes_png_and_pdf_with_truetype_fonts(tmp_path):
    paths = plot_dataset(cells(), "cub", ["a", "b"], tmp_path / "grid_cub")
    assert paths == [tmp_path / "grid_cub.png", tmp_path / "grid_cub.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert_no_type3(paths[1])
    # The check can fail: matplotlib's default PDF fonts are Type 3.
    fig, ax = plt.subplots()
    ax.set_title("default fonts")
    fig.savefig(tmp_path / "default.pdf")
    plt.close(fig)
    assert "Type 3" in font_types(tmp_path / "default.pdf")


def curves(with_val: bool = True) -> pd.DataFrame:
    """Two seeds of method a and one of b on cub 5/class, three epochs (1-based)."""
    rows = []
    for method, seed, loss in [("a", 0, [2.0, 1.0, 0.5]), ("a", 1, [3.0, 2.0, 1.5]), ("b", 0, [1.0, 0.8, 0.6])]:
        for epoch in (1, 2, 3):
            values = {"train_loss": loss[epoch - 1], "lr": 0.1 / epoch}
            if with_val:
                values["val_accuracy"] = 10.0 * epoch + seed
            for name, value in values.items():
                rows.append({"dataset": "cub", "method": method, "spc": "5", "split": 0, "seed": seed,
                             "epoch": epoch, "name": name, "value": value})
    return pd.DataFrame(rows)


def test_curve_means_average_over_seeds_per_epoch():
    means = curve_means(curves(), "cub", "5")
    m = means.loc[("a", "train_loss")]
    # epoch 1: (2 + 3) / 2 = 2.5; epoch 2: 1.5; epoch 3: 1.0.
    assert m.index.tolist() == [1, 2, 3] and m["mean"].tolist() == [2.5, 1.5, 1.0] and m.n.tolist() == [2, 2, 2]
    assert means.loc[("a", "val_accuracy")]["mean"].tolist() == [10.5, 20.5, 30.5]  # (10 + 11) / 2, ...
    assert means.loc[("b", "train_loss")].n.tolist() == [1, 1, 1]


def test_training_curves_panels_and_axes():
    fig = training_curves_figure(curves(), "cub", "5", ["a", "b"])
    loss_ax, val_ax, lr_ax = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["train loss", "validation accuracy (%)",
                                                    "learning rate (log scale)"]
    a_line = loss_ax.get_lines()[0]
    assert a_line.get_xdata().tolist() == [1, 2, 3] and a_line.get_ydata().tolist() == [2.5, 1.5, 1.0]
    assert a_line.get_label() == "a (n=2)" and loss_ax.get_lines()[1].get_label() == "b (n=1)"
    assert lr_ax.get_yscale() == "log" and loss_ax.get_yscale() == "linear"
    plt.close(fig)
    no_val = training_curves_figure(curves(with_val=False), "cub", "5", ["a", "b"])
    assert [ax.get_ylabel() for ax in no_val.axes] == ["train loss", "learning rate (log scale)"]
    plt.close(no_val)


def test_training_curves_reject_zero_based_epochs():
    zero_based = curves().assign(epoch=lambda f: f.epoch - 1)
    with pytest.raises(ValueError, match="1-based"):
        training_curves_figure(zero_based, "cub", "5", ["a"])


@pytest.mark.slow  # four figures rendered and saved (1.6 s); the panels are checked in the fast suite
def test_training_curve_files(tmp_path):
    two = pd.concat([curves(), curves().assign(spc="all")])
    written = training_curve_figures(two, ["a", "b"], tmp_path / "c", "toy")
    assert [p.name for p in written] == ["toy_cub_5.png", "toy_cub_5.pdf", "toy_cub_all.png", "toy_cub_all.pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert_no_type3(written[1])


def test_many_methods_get_their_legend_beside_the_axes(tmp_path):
    """32 methods do not fit a legend inside the axes: it goes to the right, in columns, and the figure widens."""
    import matplotlib

    matplotlib.use("Agg")
    from benchmark.plots import dataset_figure

    methods = [f"m{i}" for i in range(32)]
    rows = [{"dataset": "d", "method": m, "spc": s, "split": 0, "seed": 0, "status": "ok", "accuracy": 50.0 + i,
             "per_class": float(s)} for i, m in enumerate(methods) for s in ("5", "20")]
    fig = dataset_figure(pd.DataFrame(rows), "d", methods)
    legend = fig.axes[0].get_legend()
    assert len(legend.get_texts()) == 32 and legend._ncols == 2
    assert fig.get_size_inches()[0] > 6.4 + 4
