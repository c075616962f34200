"""benchmark.tables on a constructed grid whose every number, marker and bold entry is worked out by hand.

Grid (accuracy %, split 0, seeds 0, 1, 2; "-" = not run, None = missing, (x, "div") = diverged):

    column      softmax_ce    better              worse          noisy
    d1 5/class  50, 52, 54    60, 63, 66          40, 41, 42     55, 47, 55
    d1 all      40, 60, 80    41, 61.2, 80.9      39, 58, 79     45, None, None
    d2 5/class  all missing   70, (1, div), 72    -              -

Paired t-tests with 3 pairs have 2 df, where the t CDF is 1/2 + t / (2 sqrt(2 + t^2)): the two-sided
p is 1 - |t| / sqrt(2 + t^2).

Against the baseline softmax_ce (d = method - baseline):
    d1 5  better  d = 10, 11, 12      mean 11,      sd 1,       t = 19.053,  p = 0.002741
    d1 5  worse   d = -10, -11, -12   mean -11,     sd 1,       t = -19.053, p = 0.002741
    d1 5  noisy   d = 5, -5, 1        mean 0.333,   sd 5.033,   t = 0.1147,  p = 0.9191
    d1 all better d = 1, 1.2, 0.9     mean 1.0333,  sd 0.15275, t = 11.717,  p = 0.007224
    d1 all worse  d = -1, -2, -1      mean -1.3333, sd 0.57735, t = -4,      p = 1 - 4/sqrt(18) = 0.05719
    (d1 all noisy: 1 pair, no test; d2: the baseline has no result, no test.)
Holm over these m = 5 tests: sorted 0.002741 * 5 = 0.01371, 0.002741 * 4 -> 0.01371,
0.007224 * 3 = 0.02167, 0.05719 * 2 = 0.1144, 0.9191 * 1 = 0.9191.
So ▲ d1-5 better, ▼ d1-5 worse, ▲ d1-all better; d1-all worse (0.114) has no marker. Holm within
the d1-all column alone would give better 0.0144: the table-wide family is what the test checks.

Bold (best of the column and every entry not significantly worse, Holm within the column):
    d1 5:   best better (63). vs better: softmax_ce d = -10, -11, -12 p 0.002741; worse d = -20, -22, -24
            (mean -22, sd 2, t = -19.053) p 0.002741; noisy d = -5, -16, -11 (mean -10.667, sd 5.508,
            t = -3.354, p = 1 - 3.354 / sqrt(13.25) = 0.0786). Holm: 0.00822, 0.00822, 0.0786
            -> bold: better, noisy.
    d1 all: best better (61.033). softmax_ce d = -1, -1.2, -0.9 p 0.007224; worse d = -2, -3.2, -1.9
            (mean -2.367, sd 0.7234, t = -5.666) p 0.0297; noisy 1 pair: untestable. Holm: 0.01445,
            0.0297 -> bold: better, noisy (cannot be shown worse).
    d2 5:   better is the only entry with a result -> bold.

Ranks in the blocks where every method has a mean (d1 5 and d1 all; d2 lacks worse and noisy):
    d1 5:   better 1, noisy (52.33) 2, softmax_ce (52) 3, worse 4
    d1 all: better 1, softmax_ce (60) 2, worse (58.67) 3, noisy (45) 4
    average: softmax_ce 2.5, better 1, worse 3.5, noisy 3.
Friedman: 12 N / (k (k + 1)) (sum Rbar^2 - k (k + 1)^2 / 4) = 1.2 (28.5 - 25) = 4.2 with 3 df.
Nemenyi CD (k = 4, N = 2): 2.569 sqrt(20 / 12) = 3.3166.
"""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from fixtures.pdf_fonts import assert_no_type3
from scipy import stats as sps

from benchmark.tables import (
    COLUMNS,
    Reference,
    entry,
    grid,
    summarise,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
    write_tables,
)

METHODS = ["softmax_ce", "better", "worse", "noisy"]
GRID_COLUMNS = [("d1", "5"), ("d1", "all"), ("d2", "5")]
DIV = "div"
RESULTS = {
    ("d1", "5"): {"softmax_ce": [50, 52, 54], "better": [60, 63, 66], "worse": [40, 41, 42], "noisy": [55, 47, 55]},
    ("d1", "all"): {"softmax_ce": [40, 60, 80], "better": [41, 61.2, 80.9], "worse": [39, 58, 79],
                    "noisy": [45, None, None]},
    ("d2", "5"): {"softmax_ce": [None, None, None], "better": [70, (1, DIV), 72]},
}


