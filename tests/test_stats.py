"""benchmark.stats against hand computations, scipy and Demšar's (2006) tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fixtures.pdf_fonts import assert_no_type3
from scipy import stats as sps

from benchmark.stats import (
    average_ranks,
    cd_diagram,
    cd_groups,
    critical_difference,
    describe,
    friedman,
    holm,
    nemenyi_q,
    paired_test,
    ranks,
)


def _runs(values: list[float], seeds: list[int] | None = None, split: int = 0) -> pd.Series:
    seeds = list(range(len(values))) if seeds is None else seeds
    return pd.Series(values, index=pd.MultiIndex.from_tuples([(split, s) for s in seeds], names=["split", "seed"]))


# --------------------------------------------------------------------------- describe

def test_describe_three_values_by_hand():
    # 80, 85, 90: mean 85, sd = sqrt((25 + 0 + 25) / 2) = 5, se = 5 / sqrt(3) = 2.88675;
    # t_{0.975, 2} = 4.30265 (t table, 2 df), half-width = 4.30265 * 2.88675 = 12.4206.
    d = describe([80.0, 85.0, 90.0])
    assert (d.mean, d.sd, d.n) == (85.0, pytest.approx(5.0), 3)
    assert d.ci == pytest.approx((85.0 - 12.4206, 85.0 + 12.4206), abs=1e-3)


def test_describe_other_confidence_level():
    # 90 %: t_{0.95, 2} = 2.91999 (t table), half-width = 2.91999 * 2.88675 = 8.4293.
    assert describe([80.0, 85.0, 90.0], confidence=0.90).ci == pytest.approx((76.5707, 93.4293), abs=1e-3)


def test_describe_one_value_has_no_sd_and_no_interval():
    d = describe([71.5])
    assert d.mean == 71.5 and d.n == 1 and math.isnan(d.sd) and d.ci is None


def test_describe_drops_nan_and_handles_empty():
    assert describe([80.0, math.nan, 90.0]).n == 2
    d = describe([])
    assert d.n == 0 and math.isnan(d.mean) and d.ci is None


# --------------------------------------------------------------------------- paired t-test

A = _runs([80.0, 85.0, 90.0])
B = _runs([78.0, 84.0, 86.0])


def test_paired_test_by_hand():
    # d = 2, 1, 4: mean 7/3, sd = sqrt((1/9 + 16/9 + 25/9) / 2) = sqrt(7/3) = 1.52753,
    # t = (7/3) / (1.52753 / sqrt(3)) = 2.64575 (= sqrt(7)).
    # With 2 df the t CDF is 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(7)/3.
    r = paired_test(A, B)
    assert r.n == 3
    assert r.mean_diff == pytest.approx(7 / 3)
    assert r.sd == pytest.approx(math.sqrt(7 / 3))
    assert r.t == pytest.approx(math.sqrt(7))
    assert r.p == pytest.approx(1 - math.sqrt(7) / 3)
    assert paired_test(B, A).t == pytest.approx(-math.sqrt(7))  # the sign follows a - b


def test_paired_test_matches_runs_by_key_not_by_position():
    shuffled = B.iloc[[2, 0, 1]]
    assert paired_test(A, shuffled).p == pytest.approx(paired_test(A, B).p)


def test_paired_test_changes_when_seeds_are_relabelled():
    # The same values of B assigned to other seeds pair 80-84, 85-86, 90-78: d = -4, -1, 12.
    relabelled = _runs([78.0, 84.0, 86.0], seeds=[2, 0, 1])
    wrong = paired_test(A, relabelled)
    assert wrong.mean_diff == pytest.approx(7 / 3)  # same mean difference ...
    assert wrong.p != pytest.approx(paired_test(A, B).p, abs=1e-3)  # ... but another test
    assert wrong.sd == pytest.approx(np.std([-4, -1, 12], ddof=1))


def test_paired_test_uses_only_common_runs():
    a = _runs([80.0, 85.0, 90.0, 70.0], seeds=[0, 1, 2, 3])
    b = _runs([78.0, 84.0, 86.0, math.nan], seeds=[0, 1, 2, 3])
    extra = pd.concat([B, _runs([10.0], seeds=[9])])
    assert paired_test(a, b).n == 3 and paired_test(A, extra).n == 3
    assert paired_test(a, b).p == pytest.approx(1 - math.sqrt(7) / 3)


def test_paired_test_too_few_pairs_or_no_spread():
    one = paired_test(_runs([80.0]), _runs([70.0]))
    assert one.n == 1 and one.mean_diff == 10.0 and one.p is None and one.t is None
    assert paired_test(_runs([80.0]), _runs([70.0], seeds=[5])).n == 0
    zero = paired_test(A, A)
    assert zero.mean_diff == 0.0 and zero.p is None


def test_paired_test_rejects_duplicate_run_keys():
    with pytest.raises(ValueError, match="duplicates"):
        paired_test(_runs([1.0, 2.0], seeds=[0, 0]), _runs([1.0, 2.0]))


def test_paired_test_agrees_with_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(60, 5, 8), rng.normal(58, 5, 8)
    r = paired_test(_runs(list(x)), _runs(list(y)))
    ref = sps.ttest_rel(x, y)
    assert (r.t, r.p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


# --------------------------------------------------------------------------- Holm

def test_holm_worked_example():
    # p = 0.01, 0.04, 0.03, 0.005 (m = 4). Sorted: 0.005 * 4 = 0.02; 0.01 * 3 = 0.03;
    # 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> raised to 0.06 (step-down adjusted p never decrease).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_stays_monotone():
    # 0.3 * 3 = 0.9; 0.6 * 2 = 1.2 -> 1; 0.9 * 1 = 0.9 -> max(1, 0.9) = 1.
    assert holm([0.6, 0.3, 0.9]) == pytest.approx([1.0, 0.9, 1.0])


def test_holm_passes_nan_through_and_does_not_count_it():
    # Two real tests: 0.01 * 2 = 0.02, 0.04 * 1 = 0.04.
    out = holm([0.01, math.nan, 0.04, None])
    assert out[[0, 2]] == pytest.approx([0.02, 0.04]) and np.isnan(out[[1, 3]]).all()
    assert np.isnan(holm([math.nan])).all() and holm([]).size == 0


# --------------------------------------------------------------------------- ranks, Friedman, Nemenyi

def test_ranks_higher_is_better_and_ties_are_averaged():
    scores = pd.DataFrame([[90.0, 80.0, 80.0, 70.0]], columns=list("abcd"))
    assert ranks(scores).iloc[0].tolist() == [1.0, 2.5, 2.5, 4.0]


def test_average_ranks_skip_incomplete_blocks():
    scores = pd.DataFrame({"a": [90.0, 60.0, 50.0], "b": [80.0, 70.0, math.nan], "c": [70.0, 65.0, 40.0]})
    # Block 0: a 1, b 2, c 3. Block 1: b 1, c 2, a 3. Block 2 has no b and is left out.
    assert average_ranks(scores).tolist() == [2.0, 1.5, 2.5]


def test_friedman_by_hand():
    # Three blocks ranking a > b > c: R = 1, 2, 3; chi2 = 12 N / (k (k+1)) (sum R^2 - k (k+1)^2 / 4)
    # = 12 * 3 / 12 * (14 - 12) = 6; with k - 1 = 2 df the chi-square tail is exp(-6 / 2) = e^-3.
    scores = pd.DataFrame({"a": [90.0, 80.0, 70.0], "b": [85.0, 75.0, 65.0], "c": [60.0, 50.0, 40.0]})
    f = friedman(scores)
    assert (f.statistic, f.p, f.k, f.n_blocks) == (pytest.approx(6.0), pytest.approx(math.exp(-3)), 3, 3)


def test_friedman_agrees_with_scipy_with_ties():
    rng = np.random.default_rng(7)
    scores = pd.DataFrame(rng.integers(50, 56, size=(6, 4)).astype(float), columns=list("abcd"))
    ref = sps.friedmanchisquare(*(scores[c] for c in scores))
    f = friedman(scores)
    assert (f.statistic, f.p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_friedman_not_defined_cases():
    two = friedman(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 3.0, 1.0]}))
    assert two.statistic is None and two.p is None and "3 methods" in two.note
    one = friedman(pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}))
    assert one.p is None and "2 complete blocks" in one.note
    ties = friedman(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [1.0, 2.0]}))
    assert ties.p is None and "tie" in ties.note


@pytest.mark.parametrize(("k", "q05", "q10"), [
    # Demšar 2006, Table 5: critical values of the two-tailed Nemenyi test.
    (2, 1.960, 1.645), (3, 2.343, 2.052), (4, 2.569, 2.291), (5, 2.728, 2.459), (6, 2.850, 2.589),
    (7, 2.949, 2.693), (8, 3.031, 2.780), (9, 3.102, 2.855), (10, 3.164, 2.920),
])
def test_nemenyi_q_matches_demsar_table(k, q05, q10):
    assert nemenyi_q(k, 0.05) == pytest.approx(q05, abs=1e-3)
    assert nemenyi_q(k, 0.10) == pytest.approx(q10, abs=1e-3)


def test_critical_difference_demsar_example():
    # Demšar 2006, Sec. 3.2.2: four classifiers on 14 data sets, CD = 2.569 sqrt(4 * 5 / (6 * 14)) = 1.25.
    assert critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=1e-3)
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)
    # k = 5, N = 10: 2.728 * sqrt(30 / 60) = 1.929.
    assert critical_difference(5, 10) == pytest.approx(1.929, abs=1e-3)
    with pytest.raises(ValueError):
        critical_difference(1, 3)


def test_cd_groups_are_maximal_runs_closer_than_cd():
    r = pd.Series({"d": 3.2, "a": 1.0, "c": 2.9, "b": 1.5})
    # a-b differ by 0.5 < 1; b-c 1.4 >= 1; c-d 0.3 < 1.
    assert cd_groups(r, 1.0) == [["a", "b"], ["c", "d"]]
    # CD 1.6: a-b 0.5, a-c 1.9 -> [a, b]; b-c 1.4, b-d 1.7 -> [b, c]; c-d 0.3 -> [c, d]: overlapping groups.
    assert cd_groups(r, 1.6) == [["a", "b"], ["b", "c"], ["c", "d"]]
    # a 1.0, b 1.8, c 2.5 with CD 1.6: a..c (1.5 apart) is one group; b..c inside it is not repeated.
    assert cd_groups(pd.Series({"a": 1.0, "b": 1.8, "c": 2.5}), 1.6) == [["a", "b", "c"]]
    assert cd_groups(r, 0.1) == []


@pytest.mark.slow  # renders and saves PNG and PDF, and reads the PDF's fonts back
def test_cd_diagram_written_as_png_and_pdf_without_type3_fonts(tmp_path):
    r = pd.Series({"softmax_ce": 2.6, "cosine": 1.4, "mse": 3.8, "cosine_ce": 1.2, "label_smoothing": 3.0})
    paths = cd_diagram(r, critical_difference(5, 6), tmp_path / "cd", title="demo")
    assert [p.name for p in paths] == ["cd.png", "cd.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 1000
    assert_no_type3(paths[1])
