"""Result tables with confidence intervals, paired tests against a baseline, ranks and a Friedman test.

Input: one row per expected cell of a grid (columns dataset, method, spc, split, seed, status,
the metric column, per_class). A run enters the statistics when its status is not "missing" and
its metric is a number; a diverged run counts with the accuracy it reached (leaving it out
would flatter the method) and is named in its entry.

`summarise` computes per (dataset, spc, method):
- mean, sample sd, n and the t confidence interval of the mean (benchmark.stats.describe);
- the paired t-test against the baseline method over runs sharing (split, seed), Holm-corrected
  over every comparison of the table: marker ▲ (significantly better) / ▼ (worse);
- bold: the best mean of the column and every entry not significantly worse than it (paired
  t-test against the column's best, Holm-corrected within the column; an entry with fewer than 2
  pairs cannot be shown worse and stays bold);
- the rank within the column and the average rank over the columns where every method has a
  mean, the Friedman test and the Nemenyi critical difference over those columns (Demšar 2006).
Renderers turn the summary into Markdown, LaTeX (booktabs), CSV and an HTML fragment.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.io import write_atomic
from benchmark.stats import (
    Friedman,
    average_ranks,
    critical_difference,
    describe,
    friedman,
    holm,
    paired_test,
)

REQUIRED = ("dataset", "method", "spc", "split", "seed", "status", "per_class")
KEY = ["dataset", "spc", "method"]
RUN_KEY = ["split", "seed"]

# Tidy summary columns, in CSV order.
COLUMNS = [
    "dataset", "spc", "per_class", "method", "runs", "n", "missing", "diverged", "diverged_runs",
    "mean", "sd", "ci_low", "ci_high",
    "diff_to_baseline", "diff_sd", "n_pairs", "t", "p", "p_holm", "significant", "marker",
    "best", "diff_to_best", "p_vs_best", "p_vs_best_holm", "bold", "rank", "avg_rank",
    "reference", "reference_diff",
]


@dataclass(frozen=True)
class Reference:
    """Published numbers to show beside ours: {(method, dataset): value in %}, valid at one spc."""

    values: dict[tuple[str, str], float]
    spc: str
    source: str
    label: str = "paper"


@dataclass
class Summary:
    """Everything a table shows; `cells` is the tidy frame (one row per (dataset, spc, method) that is run)."""

    cells: pd.DataFrame
    methods: list[str]
    columns: list[tuple[str, str]]
    metric_name: str
    baseline: str | None
    alpha: float
    confidence: float
    avg_ranks: pd.Series
    blocks: list[tuple[str, str]]
    friedman: Friedman
    cd: float | None
    n_comparisons: int
    reference: Reference | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def tests(self) -> dict[str, float | int | None]:
        """The table-level numbers (for a log or MLflow): Friedman statistic, p, k, N and the CD."""
        return {"friedman_chi2": self.friedman.statistic, "friedman_p": self.friedman.p, "k": self.friedman.k,
                "blocks": len(self.blocks), "cd": self.cd, "baseline_comparisons": self.n_comparisons}


def _diverged_runs(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """ "split 0 seed 2, split 1 seed 0" per (dataset, spc, method) with diverged runs."""
    bad = frame[frame.status == "diverged"].sort_values(RUN_KEY)
    return {key: ", ".join(f"split {int(r.split)} seed {int(r.seed)}" for r in rows.itertuples())
            for key, rows in bad.groupby(KEY, sort=False)}


def summarise(
    frame: pd.DataFrame,
    methods: list[str] | None = None,
    columns: list[tuple[str, str]] | None = None,
    metric: str = "accuracy",
    metric_name: str = "test accuracy",
    baseline: str | None = "softmax_ce",
    alpha: float = 0.05,
    confidence: float = 0.95,
    reference: Reference | None = None,
    labels: dict[str, str] | None = None,
) -> Summary:
    """Statistics of every (dataset, spc, method) of `frame`, in the given row and column order.

    `methods` are the table rows and `columns` the (dataset, spc) columns (default: order of first
    appearance). A method without any row for a column is "not run" there and has no tidy row.
    """
    absent = [c for c in (*REQUIRED, metric) if c not in frame.columns]
    if absent:
        raise ValueError(f"the frame lacks the columns {absent}")
    frame = frame.assign(spc=frame.spc.astype(str))
    methods = list(methods) if methods is not None else list(dict.fromkeys(frame.method))
    columns = [(d, str(s)) for d, s in columns] if columns is not None else list(
        dict.fromkeys(zip(frame.dataset, frame.spc, strict=True)))
    if not columns:
        raise ValueError("the table has no (dataset, spc) column")
    if baseline is not None and baseline not in methods:
        raise ValueError(f"the baseline {baseline!r} is not one of the table's methods {methods}")
    duplicated = frame[frame.duplicated(KEY + RUN_KEY, keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise ValueError(f"{first.dataset} spc {first.spc} {first.method}: more than one row per (split, seed)")

    has_value = (frame.status != "missing") & frame[metric].notna()
    counts = frame.assign(_value=has_value, _diverged=frame.status == "diverged").groupby(KEY, sort=False).agg(
        runs=("_value", "size"), n_values=("_value", "sum"), diverged=("_diverged", "sum"),
        per_class=("per_class", "mean"))
    # The metric of the runs that count, per (dataset, spc, method), indexed by the run "split/seed": the
    # pairing key of the paired tests (a flat string index; a MultiIndex per group is much slower to build).
    done = frame[has_value]
    runs = pd.Index((done.split.astype(str) + "/" + done.seed.astype(str)).to_numpy(), name="run")
    series = pd.Series(done[metric].to_numpy(dtype=float), index=runs)
    values = {key: series.iloc[idx] for key, idx in done.groupby(KEY, sort=False).indices.items()}
    empty = pd.Series([], index=pd.Index([], name="run", dtype=object), dtype=float)
    diverged_runs = _diverged_runs(frame)
    records = []
    for dataset, spc in columns:
        for method in methods:
            key = (dataset, spc, method)
            if key not in counts.index:
                continue  # not run
            values.setdefault(key, empty)
            desc = describe(values[key].to_numpy(), confidence)
            ci = desc.ci or (math.nan, math.nan)
            c = counts.loc[key]
            records.append({
                "dataset": dataset, "spc": spc, "method": method, "per_class": c.per_class, "runs": int(c.runs),
                "n": desc.n, "missing": int(c.runs - c.n_values), "diverged": int(c.diverged),
                "diverged_runs": diverged_runs.get(key, ""), "mean": desc.mean, "sd": desc.sd,
                "ci_low": ci[0], "ci_high": ci[1]})
    cells = pd.DataFrame.from_records(records).reindex(columns=COLUMNS)

    _compare_to_baseline(cells, values, baseline, alpha)
    _bold(cells, values, alpha)
    cells["rank"] = cells.groupby(["dataset", "spc"], sort=False)["mean"].rank(ascending=False, method="average")

    # Blocks for ranks: the columns (in table order) in which every method has a mean.
    scores = pd.DataFrame(math.nan, index=pd.MultiIndex.from_tuples(columns), columns=methods)
    for r in cells.itertuples():
        scores.loc[(r.dataset, r.spc), r.method] = r.mean
    complete = scores.dropna(axis=0, how="any")
    blocks = list(complete.index)
    avg = average_ranks(complete) if blocks else pd.Series(dtype=float)
    cells["avg_rank"] = cells.method.map(avg).astype(float)
    cd = critical_difference(len(methods), len(blocks), alpha) if blocks and len(methods) >= 2 else None

    _add_reference(cells, reference)
    return Summary(cells=cells, methods=methods, columns=columns, metric_name=metric_name, baseline=baseline,
                   alpha=alpha, confidence=confidence, avg_ranks=avg, blocks=blocks, friedman=friedman(complete),
                   cd=cd, n_comparisons=int(cells.p.notna().sum()), reference=reference, labels=dict(labels or {}))


def _compare_to_baseline(cells: pd.DataFrame, values: dict, baseline: str | None, alpha: float) -> None:
    """Paired test of every method against the baseline per column; Holm over all comparisons of the table."""
    cells["significant"] = False
    cells["marker"] = ""
    if baseline is None:
        return
    found = {}
    for i, r in enumerate(cells.itertuples()):
        base = values.get((r.dataset, r.spc, baseline))
        if r.method != baseline and base is not None:
            test = paired_test(values[(r.dataset, r.spc, r.method)], base)
            found[cells.index[i]] = (test.mean_diff, test.sd, test.n, _nan(test.t), _nan(test.p))
    if found:
        cells.loc[list(found), ["diff_to_baseline", "diff_sd", "n_pairs", "t", "p"]] = list(found.values())
    cells["p_holm"] = holm(cells.p.to_numpy(dtype=float))
    significant = cells.p_holm < alpha
    cells["significant"] = significant
    cells.loc[significant & (cells.diff_to_baseline > 0), "marker"] = "better"
    cells.loc[significant & (cells.diff_to_baseline < 0), "marker"] = "worse"


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _bold(cells: pd.DataFrame, values: dict, alpha: float) -> None:
    """Best mean per column, and every entry not significantly worse than it (Holm within the column)."""
    cells["best"] = False
    cells["bold"] = False
    found = {}
    for (dataset, spc), col in cells.groupby(["dataset", "spc"], sort=False):
        done = col[col.n > 0]
        if done.empty:
            continue
        best = done["mean"].idxmax()  # the first in row order on a tie
        best_values = values[(dataset, spc, cells.loc[best, "method"])]
        others = [i for i in done.index if i != best]
        tests = [paired_test(values[(dataset, spc, cells.loc[i, "method"])], best_values) for i in others]
        adjusted = holm([t.p for t in tests])
        cells.loc[best, ["best", "bold"]] = True
        for i, test, adj in zip(others, tests, adjusted, strict=True):
            worse = adj < alpha and test.mean_diff < 0
            found[i] = (test.mean_diff, _nan(test.p), adj, not worse)
    if found:
        cells.loc[list(found), ["diff_to_best", "p_vs_best", "p_vs_best_holm", "bold"]] = list(found.values())
    cells["bold"] = cells["bold"].astype(bool)


def _add_reference(cells: pd.DataFrame, reference: Reference | None) -> None:
    if reference is None:
        return
    ref = [reference.values.get((r.method, r.dataset), math.nan) if r.spc == str(reference.spc) else math.nan
           for r in cells.itertuples()]
    cells["reference"] = np.asarray(ref, dtype=float)
    cells["reference_diff"] = cells["mean"] - cells["reference"]


# --------------------------------------------------------------------------- entries

# Per output style: plus-minus, delta, markers, bold wrapper, escaping of free text.
_STYLE = {
    "md": {"pm": "±", "delta": "Δ", "better": "▲", "worse": "▼", "bold": "**{}**", "times": "×", "alpha": "α",
           "chi2": "χ²", "pct": "%"},
    "html": {"pm": "±", "delta": "Δ", "better": "▲", "worse": "▼", "bold": "<strong>{}</strong>", "times": "×",
             "alpha": "α", "chi2": "χ²", "pct": "%"},
    "tex": {"pm": "$\\pm$", "delta": "$\\Delta$", "better": "$\\blacktriangle$", "worse": "$\\blacktriangledown$",
            "bold": "\\textbf{{{}}}", "times": "$\\times$", "alpha": "$\\alpha$", "chi2": "$\\chi^2$", "pct": "\\%"},
    "text": {"pm": "±", "delta": "Δ", "better": "▲", "worse": "▼", "bold": "{}", "times": "×", "alpha": "α",
             "chi2": "χ²", "pct": "%"},
}


def entry(row: pd.Series, style: str = "text", reference_label: str = "paper") -> str:
    """One table entry, e.g. "85.9 ± 2.9 [82.3, 89.5] n=3 ▲ (1 missing, 1 diverged: split 0 seed 2)".

    n = 1 shows the single value without "±" and interval; n = 0 reads "missing". The bold part
    is the mean (± sd). Reference numbers follow as "[paper 67.6, Δ -0.5]".
    """
    s = _STYLE[style]
    parts = []
    if row.n == 0:
        parts.append("missing")
    else:
        number = f"{row['mean']:.1f}" + (f" {s['pm']} {row.sd:.1f}" if row.n >= 2 else "")
        parts.append(s["bold"].format(number) if row.bold else number)
        if row.n >= 2:
            parts.append(f"[{row.ci_low:.1f}, {row.ci_high:.1f}]")
        parts.append(f"n={int(row.n)}")
        if row.marker:
            parts.append(s[row.marker])
    notes = []
    if row.missing and row.n > 0:
        notes.append(f"{int(row.missing)} missing")
    if row.diverged:
        notes.append(f"{int(row.diverged)} diverged: {row.diverged_runs}")
    if notes:
        parts.append(f"({', '.join(notes)})")
    ref = row.get("reference", math.nan)
    if not pd.isna(ref):
        parts.append(f"[{reference_label} {ref:.1f}]" if row.n == 0
                     else f"[{reference_label} {ref:.1f}, {s['delta']} {row['mean'] - ref:+.1f}]")
    return " ".join(parts)


def grid(summary: Summary, style: str = "text") -> pd.DataFrame:
    """Methods x (dataset, spc) entry strings; "-" where a method is not run on that column."""
    label = summary.reference.label if summary.reference else "paper"
    entries = {(row.method, (row.dataset, row.spc)): entry(row, style, label) for _, row in summary.cells.iterrows()}
    return pd.DataFrame([[entries.get((m, c), "-") for c in summary.columns] for m in summary.methods],
                        index=summary.methods,
                        columns=pd.MultiIndex.from_tuples(summary.columns, names=["dataset", "spc"]))


def _label(summary: Summary, name: str) -> str:
    return summary.labels.get(name, name)


def spc_header(summary: Summary, dataset: str, spc: str) -> str:
    """ "5/class", or for the full training set "all (30/class)" with its mean images per class."""
    if spc != "all":
        return f"{spc}/class"
    per_class = summary.cells[(summary.cells.dataset == dataset) & (summary.cells.spc == spc)].per_class.mean()
    return "all" + ("" if pd.isna(per_class) else f" ({per_class:.0f}/class)")


def column_header(summary: Summary, dataset: str, spc: str) -> str:
    """ "cub 5/class", "cub all (30/class)"."""
    return f"{_label(summary, dataset)} {spc_header(summary, dataset, spc)}"


def _p(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def legend(summary: Summary, style: str = "text") -> list[str]:
    """The lines under a table that say what every number, marker and bold entry means."""
    s = _STYLE[style]
    esc = latex_escape if style == "tex" else str

    def quote(word: str) -> str:
        return f"``{word}''" if style == "tex" else f'"{word}"'

    pct, alpha = s["pct"], f"{s['alpha']} = {summary.alpha:g}"
    lines = [
        f"Entries: mean {s['pm']} sample standard deviation of {esc(summary.metric_name)} ({pct}) over the n runs "
        f"(training-subset draws {s['times']} initialisation seeds), [{summary.confidence * 100:.0f}{pct} t "
        f"confidence interval of the mean]; with n=1 the single value; {quote('missing')}: no run has a result; "
        f"{quote('-')}: method not run on this dataset. Diverged runs count with the accuracy they reached and are "
        "named.",
    ]
    if summary.baseline is not None:
        lines.append(
            f"{s['better']} / {s['worse']}: significantly better / worse than {esc(_label(summary, summary.baseline))} "
            "(two-sided paired t-test over runs sharing training subset and seed, Holm-corrected over all "
            f"{summary.n_comparisons} comparisons of the table, {alpha}).")
    lines.append(
        "Bold: the best mean of the column and every entry not significantly worse than it (paired t-test "
        f"against the column's best, Holm-corrected within the column, {alpha}; an entry with fewer than 2 "
        "pairs cannot be shown worse).")
    lines.append(_rank_line(summary, s))
    if summary.reference is not None:
        ref = summary.reference
        spc = "the full training set" if str(ref.spc) == "all" else f"{ref.spc} images per class"
        lines.append(f"[{esc(ref.label)} X, {s['delta']} ours - X]: published value X for {spc} from "
                     f"{esc(ref.source)}.")
    return lines


def _rank_line(summary: Summary, s: dict[str, str]) -> str:
    n_cols, n_blocks = len(summary.columns), len(summary.blocks)
    if n_blocks == 0:
        return "Average ranks: no column in which every method has a result."
    text = f"Avg. rank (1 = best) over the {n_blocks} of {n_cols} columns in which every method has a result. "
    f = summary.friedman
    if f.statistic is None:
        text += f"{f.note}."
    else:
        text += f"Friedman {s['chi2']} = {f.statistic:.2f} (k = {f.k}, N = {f.n_blocks}), p = {_p(f.p)}."
    if summary.cd is not None:
        text += (f" Nemenyi critical difference CD = {summary.cd:.2f} ({s['alpha']} = {summary.alpha:g}): average "
                 "ranks closer than CD are not significantly different (a post-hoc test, to be read where the "
                 "Friedman test rejects).")
    return text


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in free text (names, sources)."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(c, c) for c in text)


def _has_ranks(summary: Summary) -> bool:
    return len(summary.blocks) > 0


# --------------------------------------------------------------------------- renderers

def to_markdown(summary: Summary, title: str | None = None) -> str:
    """A Markdown table (methods x columns, plus the average rank) followed by its legend lines."""
    tab = grid(summary, "md")
    header = ["method"] + [column_header(summary, d, s) for d, s in summary.columns]
    if _has_ranks(summary):
        header.append("avg. rank")
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, row in zip(tab.index, tab.values.tolist(), strict=True):
        cells = [_label(summary, method), *row]
        if _has_ranks(summary):
            cells.append(f"{summary.avg_ranks[method]:.2f}")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    for line in legend(summary, "md"):
        lines += [line, ""]
    return "\n".join(lines)


def default_caption(summary: Summary) -> str:
    return (f"{summary.metric_name[:1].upper()}{summary.metric_name[1:]} (\\%) of each method trained from "
            "scratch, per dataset and number of training images per class.")


def to_latex(summary: Summary, name: str, caption: str | None = None) -> str:
    """A booktabs table with \\label{tab:<name>}; the caption says what the numbers are and how they were computed.

    `caption` (LaTeX, already escaped) is the first sentence; the legend sentences follow it.
    Needs \\usepackage{booktabs} and \\usepackage{amssymb} (for the triangles).
    """
    tab = grid(summary, "tex")
    label = re.sub(r"[^A-Za-z0-9:_-]", "-", name)
    ranked = _has_ranks(summary)
    # Datasets span their spc columns; consecutive columns of one dataset share a heading.
    spans: list[tuple[str, int]] = []
    for dataset, _ in summary.columns:
        if spans and spans[-1][0] == dataset:
            spans[-1] = (dataset, spans[-1][1] + 1)
        else:
            spans.append((dataset, 1))
    top, rules, start = ["Method"], [], 2
    for dataset, width in spans:
        top.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(_label(summary, dataset))}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    second = [""] + [latex_escape(spc_header(summary, d, s)) for d, s in summary.columns]
    if ranked:
        top.append("Avg.")
        second.append("rank")
    body = []
    for method, row in zip(tab.index, tab.values.tolist(), strict=True):
        cells = [latex_escape(_label(summary, method)), *row]
        if ranked:
            cells.append(f"{summary.avg_ranks[method]:.2f}")
        body.append(" & ".join(cells) + r" \\")
    text = " ".join([caption or default_caption(summary), *legend(summary, "tex")])
    return "\n".join([
        "% requires \\usepackage{booktabs} and \\usepackage{amssymb}",
        r"\begin{table*}[t]", r"\centering", r"\small",
        f"\\caption{{{text}}}", f"\\label{{tab:{label}}}",
        r"\begin{tabular}{l" + "l" * len(summary.columns) + ("r" if ranked else "") + "}",
        r"\toprule", " & ".join(top) + r" \\", "".join(rules), " & ".join(second) + r" \\", r"\midrule",
        *body, r"\bottomrule", r"\end{tabular}", r"\end{table*}", "",
    ])


def to_csv(summary: Summary) -> str:
    """The tidy summary, one row per (dataset, spc, method) run, every number at full precision."""
    return summary.cells.to_csv(index=False, float_format="%.6g")


def to_html(summary: Summary, title: str | None = None) -> str:
    """An HTML fragment (a <table> with caption, then the legend paragraphs) for the Snakemake report."""
    tab = grid(summary, "html")
    ranked = _has_ranks(summary)
    header = ["method"] + [column_header(summary, d, s) for d, s in summary.columns] + (["avg. rank"] if ranked else [])
    out = ['<div class="results-table">', '<table>']
    if title:
        out.append(f"<caption>{html.escape(title)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for method, row in zip(tab.index, tab.values.tolist(), strict=True):
        # Entries hold <strong> from the bold style; everything else in them is digits and fixed words.
        cells = [f"<th>{html.escape(_label(summary, method))}</th>", *(f"<td>{_html_entry(c)}</td>" for c in row)]
        if ranked:
            cells.append(f"<td>{summary.avg_ranks[method]:.2f}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    out += [f'<p class="legend">{html.escape(line)}</p>' for line in legend(summary, "html")]
    out.append("</div>")
    return "\n".join(out) + "\n"


def _html_entry(text: str) -> str:
    return html.escape(text).replace("&lt;strong&gt;", "<strong>").replace("&lt;/strong&gt;", "</strong>")


# Scoped to .results-table: the page is also embedded in the Snakemake report's own page.
HTML_STYLE = """
.results-table { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 14px;
  color: #1f2328; background: #fff; padding: 12px; }
.results-table table { border-collapse: collapse; border-top: 2px solid #1f2328; border-bottom: 2px solid #1f2328; }
.results-table caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0 8px; }
.results-table thead th { border-bottom: 1px solid #1f2328; }
.results-table th, .results-table td { padding: 5px 10px; text-align: left; vertical-align: top; white-space: nowrap; }
.results-table tbody tr:nth-child(even) { background: #f3f5f7; }
.results-table tbody th { font-weight: 600; }
.results-table p.legend { max-width: 62em; color: #414a53; font-size: 12.5px; line-height: 1.45; margin: 6px 0; }
"""


def html_page(fragment: str, title: str) -> str:
    """A standalone UTF-8 page around an HTML fragment (what the Snakemake report shows, and a browser opens)."""
    return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      f"<title>{html.escape(title)}</title>", f"<style>{HTML_STYLE}</style>", "</head>", "<body>",
                      fragment.rstrip("\n"), "</body>", "</html>", ""])


def write_tables(summary: Summary, prefix: Path, name: str, title: str | None = None,
                 caption: str | None = None) -> list[Path]:
    """Write <prefix>.md, .tex, .csv, .html (a standalone page) and, where a CD is defined, the CD diagram
    <prefix>_cd.png/.pdf."""
    from benchmark.stats import cd_diagram

    prefix = Path(prefix)
    paths = []
    for suffix, text in ((".md", to_markdown(summary, title)), (".tex", to_latex(summary, name, caption)),
                         (".csv", to_csv(summary)), (".html", html_page(to_html(summary, title), title or name))):
        path = prefix.with_name(prefix.name + suffix)
        write_atomic(path, text)
        paths.append(path)
    if summary.cd is not None and len(summary.avg_ranks) >= 2:
        title_cd = f"Average rank over {len(summary.blocks)} columns (1 = best); bars: not significantly different"
        paths += cd_diagram(summary.avg_ranks, summary.cd, prefix.with_name(prefix.name + "_cd"), title_cd,
                            summary.labels)
    return paths

