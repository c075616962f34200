"""Statistics a reviewer can check: t intervals, paired t-tests, Holm, ranks, Friedman, Nemenyi CD.

Every function is plain and works on accuracies in percent, one value per run (a run is one
training-subset draw `split` and one initialisation `seed`). Two runs of different methods with
the same (dataset, spc, split, seed) trained on the same images, so methods are compared with
paired tests over those pairs.

Sources: Student's t interval and paired t-test (any statistics text; scipy.stats.t,
scipy.stats.ttest_rel); Holm, "A simple sequentially rejective multiple test procedure",
Scand. J. Statist. 6 (1979); Demšar, "Statistical Comparisons of Classifiers over Multiple Data
Sets", JMLR 7 (2006) for average ranks, the Friedman test, the Nemenyi critical difference and
the critical-difference diagram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps


@dataclass(frozen=True)
class Description:
    """Mean, sample sd (ddof 1), n and the t confidence interval of the mean; sd NaN, ci None with n < 2."""

    mean: float
    sd: float
    n: int
    ci: tuple[float, float] | None


def describe(values: Sequence[float], confidence: float = 0.95) -> Description:
    """mean = sum x / n, sd = sqrt(sum (x - mean)^2 / (n - 1)), CI = mean ± t_{(1+c)/2, n-1} sd / sqrt(n).

    NaN values are dropped (a missing run has no value). With n = 1 the sd and the interval are
    undefined (NaN and None), never 0; with n = 0 the mean is NaN as well.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Description(math.nan, math.nan, 0, None)
    mean = float(x.mean())
    if n < 2:
        return Description(mean, math.nan, 1, None)
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Description(mean, sd, n, (mean - half, mean + half))


@dataclass(frozen=True)
class Paired:
    """Paired comparison of a against b: statistics of d = a - b over the matched runs."""

    mean_diff: float
    sd: float
    n: int
    t: float | None
    p: float | None


def paired_test(a: pd.Series, b: pd.Series) -> Paired:
    """Paired t-test of a - b over the runs both have: t = mean(d) / (sd(d) / sqrt(n)), two-sided p.

    `a` and `b` are indexed by the run key, e.g. (split, seed) tuples or "split/seed" strings; the
    runs are matched by that index, never by position, and a run where either value is NaN is left out. With n < 2
    pairs there is no test (t and p None). When every difference is exactly 0 there is no evidence
    either way and scipy's NaN p becomes None; equal non-zero differences give t = ±inf, p = 0
    (scipy.stats.ttest_rel's answer).
    """
    if not (a.index.is_unique and b.index.is_unique):
        raise ValueError("paired_test needs one value per run key; the index has duplicates")
    if not a.index.equals(b.index):
        a, b = a.align(b, join="inner")
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    diff = x - y
    n = len(diff)
    if n == 0:
        return Paired(math.nan, math.nan, 0, None, None)
    if n < 2:
        return Paired(float(diff[0]), math.nan, 1, None, None)
    result = sps.ttest_rel(x, y)
    t, p = float(result.statistic), float(result.pvalue)
    if math.isnan(p):
        return Paired(float(diff.mean()), float(diff.std(ddof=1)), n, None, None)
    return Paired(float(diff.mean()), float(diff.std(ddof=1)), n, t, p)


def holm(pvalues: Sequence[float | None]) -> np.ndarray:
    """Holm step-down adjusted p-values (Holm 1979).

    With the m non-NaN p-values sorted ascending, p_(1) <= ... <= p_(m):
    adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j)). Rejecting where adj < alpha controls the
    family-wise error rate at alpha. NaN (or None) entries are not tests: they stay NaN and do not
    count in m.
    """
    p = np.array([math.nan if v is None else v for v in pvalues], dtype=float)
    out = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Rank of every method (column) within every block (row): highest score = rank 1, ties averaged."""
    return scores.rank(axis=1, ascending=False, method="average")


def average_ranks(scores: pd.DataFrame) -> pd.Series:
    """Mean rank per method over the blocks (rows) where every method has a score (Demšar 2006, Sec. 3.2.2).

    Blocks with a missing score are left out, since a rank among fewer methods is not comparable.
    """
    complete = scores.dropna(axis=0, how="any")
    return ranks(complete).mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    """Friedman test over N blocks and k methods; statistic and p None where the test is not defined."""

    statistic: float | None
    p: float | None
    k: int
    n_blocks: int
    note: str


def friedman(scores: pd.DataFrame) -> Friedman:
    """Friedman chi-square test that all methods (columns) have the same average rank over the blocks (rows).

    chi2_F = 12 N / (k (k + 1)) [sum_j R_j^2 - k (k + 1)^2 / 4] with the tie correction of
    scipy.stats.friedmanchisquare (Demšar 2006, Sec. 3.2.2). Only complete blocks are used. The
    test needs k >= 3 methods (with 2 use the paired test) and N >= 2 blocks (one block has no
    spread to test); otherwise, or when every block is an all-way tie, statistic and p are None
    and `note` says why.
    """
    complete = scores.dropna(axis=0, how="any")
    n, k = complete.shape
    if k < 3:
        return Friedman(None, None, k, n, f"Friedman test needs at least 3 methods (have {k})")
    if n < 2:
        return Friedman(None, None, k, n, f"Friedman test needs at least 2 complete blocks (have {n})")
    if (complete.nunique(axis=1) == 1).all():
        return Friedman(None, None, k, n, "Friedman test undefined: every method ties in every block")
    result = sps.friedmanchisquare(*(complete[c].to_numpy(dtype=float) for c in complete.columns))
    return Friedman(float(result.statistic), float(result.pvalue), k, n, "")


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test: the studentized range quantile for k groups, infinite df, over sqrt(2).

    Demšar 2006, Table 5a: k = 2..10 at alpha 0.05 gives 1.960, 2.343, 2.569, 2.728, 2.850,
    2.949, 3.031, 3.102, 3.164.
    """
    if k < 2:
        raise ValueError(f"the Nemenyi test compares at least 2 methods (got {k})")
    return float(sps.studentized_range.ppf(1.0 - alpha, k, math.inf)) / math.sqrt(2.0)


def critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference CD = q_alpha sqrt(k (k + 1) / (6 N)) (Demšar 2006, Sec. 3.2.2).

    Two methods whose average ranks over N blocks differ by at least CD differ significantly.
    """
    if n_blocks < 1:
        raise ValueError("the critical difference needs at least one block")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def cd_groups(avg_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal runs of methods (sorted by rank) whose ranks all differ by less than CD, two or more methods each.

    These are the bars of Demšar's diagram: methods joined by a bar are not significantly different.
    """
    ordered = avg_ranks.sort_values(kind="stable")
    names, values = list(ordered.index), ordered.to_numpy(dtype=float)
    groups: list[list[str]] = []
    last_end = -1
    for i in range(len(values)):
        j = i
        while j + 1 < len(values) and values[j + 1] - values[i] < cd:
            j += 1
        # A run ending where the previous one ended is contained in it.
        if j > i and j > last_end:
            groups.append(names[i:j + 1])
            last_end = j
    return groups


def cd_diagram(avg_ranks: pd.Series, cd: float, prefix: Path, title: str | None = None,
               labels: dict[str, str] | None = None) -> list[Path]:
    """Write Demšar's critical-difference diagram as <prefix>.png and <prefix>.pdf; return the paths.

    The axis is the average rank (1 = best, on the left); each method hangs off its rank with its
    name and rank, the better half labelled on the left, the rest on the right; a bar of length
    CD sits above the axis; thick lines join groups of methods whose ranks differ by less than CD.
    """
    import matplotlib

    from benchmark.figures import save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    ordered = avg_ranks.sort_values(kind="stable")
    k = len(ordered)
    groups = cd_groups(ordered, cd)
    half = (k + 1) // 2
    lo, hi = 1, max(k, 2)
    height = 1.2 + 0.28 * (half + len(groups))
    fig, ax = plt.subplots(figsize=(7.0, height), dpi=150)
    ax.set_xlim(lo - 0.9, hi + 0.9)
    ax.set_ylim(-half - 0.25 * len(groups) - 0.4, 1.4)
    ax.axis("off")
    ax.plot([lo, hi], [0, 0], color="black", lw=1)
    for tick in range(lo, hi + 1):
        ax.plot([tick, tick], [0, 0.12], color="black", lw=1)
        ax.text(tick, 0.2, str(tick), ha="center", va="bottom", fontsize=8)
    ax.plot([lo, lo + cd], [0.9, 0.9], color="black", lw=1.5)
    for end in (lo, lo + cd):
        ax.plot([end, end], [0.82, 0.98], color="black", lw=1.5)
    ax.text(lo + cd / 2, 1.02, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, (name, rank) in enumerate(ordered.items()):
        text = f"{labels.get(name, name)} ({rank:.2f})"
        if i < half:
            y, x_end, ha = -(i + 1) - 0.25 * len(groups), lo - 0.8, "left"
        else:
            y, x_end, ha = -(k - i) - 0.25 * len(groups), hi + 0.8, "right"
        ax.plot([rank, rank, x_end], [0, y, y], color="black", lw=0.8)
        ax.text(x_end, y + 0.05, text, ha=ha, va="bottom", fontsize=8)
    for g, group in enumerate(groups):
        y = -0.25 * (g + 1)
        ax.plot([ordered[group[0]] - 0.05, ordered[group[-1]] + 0.05], [y, y], color="black", lw=3,
                solid_capstyle="butt")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, prefix)
