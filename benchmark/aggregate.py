"""Collect the cells of a grid into paper-style tables.

Rows are losses; columns are (dataset, samples per class); each entry is the mean +- standard
deviation of test accuracy (%) over seeds, with the number of seeds; the best mean of each column
is bold. A cell without metrics.json is "missing" and a diverged one is flagged: nothing is
silently dropped; a loss a dataset does not run (dataset_settings.<dataset>.losses) shows "-".

With `reference: <file>` in the config (benchmark/reference.py), each entry the file has a number
for also shows the published value and our difference to it, "[paper 67.6, Δ -0.5]"; the CSV
gets the columns `reference` and `difference`.

With `paired_baseline: <loss>` the Markdown table is followed by paired differences to that loss:
for every other loss, dataset and samples-per-class value, the per-seed difference in accuracy
(the same seed draws the same training subset for every loss), its mean and standard deviation,
and on how many seeds the loss is ahead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.config import cell_dir, cells, table_rows
from benchmark.io import write_atomic
from benchmark.reference import load_reference


def collect(config: dict, root: Path = Path(".")) -> pd.DataFrame:
    """One row per expected cell of the grid, with status 'missing' where no result exists."""
    rows = []
    for dataset, loss, spc, seed in cells(config):
        path = root / cell_dir(dataset, loss, spc, seed) / "metrics.json"
        row = {"dataset": dataset, "loss": loss, "spc": str(spc), "seed": seed, "status": "missing",
               "test_accuracy": float("nan"), "test_balanced_accuracy": float("nan"), "per_class": float("nan")}
        if path.exists():
            metrics = json.loads(path.read_text())
            row.update(
                status=metrics["status"],
                test_accuracy=100.0 * metrics["test_accuracy"],
                test_balanced_accuracy=100.0 * metrics["test_balanced_accuracy"],
                per_class=metrics["train_images"] / metrics["num_classes"],
            )
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Mean, std and counts per (dataset, loss, spc); diverged seeds count with their accuracy."""
    def one(group: pd.DataFrame) -> pd.Series:
        done = group[group.status != "missing"][metric]
        return pd.Series({
            "mean": done.mean(), "std": done.std(ddof=1) if len(done) > 1 else 0.0, "n": len(done),
            "missing": int((group.status == "missing").sum()), "diverged": int((group.status == "diverged").sum()),
            "seeds": len(group),
        }, dtype=object)

    keys = ["dataset", "loss", "spc"]
    summary = frame.groupby(keys, sort=False)[["status", metric]].apply(one).reset_index()
    counts = ["n", "missing", "diverged", "seeds"]
    return summary.astype({**{c: "int64" for c in counts}, "mean": "float64", "std": "float64"})


