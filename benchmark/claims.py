"""A claim of the paper checked on a grid's cells, written as a document by the workflow (rule `claim`).

The paper's claim (Barz & Denzler 2020, Figure 2): the cosine loss beats softmax cross-entropy by a wide
margin at few samples per class, and the gap narrows as samples grow. For each dataset and samples per
class of the grid: the mean of each method, the paired difference `method - baseline` over runs that
share their training subset and seed (split, seed), its 95% confidence interval, the paired t-test's p
and Holm's correction over every comparison of the document. The verdict per size and the summary are
computed from those numbers, whichever way they fall; nothing in the text is written by hand.
"""

from __future__ import annotations

import platform
from collections import Counter

import numpy as np
import pandas as pd

from benchmark.stats import describe, holm, paired_test


def _runs(frame: pd.DataFrame, dataset: str, spc: str, method: str) -> pd.Series:
    rows = frame[(frame.dataset == dataset) & (frame.spc == spc) & (frame.method == method)
                 & (frame.status != "missing")]
    return pd.Series(rows.accuracy.to_numpy(), index=[f"{s}/{e}" for s, e in zip(rows.split, rows.seed, strict=True)])


def comparisons(frame: pd.DataFrame, method: str, baseline: str, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (dataset, spc): means, the paired difference with its CI, p and Holm-corrected p."""
    rows = []
    for (dataset, spc), _ in frame.groupby(["dataset", "spc"], sort=False):
        a, b = _runs(frame, dataset, spc, method), _runs(frame, dataset, spc, baseline)
        test = paired_test(a, b)
        common = a.index.intersection(b.index)
        diff = describe((a[common] - b[common]).to_numpy())
        rows.append({"dataset": dataset, "spc": spc, "per_class": frame[(frame.dataset == dataset) &
                                                                          (frame.spc == spc)].per_class.mean(),
                     "method_mean": a.mean(), "baseline_mean": b.mean(), "diff": test.mean_diff, "n": test.n,
                     "ci_low": diff.ci[0] if diff.ci else np.nan, "ci_high": diff.ci[1] if diff.ci else np.nan,
                     "wins": int((a[common] > b[common]).sum()), "p": np.nan if test.p is None else test.p})
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out.p.to_numpy())
    out["verdict"] = [("ahead" if r.diff > 0 else "behind") if r.p_holm < alpha else "no significant difference"
                      for r in out.itertuples()]
    return out


def machine(records: list[dict]) -> str:
    """The machine class the cells ran on, from their records' provenance and runtime."""
    devices = Counter(r["provenance"].get("device_name", "?") for r in records)
    precision = Counter(r.get("runtime", {}).get("precision", "?") for r in records)
    torch = Counter(r["provenance"].get("packages", {}).get("torch", "?") for r in records)
    return (f"{', '.join(devices)} ({platform.system()}), precision {', '.join(precision)}, torch "
            f"{', '.join(torch)}; {len(records)} cells")


def document(config: dict, frame: pd.DataFrame, records: list[dict], few: int) -> str:
    claim = config["claim"]
    method, baseline = claim["method"], claim["baseline"]
    table = comparisons(frame, method, baseline)
    lines = [f"# The paper's claim, checked on grid `{config['grid']}`", "",
             "Claim (Barz & Denzler, WACV 2020, Figure 2): the cosine loss beats softmax cross-entropy by a wide "
             "margin at few samples per class, and the gap narrows as the number of samples grows.", "",
             f"Written by `snakemake --configfile {claim.get('config', 'config/' + config['grid'] + '.yaml')}` "
             f"(rule `claim`, benchmark/claims.py) from the grid's cells: {method} against {baseline}, "
             f"{len(config['splits'])} training-subset draws x {len(config['seeds'])} seeds per cell, "
             + ("hyperparameters tuned per method and size on validation splits (the tuned protocol)."
                if "tune" in config else "hyperparameters from the config (not tuned)."),
             f"Machine: {machine(records)}.", "",
             f"Paired difference {method} - {baseline} in test accuracy points over runs sharing their training "
             "subset and seed: mean, 95% t interval, runs ahead / pairs, two-sided paired t-test p and Holm's "
             f"correction over the {int(table.p.notna().sum())} comparisons below (alpha 0.05).", ""]
    for dataset, part in table.groupby("dataset", sort=False):
        lines += [f"## {dataset}", "", f"| samples per class | {baseline} | {method} | difference | 95% CI | ahead | "
                  "p | p (Holm) | verdict |", "|---|---|---|---|---|---|---|---|---|"]
        for r in part.itertuples():
            size = f"all (~{r.per_class:.0f})" if r.spc == "all" else r.spc
            ci = f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]" if np.isfinite(r.ci_low) else "-"
            p = "-" if np.isnan(r.p) else f"{r.p:.3f}"
            ph = "-" if np.isnan(r.p_holm) else f"{r.p_holm:.3f}"
            lines.append(f"| {size} | {r.baseline_mean:.1f} | {r.method_mean:.1f} | {r.diff:+.1f} | {ci} | "
                         f"{r.wins}/{r.n} | {p} | {ph} | {r.verdict} |")
        lines += ["", summary(part, method, baseline, few), ""]
    return "\n".join(lines) + "\n"


def summary(part: pd.DataFrame, method: str, baseline: str, few: int) -> str:
    """The reading of one dataset's rows, computed: ahead at few samples? does the gap narrow?"""
    small = part[part.spc.apply(lambda s: s != "all" and int(s) <= few)]
    large = part[~part.index.isin(small.index)]
    ahead = int((small["diff"] > 0).sum())
    significant = int((small.verdict == "ahead").sum())
    behind = int((part.verdict == "behind").sum())
    gap_small = small["diff"].mean() if len(small) else np.nan
    gap_large = large["diff"].mean() if len(large) else np.nan
    narrows = ("closes and reverses" if gap_small > 0 > gap_large else "narrows") if gap_small > gap_large \
        else "does not narrow"
    return (f"Reading: at {few} or fewer samples per class {method} is ahead of {baseline} on average at {ahead} of "
            f"{len(small)} sizes ({significant} significantly after correction; mean difference {gap_small:+.1f} "
            f"points); at more samples the mean difference is {gap_large:+.1f}, so the gap {narrows}. "
            f"{baseline} is significantly ahead at {behind} size(s). "
            + ("The claim's direction holds here." if ahead > len(small) / 2 and gap_small > gap_large
               else "The claim's direction does not hold here."))
