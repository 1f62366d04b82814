"""Paired comparisons (coop.report.stats) on synthetic correctness vectors: every expected value is
computed here from the vectors themselves (counts, brute-force binomial sums, analytic standard
errors), never copied from a run."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from coop.report.fmt import describe
from coop.report.class_stats import class_difference
from coop.report.stats import mcnemar_exact, paired_bootstrap, verdict

N = 2000


def pair(rng, n, n_b_right, n01, n10):
    """B right on exactly n_b_right random images; A = B, then A made right on n01 images B gets
    wrong and wrong on n10 images B gets right (so acc(A) - acc(B) = (n01 - n10) / n exactly)."""
    b = np.zeros(n, bool)
    b[rng.choice(n, n_b_right, replace=False)] = True
    a = b.copy()
    a[rng.choice(np.flatnonzero(~b), n01, replace=False)] = True
    a[rng.choice(np.flatnonzero(b), n10, replace=False)] = False
    return a, b


def plain_diff(a, b):
    if len(b) == 1:
        b = list(b) * len(a)
    return 100 * float(np.mean([x.mean() - y.mean() for x, y in zip(a, b)]))


def test_large_gain_is_higher():
    rng = np.random.default_rng(11)
    a = [rng.random(N) < 0.9 for _ in range(3)]  # independent draws: differences on different images
    b = [rng.random(N) < 0.8 for _ in range(3)]
    r = paired_bootstrap(a, b, seed=1)
    assert r["diff"] == pytest.approx(plain_diff(a, b), abs=1e-9)
    assert r["ci"][0] > 0 and r["ci"][0] <= r["diff"] <= r["ci"][1]
    assert verdict(r) == "higher"
    assert describe(r).startswith("高 ") and "个百分点" in describe(r)
    assert describe(r, "en").startswith("higher by ")
    assert r["n_seeds"] == 3 and r["n_images"] == N and r["level"] == 0.95
    assert r["p_value"] < 0.01 and "bootstrap" in r["method"]


def test_clear_loss_is_lower():
    rng = np.random.default_rng(12)
    a = [rng.random(N) < 0.78 for _ in range(3)]
    b = [rng.random(N) < 0.9 for _ in range(3)]
    r = paired_bootstrap(a, b)
    assert r["diff"] < 0 and r["ci"][1] < 0
    assert verdict(r) == "lower"
    assert describe(r).startswith("低 ") and describe(r, "en").startswith("lower by ")


def test_tiny_gain_with_seed_spread_is_no_difference():
    rng = np.random.default_rng(13)
    runs = [pair(rng, N, 1600, 40 + d, 40) for d in (30, -24, 2)]  # +1.5, -1.2, +0.1 points
    a, b = [x for x, _ in runs], [y for _, y in runs]
    r = paired_bootstrap(a, b)
    assert r["diff"] == pytest.approx(100 * (30 - 24 + 2) / 3 / N, abs=1e-9)
    assert r["ci"][0] < 0 < r["ci"][1]
    assert verdict(r) == "no difference"
    assert describe(r).startswith("分不出（95% 置信区间 ")
    assert describe(r, "en").startswith("no difference we can detect (95% CI ")
    # the first seed alone (+1.5 points on 110 discordant images) would be a detectable gain
    assert verdict(paired_bootstrap(a[:1], b[:1])) == "higher"


def test_seeds_are_resampled():
    """Per-seed gains +2.0, +2.0, -0.5 points with little image noise: resampling images alone would
    exclude 0; resampling seeds too puts the all-worst-seed replicates (1/27 > 2.5%) below 0."""
    rng = np.random.default_rng(14)
    runs = [pair(rng, N, 1600, 5 + max(d, 0), 5 + max(-d, 0)) for d in (40, 40, -10)]
    r = paired_bootstrap([x for x, _ in runs], [y for _, y in runs])
    assert r["ci"][0] < 0 and verdict(r) == "no difference"


def test_identical_runs():
    rng = np.random.default_rng(15)
    a = [rng.random(N) < 0.85 for _ in range(3)]
    r = paired_bootstrap(a, [x.copy() for x in a])
    assert r["diff"] == 0 and r["ci"] == (0.0, 0.0) and r["p_value"] == 1.0
    assert verdict(r) == "no difference" and describe(r, pairs=False) == "分不出：±0（没有一张图的对错改变）"  # no zero-width "interval"
    assert mcnemar_exact(a[0], a[0]) == {"n01": 0, "n10": 0, "p_value": 1.0}


def brute_force_p(n01, n10):
    n, m = n01 + n10, min(n01, n10)
    tail = sum(1 for flips in itertools.product((0, 1), repeat=n) if sum(flips) <= m)
    return min(1.0, 2 * tail / 2 ** n)


@pytest.mark.parametrize("n01,n10", [(3, 12), (0, 7), (5, 5), (1, 2)])
def test_mcnemar_matches_brute_force_and_is_symmetric(n01, n10):
    rng = np.random.default_rng(16)
    a, b = pair(rng, 60, 30, n01, n10)
    r, s = mcnemar_exact(a, b), mcnemar_exact(b, a)
    assert (r["n01"], r["n10"]) == (n01, n10) and (s["n01"], s["n10"]) == (n10, n01)
    assert r["p_value"] == pytest.approx(brute_force_p(n01, n10), rel=1e-12)
    assert s["p_value"] == r["p_value"]


def test_mcnemar_large_n_against_log_space():
    rng = np.random.default_rng(17)
    a, b = pair(rng, 5000, 2500, 1200, 1300)
    n, m = 2500, 1200
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(m + 1)]
    top = max(logs)
    expected = 2 * math.exp(top) * sum(math.exp(x - top) for x in logs)
    assert mcnemar_exact(a, b)["p_value"] == pytest.approx(expected, rel=1e-8)


def test_point_estimate_is_mean_accuracy_difference_and_single_b_run_is_shared():
    rng = np.random.default_rng(18)
    a = [rng.random(777) < p for p in (0.6, 0.7, 0.75, 0.9)]
    b = [rng.random(777) < 0.7]
    r = paired_bootstrap(a, b, n_boot=500)
    assert r["diff"] == pytest.approx(plain_diff(a, b), abs=1e-9) and r["n_seeds"] == 4
    assert paired_bootstrap(a, b * 4, n_boot=500) == r


def test_interval_width_matches_paired_standard_error():
    """One seed pair with 60 / 20 discordant images: the paired difference has standard error
    sqrt((n01 + n10)/n^2 - (n01 - n10)^2/n^3); an unpaired resampling would be about 2.5x wider."""
    rng = np.random.default_rng(19)
    n01, n10 = 60, 20
    a, b = pair(rng, N, 1600, n01, n10)
    se = 100 * math.sqrt((n01 + n10) / N ** 2 - (n01 - n10) ** 2 / N ** 3)
    lo, hi = paired_bootstrap([a], [b])["ci"]
    assert (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.12)
    # the same image indices are used for every seed: three copies of one pair give the same width
    lo3, hi3 = paired_bootstrap([a] * 3, [b] * 3)["ci"]
    assert (hi3 - lo3) == pytest.approx(hi - lo, rel=0.12)


def test_class_difference_small_class():
    rng = np.random.default_rng(20)
    labels = np.array([0] * 9 + [2] * 400)
    rows = []
    for _ in range(3):
        b = np.zeros(labels.size, bool)
        b[:8] = True                                       # class 0: B right on 8 of 9
        b[9:] = rng.random(400) < 0.6
        a = b.copy()
        a[8] = True                                        # one flipped image in class 0
        a[9:] = rng.random(400) < 0.95
        rows.append((a, b))
    out = class_difference([x for x, _ in rows], [y for _, y in rows], labels, ["ant", "bass", "chair"], n_boot=2000)
    assert [o["class"] for o in out] == ["ant", "chair"]  # "bass" has no test image
    ant, chair = out
    assert ant["n_test"] == 9 and chair["n_test"] == 400
    assert ant["diff"] == pytest.approx(100 / 9) and ant["verdict"] == "no difference"
    assert ant["ci"][0] <= 0 < ant["ci"][1]
    assert chair["verdict"] == "higher"


def test_bad_inputs_raise():
    a, b = np.ones(10, bool), np.ones(11, bool)
    with pytest.raises(ValueError, match="different"):
        paired_bootstrap([a], [b])
    with pytest.raises(ValueError):
        paired_bootstrap([a, a], [a, a, a])
    with pytest.raises(ValueError):
        paired_bootstrap([a, np.ones(9, bool)], [a, a])
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
    with pytest.raises(ValueError):
        paired_bootstrap([np.ones(0, bool)], [np.ones(0, bool)])
    with pytest.raises(ValueError):
        mcnemar_exact(a, b)
    with pytest.raises(ValueError):
        class_difference([a], [a], np.zeros(11, int), ["x"])


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(21)
    a = [rng.random(500) < 0.8 for _ in range(3)]
    b = [rng.random(500) < 0.75 for _ in range(3)]
    assert paired_bootstrap(a, b, n_boot=2000, seed=5) == paired_bootstrap(a, b, n_boot=2000, seed=5)
    assert paired_bootstrap(a, b, n_boot=2000, seed=5)["ci"] != paired_bootstrap(a, b, n_boot=2000, seed=6)["ci"]


def test_phrases_and_notes():
    """One format (two decimals, signed intervals) and the seed pairs in every phrase (issue 29)."""
    up = {"diff": 2.34, "ci": (1.06, 3.51), "level": 0.95, "seeds": [1, 2, 3]}
    assert describe(up) == "高 2.34 个百分点（95% 置信区间 [+1.06, +3.51]，3 对种子）"
    assert describe(up, "en") == "higher by 2.34 points (95% CI [+1.06, +3.51], 3 seed pairs)"
    down = {"diff": -2.34, "ci": (-3.51, -1.06), "level": 0.95, "seeds": [1]}
    assert describe(down) == "低 2.34 个百分点（95% 置信区间 [-3.51, -1.06]，1 对种子）" and verdict(down) == "lower"
    flat = {"diff": 0.4, "ci": (-0.42, 1.2), "level": 0.95, "seeds": [1, 2], "single_reference": True}
    assert describe(flat) == "分不出（95% 置信区间 [-0.42, +1.20]，2 个种子与同一次运行配对）"
    assert describe(flat, "en") == ("no difference we can detect (95% CI [-0.42, +1.20], 2 seeds, each paired with "
                                    "the other side's one run)")
    assert describe(flat, pairs=False) == "分不出（95% 置信区间 [-0.42, +1.20]）"
    assert verdict({"diff": 0.5, "ci": (0.0, 1.0)}) == "no difference"  # touching 0 is not above it
    # a bound that would print as 0.00 keeps its digits, so the printed interval never contradicts the verdict
    assert describe({"diff": 0.2, "ci": (-0.004, 0.46), "level": 0.95, "seeds": [1]}, "en") == \
        "no difference we can detect (95% CI [-0.004, +0.46], 1 seed pair)"
    assert describe({"diff": 0.3, "ci": (0.0004, 0.6), "level": 0.95, "seeds": [1]}) == \
        "高 0.30 个百分点（95% 置信区间 [+0.0004, +0.60]，1 对种子）"
    # the method is stated once, in the report's appendix B, with its sources
    report = (Path(__file__).resolve().parents[1] / "report" / "REPORT.md").read_text(encoding="utf-8")
    appendix = report.split("## 附录 B")[1].split("## 参考文献")[0]
    refs = report.split("## 参考文献")[1]
    assert all(s in appendix for s in ("Efron", "McNemar", "Dietterich", "10,000", "95%", "√(k/(k−1))"))
    assert all(s in refs for s in ("Efron", "McNemar", "1947", "Dietterich", "1998"))


def test_the_union_takes_the_lower_lower_end_and_the_higher_upper_end_within_what_accuracy_allows():
    """Issue 38: widen() takes min(lower), max(upper) -- when the interval excludes 0, the end nearer to 0 on
    that side -- and clips to [-100, 100] points, where a difference of two accuracies lies."""
    from coop.report.stats import widen

    assert widen((1.0, 3.0), (0.5, 2.5)) == (0.5, 3.0)  # 0.5 is the end nearer to 0, not farther
    assert widen((-3.0, -1.0), (-2.0, -0.4)) == (-3.0, -0.4)
    assert widen((-62.0, 70.0), (-205.59, 175.59)) == (-100.0, 100.0)
    assert widen((-250.0, 10.0), None) == (-100.0, 10.0)
    assert widen((-150.0, 160.0), (-180.0, 190.0), bounds=(-200.0, 200.0)) == (-180.0, 190.0)
    root = Path(__file__).resolve().parents[1]
    analysis_src = (root / "coop" / "report" / "analysis.py").read_text(encoding="utf-8")
    assert "离 0 更远" not in analysis_src and "离 0 更远" not in (root / "report" / "REPORT.md").read_text(encoding="utf-8")


def test_seed_intervals_never_leave_what_accuracy_allows():
    """Three seeds far apart (a random-weight demo): the t interval alone would reach beyond +-100 points."""
    from coop.report.stats import seed_t_interval, widen

    rng = np.random.default_rng(3)
    a = [rng.random(40) < p for p in (0.05, 0.95, 0.1)]
    b = [rng.random(40) < p for p in (0.9, 0.05, 0.85)]
    t = seed_t_interval(a, b)
    assert t[0] < -100 or t[1] > 100
    res = paired_bootstrap(a, b, n_boot=500)
    lo, hi = widen(res["ci"], t)
    assert -100.0 <= lo <= res["diff"] <= hi <= 100.0


def test_the_seed_part_is_rescaled_to_the_unbiased_variance():
    """Two seeds at +2 and -2 points (400 of 20,000 images each way, little image noise): plain seed
    resampling puts a quarter of the replicates at -2 (lower bound about -2); rescaled by sqrt(k/(k-1))
    = sqrt(2), the all-worst-seed replicates sit at about -2.83."""
    rng = np.random.default_rng(21)
    up, down = pair(rng, 20000, 15000, 400, 0), pair(rng, 20000, 15000, 0, 400)
    r = paired_bootstrap([up[0], down[0]], [up[1], down[1]], n_boot=4000)
    assert r["diff"] == pytest.approx(0.0, abs=1e-9)
    assert -2 * math.sqrt(2) - 0.35 < r["ci"][0] < -2 * math.sqrt(2) + 0.25 and r["ci"][1] == pytest.approx(-r["ci"][0], abs=0.4)


def test_seed_t_interval_is_students_over_the_seed_differences():
    from coop.report.stats import seed_t_interval

    rng = np.random.default_rng(22)
    runs = [pair(rng, 2000, 1600, 40 + d, 40) for d in (20, 20, -8)]  # +1.0, +1.0, -0.4 points
    lo, hi = seed_t_interval([x for x, _ in runs], [y for _, y in runs])
    d = np.array([1.0, 1.0, -0.4])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, df=2)
    assert (lo, hi) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-9)
    assert seed_t_interval([runs[0][0]], [runs[0][1]]) is None  # one seed: no interval over seeds


def test_a_small_class_needs_the_sign_test_too():
    """4 of a 10-image class flipped to right in every seed: the percentile interval lies above 0, but
    4 of 4 discordant images give an exact sign-test p of 0.125 -> no difference; 12 of 40 -> higher."""
    from coop.report.class_stats import class_difference

    rng = np.random.default_rng(23)
    labels = np.repeat([0, 1], [10, 40])
    b = np.zeros(50, bool)
    b[rng.choice(50, 20, replace=False)] = True
    a = b.copy()
    a[np.flatnonzero(~b & (labels == 0))[:4]] = True
    a[np.flatnonzero(~b & (labels == 1))[:12]] = True
    rows = {r["class"]: r for r in class_difference([a] * 3, [b] * 3, labels, ["small", "big"], n_boot=2000)}
    assert rows["small"]["ci"][0] > 0 and rows["small"]["p_sign"] == 0.125 and rows["small"]["verdict"] == "no difference"
    assert rows["big"]["p_sign"] < 0.001 and rows["big"]["verdict"] == "higher"


def test_the_group_contrast_resamples_classes():
    """10 group classes and 20 others; every class has its own gain (-6..+6 points around 0), none by
    group: the class-level interval is wide and contains 0; a +8-point gain on every group class is
    'higher' against the others."""
    from coop.report.class_stats import group_contrast

    rng = np.random.default_rng(24)
    n_cls, per = 30, 40
    labels = np.repeat(np.arange(n_cls), per)
    b = rng.random(labels.size) < 0.6

    def with_gains(gains):
        a = b.copy()
        for c, g in enumerate(gains):
            idx = np.flatnonzero(labels == c)
            pool = idx[~a[idx]] if g > 0 else idx[a[idx]]
            a[pool[:abs(int(g))]] = g > 0
        return a

    mixed = with_gains(rng.integers(-3, 4, n_cls))  # each class +-3 images of 40: +-7.5 points
    res = group_contrast([mixed] * 3, [b] * 3, labels, list(range(10)))
    assert res["group"]["n_classes"] == 10 and res["others"]["n_classes"] == 20 and res["group"]["n_images"] == 400
    lo, hi = res["contrast"]["ci"]
    assert lo < 0 < hi and hi - lo > 4  # class-to-class variation, not images, sets the width
    boosted = with_gains([4] * 10 + [0] * 20)
    assert verdict(group_contrast([boosted] * 3, [b] * 3, labels, list(range(10)))["contrast"]) == "higher"


def test_the_group_contrast_is_widened_to_the_seeds_t_interval_like_every_verdict():
    from coop.report.class_stats import group_contrast

    rng = np.random.default_rng(25)
    labels = np.repeat(np.arange(20), 30)
    b = rng.random(labels.size) < 0.6
    runs = []
    for gain in (6, 0, 3):  # the group's classes gain 6, 0 and 3 images of 30 in the three seeds
        a = b.copy()
        for c in range(6):
            idx = np.flatnonzero((labels == c) & ~a)
            a[idx[:gain]] = True
        runs.append(a)
    res = group_contrast(runs, [b] * 3, labels, list(range(6)))
    for part in ("group", "others", "contrast"):
        r = res[part]
        if r["seed_t_ci"] is not None:
            assert r["ci"][0] <= r["seed_t_ci"][0] and r["ci"][1] >= r["seed_t_ci"][1]
    assert res["contrast"]["seed_t_ci"][1] - res["contrast"]["seed_t_ci"][0] > 10  # 3 seeds that disagree: wide


def test_classes_too_small_for_the_sign_test_are_untestable_not_level():
    """Issue 29: with n images the smallest two-sided sign-test p is 2/2**n, so n <= 5 can never reach
    p < 0.05 (n = 5: 0.0625; n = 6: 0.03125). Such a class is "untestable", not "no difference"."""
    from coop.report.class_stats import sign_test_min_n
    from coop.report.stats import sign_test_p

    assert sign_test_min_n() == 6 and sign_test_p(5, 0) == 0.0625 and sign_test_p(6, 0) == 0.03125
    assert sign_test_min_n(0.01) == 8  # 2/2**8 = 0.0078
    labels = np.repeat([0, 1, 2], [4, 5, 6])
    b = np.zeros(15, bool)
    a = np.ones(15, bool)  # every image of every class flips to right in every seed
    rows = {r["class"]: r for r in class_difference([a] * 3, [b] * 3, labels, ["four", "five", "six"], n_boot=500)}
    assert rows["four"]["verdict"] == "untestable" and not rows["four"]["testable"] and rows["four"]["p_sign"] == 0.125
    assert rows["five"]["verdict"] == "untestable" and rows["five"]["p_sign"] == 0.0625
    assert rows["six"]["verdict"] == "higher" and rows["six"]["testable"] and rows["six"]["p_sign"] == 0.03125