def add_reference(summary: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Summary with the published value (`reference`, %) and `difference` = mean - reference per row."""
    ref = load_reference(path)
    values = {(label, dataset): float(v) for label, row in ref["values"].items() for dataset, v in row.items()}
    out = summary.copy()
    out["reference"] = [values.get((r.loss, r.dataset), float("nan")) if r.spc == ref["samples_per_class"]
                        else float("nan") for r in summary.itertuples()]
    out["difference"] = out["mean"] - out["reference"]
    return out


def _entry(row: pd.Series, bold: bool, style: str) -> str:
    ref = row.get("reference", float("nan"))
    delta = "$\\Delta$" if style == "tex" else "Δ"
    paper = "" if pd.isna(ref) else f" [paper {ref:.1f}" + (
        "]" if row.n == 0 else f", {delta} {row['mean'] - ref:+.1f}]")
    if row.n == 0:
        return "missing" + paper
    pm = "$\\pm$" if style == "tex" else "±"
    text = f"{row['mean']:.1f} {pm} {row['std']:.1f}"
    text = (f"\\textbf{{{text}}}" if style == "tex" else f"**{text}**") if bold else text
    notes = [f"n={int(row.n)}"]
    if row.missing:
        notes.append(f"{int(row.missing)} missing")
    if row.diverged:
        notes.append(f"{int(row.diverged)} diverged")
    return f"{text} ({', '.join(notes)}){paper}"


def table(summary: pd.DataFrame, losses: list[str], style: str) -> pd.DataFrame:
    """Loss labels x (dataset, spc) strings, best mean per column in bold, "-" where not run."""
    columns = list(dict.fromkeys(zip(summary.dataset, summary.spc, strict=True)))
    out = pd.DataFrame("-", index=losses, columns=pd.MultiIndex.from_tuples(columns, names=["dataset", "spc"]))
    for (dataset, spc), col in summary.groupby(["dataset", "spc"], sort=False):
        best = col["mean"].max()
        for _, row in col.iterrows():
            out.loc[row.loss, (dataset, spc)] = _entry(row, row.n > 0 and row["mean"] == best, style)
    return out


def to_markdown(tab: pd.DataFrame, title: str) -> str:
    header = ["loss"] + [f"{d} {s}/class" if s != "all" else f"{d} all" for d, s in tab.columns]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([loss, *row]) + " |" for loss, row in zip(tab.index, tab.values.tolist(), strict=True)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    for char in "\\%_&#$":
        text = text.replace(char, "\\" + char)
    return text


def to_latex(tab: pd.DataFrame, caption: str) -> str:
    header = " & ".join(["loss"] + [latex_escape(f"{d} {s}") for d, s in tab.columns]) + r" \\"
    body = [" & ".join([latex_escape(loss), *row]) + r" \\" for loss, row in zip(tab.index, tab.values.tolist(),
                                                                                       strict=True)]
    return "\n".join([
        r"\begin{table}", r"\centering", f"\\caption{{{caption}}}",
        r"\begin{tabular}{l" + "r" * len(tab.columns) + "}", r"\toprule", header, r"\midrule", *body,
        r"\bottomrule", r"\end{tabular}", r"\end{table}", "",
    ])


def write_tables(config: dict, prefix: Path, root: Path = Path(".")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write <prefix>.md, .tex and .csv; return (per-cell frame, summary)."""
    frame = collect(config, root)
    summary = summarise(frame)
    caption = (latex_escape(f"Test accuracy (%) on grid '{config['grid']}'") + ": mean $\\pm$ std over seeds "
               "(n = seeds with a result); best per column in bold.")
    title = f"Test accuracy (%) on grid '{config['grid']}', mean ± std over seeds (n seeds); best per column in bold"
    if "reference" in config:
        summary = add_reference(summary, root / config["reference"])
        source = load_reference(root / config["reference"])["source"]
        title += f"; [paper X, Δ ours - X]: {source}"
        caption += " [paper X, $\\Delta$ ours $-$ X]: " + latex_escape(source) + "."
    rows = table_rows(config)
    markdown = to_markdown(table(summary, rows, "md"), title)
    if config.get("baseline"):
        markdown += "\n" + paired_markdown(paired(frame, config["baseline"]), config["baseline"])
    write_atomic(prefix.with_suffix(".md"), markdown)
    write_atomic(prefix.with_suffix(".tex"), to_latex(table(summary, rows, "tex"), caption))
    write_atomic(prefix.with_suffix(".csv"), summary.to_csv(index=False, float_format="%.4f"))
    return frame, summary


def paired(frame: pd.DataFrame, baseline: str, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per (dataset, loss, spc): mean and std over seeds of loss - baseline, n pairs, wins (loss ahead)."""
    done = frame[frame.status != "missing"]
    base = done[done.loss == baseline][["dataset", "spc", "seed", metric]]
    other = done[done.loss != baseline]
    joined = other.merge(base, on=["dataset", "spc", "seed"], suffixes=("", "_base"))
    joined["diff"] = joined[metric] - joined[f"{metric}_base"]
    rows = []
    for (dataset, loss, spc), group in joined.groupby(["dataset", "loss", "spc"], sort=False):
        diff = group["diff"]
        rows.append({"dataset": dataset, "loss": loss, "spc": spc, "mean": diff.mean(),
                     "std": diff.std(ddof=1) if len(diff) > 1 else 0.0, "n": len(diff),
                     "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum())})
    return pd.DataFrame(rows, columns=["dataset", "loss", "spc", "mean", "std", "n", "wins", "ties"])


def paired_markdown(pairs: pd.DataFrame, baseline: str) -> str:
    """Losses x (dataset, spc): "+4.2 ± 1.3 (4/5)" = mean ± std of loss - baseline, ahead on 4 of 5 seeds."""
    columns = list(dict.fromkeys(zip(pairs.dataset, pairs.spc, strict=True)))
    header = ["loss"] + [f"{d} {s}/class" if s != "all" else f"{d} all" for d, s in columns]
    lines = [f"### Paired difference to {baseline} (accuracy points, same training subset per seed): "
             "mean ± std over seeds (seeds ahead / pairs)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for loss, group in pairs.groupby("loss", sort=False):
        entries = {(r.dataset, r.spc): f"{r['mean']:+.1f} ± {r['std']:.1f} ({r.wins}/{r.n})"
                   for _, r in group.iterrows()}
        lines.append("| " + " | ".join([loss, *(entries.get(c, "-") for c in columns)]) + " |")
    return "\n".join(lines) + "\n"


def summary_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """Mean accuracy of every (dataset, loss, spc) as flat MLflow metric names."""
    return {f"acc/{r.dataset}/{r.loss}/spc{r.spc}": r["mean"] for _, r in summary.iterrows() if r.n > 0}