def make_frame(results: dict = RESULTS) -> pd.DataFrame:
    rows = []
    for (dataset, spc), methods in results.items():
        for method, values in methods.items():
            for seed, value in enumerate(values):
                status, acc = "ok", value
                if value is None:
                    status, acc = "missing", math.nan
                elif isinstance(value, tuple):
                    status, acc = "diverged", value[0]
                rows.append({"dataset": dataset, "method": method, "spc": spc, "split": 0, "seed": seed,
                             "status": status, "accuracy": float(acc),
                             "per_class": 5.0 if spc == "5" else 29.5})
    return pd.DataFrame(rows)


def p2(t: float) -> float:
    """Two-sided p of a t statistic with 2 df (closed form)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


@pytest.fixture(scope="module")
def summary():
    return summarise(make_frame(), METHODS, GRID_COLUMNS,
                     reference=Reference({("better", "d1"): 65.0, ("softmax_ce", "d2"): 50.0}, "all",
                                         "Barz & Denzler, WACV 2020, Table 2"))


def cell(summary, dataset, spc, method) -> pd.Series:
    c = summary.cells
    row = c[(c.dataset == dataset) & (c.spc == spc) & (c.method == method)]
    assert len(row) == 1
    return row.iloc[0]


def test_description_per_cell_by_hand(summary):
    # better d1 5: 60, 63, 66 -> mean 63, sd 3, half-width t_{0.975,2} * 3 / sqrt(3) = 4.30265 * 1.73205 = 7.4524.
    b = cell(summary, "d1", "5", "better")
    assert (b["mean"], b.sd, b.n) == (63.0, pytest.approx(3.0), 3)
    assert (b.ci_low, b.ci_high) == (pytest.approx(55.5476, abs=1e-3), pytest.approx(70.4524, abs=1e-3))
    # noisy d1 all: one run, two missing.
    n = cell(summary, "d1", "all", "noisy")
    assert (n["mean"], n.n, n.missing, n.runs) == (45.0, 1, 2, 3) and math.isnan(n.sd) and math.isnan(n.ci_low)
    # diverged run counts with its accuracy: (70 + 1 + 72) / 3 = 47.667, and is named.
    d = cell(summary, "d2", "5", "better")
    assert d["mean"] == pytest.approx(143 / 3) and d.diverged == 1 and d.diverged_runs == "split 0 seed 1"
    assert cell(summary, "d2", "5", "softmax_ce").n == 0
    # not run: no tidy row at all.
    assert summary.cells[(summary.cells.dataset == "d2") & (summary.cells.method == "worse")].empty


def test_baseline_comparisons_and_table_wide_holm(summary):
    t_better5 = 11 / (1 / math.sqrt(3))
    t_better_all = (31 / 30) / (math.sqrt(0.07 / 3) / math.sqrt(3))
    expected_p = {("d1", "5", "better"): p2(t_better5), ("d1", "5", "worse"): p2(t_better5),
                  ("d1", "5", "noisy"): 0.9191, ("d1", "all", "better"): p2(t_better_all),
                  ("d1", "all", "worse"): 1 - 4 / math.sqrt(18)}
    for (dataset, spc, method), p in expected_p.items():
        assert cell(summary, dataset, spc, method).p == pytest.approx(p, abs=1e-4), (dataset, spc, method)
    assert cell(summary, "d1", "5", "better").diff_to_baseline == pytest.approx(11.0)
    assert cell(summary, "d1", "5", "worse").diff_to_baseline == pytest.approx(-11.0)
    # Holm over all five comparisons of the table (not per column).
    assert summary.n_comparisons == 5
    assert cell(summary, "d1", "5", "better").p_holm == pytest.approx(5 * p2(t_better5))
    assert cell(summary, "d1", "all", "better").p_holm == pytest.approx(3 * p2(t_better_all))
    assert cell(summary, "d1", "all", "worse").p_holm == pytest.approx(2 * (1 - 4 / math.sqrt(18)))
    assert cell(summary, "d1", "5", "noisy").p_holm == pytest.approx(0.9191, abs=1e-4)
    for method in ("noisy",):  # one pair: no test
        assert math.isnan(cell(summary, "d1", "all", method).p)
    assert math.isnan(cell(summary, "d2", "5", "better").p)  # baseline has no result


def test_markers_sit_on_the_right_entries(summary):
    markers = {(r.dataset, r.spc, r.method): r.marker for r in summary.cells.itertuples()}
    assert {k: v for k, v in markers.items() if v} == {
        ("d1", "5", "better"): "better", ("d1", "5", "worse"): "worse", ("d1", "all", "better"): "better"}


def test_bold_is_best_and_not_significantly_worse(summary):
    bold = {(r.dataset, r.spc, r.method) for r in summary.cells.itertuples() if r.bold}
    assert bold == {("d1", "5", "better"), ("d1", "5", "noisy"), ("d1", "all", "better"), ("d1", "all", "noisy"),
                    ("d2", "5", "better")}
    # noisy vs better in d1 5: d = -5, -16, -11, t = -3.354, p = 0.0786; Holm (3 tests, largest p) keeps it.
    n = cell(summary, "d1", "5", "noisy")
    assert n.p_vs_best == pytest.approx(0.0786, abs=1e-3) and n.p_vs_best_holm == pytest.approx(0.0786, abs=1e-3)
    # worse vs better in d1 all: t = -5.666, p = 0.0297, Holm (2 tests, largest) 0.0297 < 0.05: not bold.
    w = cell(summary, "d1", "all", "worse")
    assert w.p_vs_best_holm == pytest.approx(p2(-2.3667 / (math.sqrt(1.57 / 3) / math.sqrt(3))), abs=1e-3)
    assert not w.bold


def test_pairing_by_split_and_seed_decides_the_marker():
    # d1 all better beats softmax_ce by about one point on every seed, while the seeds differ by 20
    # points: only the paired test sees it. Relabelling better's seeds breaks the pairs.
    frame = make_frame()
    shuffled = frame.sample(frac=1.0, random_state=0)  # row order must not matter
    assert cell(summarise(shuffled, METHODS, GRID_COLUMNS), "d1", "all", "better").marker == "better"
    wrong = frame.copy()
    mask = (wrong.dataset == "d1") & (wrong.spc == "all") & (wrong.method == "better")
    wrong.loc[mask, "seed"] = [1, 2, 0]
    mispaired = cell(summarise(wrong, METHODS, GRID_COLUMNS), "d1", "all", "better")
    assert mispaired.marker == "" and mispaired.p > 0.5


def test_ranks_friedman_and_cd(summary):
    assert summary.blocks == [("d1", "5"), ("d1", "all")]
    assert summary.avg_ranks.to_dict() == {"softmax_ce": 2.5, "better": 1.0, "worse": 3.5, "noisy": 3.0}
    assert summary.friedman.statistic == pytest.approx(4.2)
    assert summary.friedman.p == pytest.approx(sps.chi2.sf(4.2, 3))
    assert summary.cd == pytest.approx(2.569 * math.sqrt(20 / 12), abs=1e-3)
    ranks = {(r.spc, r.method): r.rank for r in summary.cells.itertuples() if r.dataset == "d1"}
    assert ranks == {("5", "better"): 1, ("5", "noisy"): 2, ("5", "softmax_ce"): 3, ("5", "worse"): 4,
                     ("all", "better"): 1, ("all", "softmax_ce"): 2, ("all", "worse"): 3, ("all", "noisy"): 4}


def test_friedman_with_two_methods_is_not_computed():
    s = summarise(make_frame(), ["softmax_ce", "better"], GRID_COLUMNS[:2])
    assert s.friedman.p is None and "3 methods" in s.friedman.note
    assert "Friedman test needs at least 3 methods" in to_markdown(s)


def test_entries_text(summary):
    tab = grid(summary, "text")
    # softmax_ce d1 5: mean 52, sd 2, half 4.30265 * 2 / sqrt(3) = 4.968 -> [47.0, 57.0].
    assert tab.loc["softmax_ce", ("d1", "5")] == "52.0 ± 2.0 [47.0, 57.0] n=3"
    assert tab.loc["better", ("d1", "5")] == "63.0 ± 3.0 [55.5, 70.5] n=3 ▲"
    # worse: mean 41, sd 1, half 2.484 -> [38.5, 43.5].
    assert tab.loc["worse", ("d1", "5")] == "41.0 ± 1.0 [38.5, 43.5] n=3 ▼"
    # noisy: mean 52.333, sd sqrt(64/3) = 4.619, half 11.474 -> [40.9, 63.8].
    assert tab.loc["noisy", ("d1", "5")] == "52.3 ± 4.6 [40.9, 63.8] n=3"
    # mean 61.033 vs the published 65.0: Δ -4.0.
    assert tab.loc["better", ("d1", "all")].endswith("n=3 ▲ [paper 65.0, Δ -4.0]")
    assert tab.loc["noisy", ("d1", "all")] == "45.0 n=1 (2 missing)"
    assert tab.loc["softmax_ce", ("d2", "5")] == "missing"  # the reference is for spc "all" only
    assert tab.loc["better", ("d2", "5")].endswith("n=3 (1 diverged: split 0 seed 1)")
    assert tab.loc["worse", ("d2", "5")] == "-" and tab.loc["noisy", ("d2", "5")] == "-"


def test_single_run_never_shows_zero_spread(summary):
    text = entry(cell(summary, "d1", "all", "noisy"), "md")
    assert text == "**45.0** n=1 (2 missing)"
    assert "±" not in text and "[" not in text and "0.0" not in text


def test_markdown_table_and_legend(summary):
    md = to_markdown(summary, "Test accuracy")
    lines = md.splitlines()
    assert lines[0] == "### Test accuracy"
    assert lines[2] == "| method | d1 5/class | d1 all (30/class) | d2 5/class | avg. rank |"
    row = next(line for line in lines if line.startswith("| better |"))
    # better d1 all: 41, 61.2, 80.9 -> mean 61.033, sd sqrt(796.04 / 2) = 19.95, half 4.30265 * 19.95 / sqrt(3) = 49.56.
    assert row == ("| better | **63.0 ± 3.0** [55.5, 70.5] n=3 ▲ | **61.0 ± 20.0** [11.5, 110.6] n=3 ▲ "
                   "[paper 65.0, Δ -4.0] | **47.7 ± 40.4** [-52.8, 148.1] n=3 (1 diverged: split 0 seed 1) | 1.00 |")
    assert "Holm-corrected over all 5 comparisons" in md
    assert "Friedman χ² = 4.20 (k = 4, N = 2)" in md and "CD = 3.32" in md
    assert "[paper X, Δ ours - X]: published value X for the full training set from Barz & Denzler" in md


def test_latex_has_booktabs_label_caption_and_no_unicode(summary):
    tex = to_latex(summary, "toy results")
    for needed in (r"\toprule", r"\midrule", r"\bottomrule", r"\label{tab:toy-results}", r"\caption{",
                   r"\multicolumn{2}{c}{d1}", r"\cmidrule(lr){2-3}", r"softmax\_ce"):
        assert needed in tex, needed
    assert tex.isascii()  # ±, ▲, Δ all written as LaTeX commands
    caption = tex[tex.index(r"\caption{"):tex.index(r"\label")]
    for words in ("Test accuracy (\\%)", "sample standard deviation", "95\\% t confidence interval",
                  "paired t-test", "Holm-corrected", "$\\blacktriangle$", "Friedman", "Barz \\& Denzler"):
        assert words in caption, words
    assert r"\textbf{63.0 $\pm$ 3.0} [55.5, 70.5] n=3 $\blacktriangle$" in tex
    assert tex.count(r" \\") == 2 + len(METHODS)  # two header rows and one per method


def test_csv_has_every_number(summary):
    back = pd.read_csv(io.StringIO(to_csv(summary)))
    assert list(back.columns) == COLUMNS
    assert len(back) == 10  # 4 + 4 + 2 run entries
    row = back[(back.dataset == "d1") & (back.spc == "5") & (back.method == "better")].iloc[0]
    assert (row["mean"], row.sd, row.n, row.significant, row.bold, row["rank"]) == (63.0, 3.0, 3, True, True, 1.0)
    assert row.p_holm == pytest.approx(0.01371, abs=1e-4) and row.diff_to_baseline == pytest.approx(11.0)
    assert row.avg_rank == 1.0


def test_html_fragment_escapes_labels(summary):
    s = summarise(make_frame(), METHODS, GRID_COLUMNS, labels={"noisy": "noisy <v2> & co"})
    out = to_html(s, "Accuracy")
    assert out.startswith('<div class="results-table">') and "<table>" in out and "<caption>Accuracy</caption>" in out
    assert "<th>noisy &lt;v2&gt; &amp; co</th>" in out
    assert "<td><strong>63.0 ± 3.0</strong> [55.5, 70.5] n=3 ▲</td>" in out
    assert out.count('<p class="legend">') == 4


def test_write_tables_writes_every_file(tmp_path, summary):
    paths = write_tables(summary, tmp_path / "toy", "toy")
    assert [p.name for p in paths] == ["toy.md", "toy.tex", "toy.csv", "toy.html", "toy_cd.png", "toy_cd.pdf"]
    assert all(p.stat().st_size > 100 for p in paths)
    assert_no_type3(tmp_path / "toy_cd.pdf")


def test_missing_columns_and_duplicate_runs_are_errors():
    with pytest.raises(ValueError, match="lacks the columns"):
        summarise(make_frame().drop(columns="split"))
    dup = pd.concat([make_frame(), make_frame().iloc[:1]])
    with pytest.raises(ValueError, match="more than one row"):
        summarise(dup)
    with pytest.raises(ValueError, match="baseline 'cosine'"):
        summarise(make_frame(), baseline="cosine")


def test_no_baseline_means_no_markers():
    s = summarise(make_frame(), METHODS, GRID_COLUMNS, baseline=None)
    assert (s.cells.marker == "").all() and s.cells.p.isna().all() and "▲" not in to_markdown(s)
