"""Paired comparisons of two classifiers scored on the same test images.

Every run carries a per-image correctness vector over the split's test list (aligned by index), so
two methods can be compared image by image instead of through their two accuracies alone. Pairing
removes what both methods share -- the easy and the hard images -- and leaves only the images on
which they disagree, which makes the comparison much tighter than comparing two independent means.

Why an interval rather than a fixed threshold ("differences under 0.1 points are level"): whether
a difference is real depends on how many images decide it and on how much it moves between seeds.
One image is 0.04 points of a 2,465-image test set but 11 points of a 9-image class. A bootstrap
interval grows or shrinks with both; a fixed threshold does not. A difference is called "higher"
or "lower" only when the whole interval lies on one side of 0, otherwise "no difference we can
detect" -- which is not a claim that the methods are equal.

    res = paired_bootstrap(coop_runs, [zs] * len(coop_runs))   # lists of bool arrays, paired by seed
    verdict(res)                                                # "higher", "lower" or "no difference"
    mcnemar_exact(coop_runs[0], zs)                             # one pair of runs

Numbers only: how they are written is :mod:`coop.report.fmt`'s business (the report states the method
once, in its appendix B).

References: B. Efron & R. J. Tibshirani, An Introduction to the Bootstrap, Chapman & Hall (1993);
Q. McNemar, Psychometrika 12(2):153-157 (1947); T. G. Dietterich, "Approximate Statistical Tests
for Comparing Supervised Classification Learning Algorithms", Neural Computation 10(7) (1998).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

VERDICTS = ("higher", "lower", "no difference")
_CHUNK_ELEMENTS = 4_000_000  # bound on (replicates x seeds x images) gathered at once

def _vector(x: Any, what: str) -> np.ndarray:
    v = np.asarray(x)
    if v.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D correctness vector, got shape {v.shape}")
    if v.dtype != bool:
        if not np.isin(v, (0, 1)).all():
            raise ValueError(f"{what}: correctness vector must be boolean (or 0/1)")
        v = v.astype(bool)
    return v


def mcnemar_exact(a_correct: Any, b_correct: Any) -> Dict[str, Any]:
    """Exact two-sided McNemar test of one pair of runs: ``{"n01", "n10", "p_value"}``.

    n01 = images A gets right and B wrong, n10 = the reverse; under the null each discordant image
    is a fair coin, so p = min(1, 2 * P(X <= min(n01, n10))), X ~ Binomial(n01 + n10, 1/2),
    computed exactly with integers (p = 1 when there is no discordant image)."""
    a, b = _vector(a_correct, "a_correct"), _vector(b_correct, "b_correct")
    if a.size != b.size or a.size == 0:
        raise ValueError(f"a_correct and b_correct must have the same non-zero length, got {a.size} and {b.size}")
    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return {"n01": n01, "n10": n10, "p_value": sign_test_p(n01, n10)}


def sign_test_p(n_plus: int, n_minus: int) -> float:
    """Exact two-sided sign test: p = min(1, 2 * P(X <= min)), X ~ Binomial(n_plus + n_minus, 1/2),
    in integers (1 when both counts are 0)."""
    n, m = n_plus + n_minus, min(n_plus, n_minus)
    if n == 0:
        return 1.0
    term, total = 1, 1  # C(n, 0); C(n, i+1) = C(n, i) * (n - i) / (i + 1), exact in integers
    for i in range(m):
        term = term * (n - i) // (i + 1)
        total += term
    return float(min(1.0, 2 * total / 2 ** n))  # int / int is correctly rounded even for huge integers


def _stack(runs: Sequence[Any], what: str) -> np.ndarray:
    if len(runs) == 0:
        raise ValueError(f"{what}: need at least one run")
    vs = [_vector(r, f"{what}[{i}]") for i, r in enumerate(runs)]
    if len({v.size for v in vs}) != 1:
        raise ValueError(f"{what}: runs have different lengths {[v.size for v in vs]}")
    if vs[0].size == 0:
        raise ValueError(f"{what}: correctness vectors are empty (no test image)")
    return np.stack(vs)


def _paired_stacks(a: Sequence[Any], b: Sequence[Any]):
    """[k, n] correctness of both sides, b repeated when it is one run (zero-shot); checked to pair."""
    A, B = _stack(a, "a"), _stack(b, "b")
    if B.shape[0] == 1 and A.shape[0] > 1:
        B = np.repeat(B, A.shape[0], axis=0)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"a has {A.shape[0]} runs but b has {B.shape[0]}; pair them by seed (or give b one run)")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"a and b cover different test sets: {A.shape[1]} vs {B.shape[1]} images")
    return A, B


def _check_boot(level: float, n_boot: int) -> None:
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")


def _seed_resampled(per_seed: np.ndarray, drawn: Optional[np.ndarray]) -> np.ndarray:
    """Replicates [n_boot] from each replicate's per-seed values [n_boot, k]: with seed draws
    ``drawn`` [n_boot, k] (k >= 2) the mean over the drawn seeds, its deviation from the all-seed mean
    scaled by sqrt(k/(k-1)); with one seed, that seed's value."""
    if drawn is None:
        return per_seed[:, 0]
    k = per_seed.shape[1]
    centre = per_seed.mean(axis=1)
    return centre + math.sqrt(k / (k - 1)) * (np.take_along_axis(per_seed, drawn, axis=1).mean(axis=1) - centre)


ACCURACY_DIFF_BOUNDS = (-100.0, 100.0)  # a difference of two accuracies, in points, lies here


def widen(ci: Tuple[float, float], t: Optional[Tuple[float, float]],
          bounds: Tuple[float, float] = ACCURACY_DIFF_BOUNDS) -> Tuple[float, float]:
    """The union of a bootstrap interval and the seeds' t interval (None: no t interval, ``ci`` as is):
    the lower of the two lower ends and the higher of the two upper ends -- when the interval excludes 0,
    the end nearer to 0 on that side. Clipped to ``bounds``: with 3 seeds that differ a lot the t interval
    can reach beyond what a difference of accuracies can be (e.g. [-205.59, +175.59] points); the part
    outside [-100, 100] is impossible, so it is cut (it never decides a verdict: 0 lies inside)."""
    lo, hi = ci if t is None else (min(ci[0], t[0]), max(ci[1], t[1]))
    return max(lo, bounds[0]), min(hi, bounds[1])


def noninferiority_power(sd: float, k: int, margin: float = 1.0, true_diff: float = 0.0,
                         level: float = 0.95) -> float:
    """How likely the seeds' t lower bound clears ``-margin`` with ``k`` seeds whose per-seed differences
    have standard deviation ``sd`` (points) around ``true_diff``: P(mean - t * s / sqrt(k) > -margin), a
    noncentral t with k-1 degrees of freedom and noncentrality (true_diff + margin) * sqrt(k) / sd. The
    report's test also needs the bootstrap's lower bound above -margin, so its chance is at most this."""
    from scipy.stats import nct
    from scipy.stats import t as student_t

    if k < 2:
        return 0.0
    if sd <= 0:
        return 1.0 if true_diff > -margin else 0.0
    crit = float(student_t.ppf(0.5 + level / 2, k - 1))
    return float(nct.sf(crit, k - 1, (true_diff + margin) * math.sqrt(k) / sd))


def paired_bootstrap(a: Sequence[Any], b: Sequence[Any], n_boot: int = 10000, seed: int = 0,
                     level: float = 0.95) -> Dict[str, Any]:
    """Accuracy of A minus accuracy of B in percentage points, averaged over seed pairs, with a
    paired bootstrap percentile interval.

    ``a`` and ``b`` are lists of per-image correctness vectors paired by position (seed); a ``b`` of
    one run (e.g. deterministic zero-shot) is used against every run of ``a``. Each replicate draws
    n test-image indices with replacement -- the same indices for every seed and for both methods --
    and, when there are k >= 2 seed pairs, k seed pairs with replacement; its value is the mean over
    the drawn seed pairs of the difference of the two accuracies on the drawn images. A plain
    resampling of k seeds carries only (k-1)/k of the seeds' variance (the bootstrap variance of a
    mean of k values is the biased estimate); each replicate's seed part (drawn-seed mean minus the
    all-seed mean on the same images) is therefore scaled by sqrt(k/(k-1)), which makes its variance
    the unbiased s^2/k. With k this small a percentile interval can still be too narrow when seeds
    differ much; see :func:`seed_t_interval`. ``p_value`` is approximate: twice the fraction of replicates at or
    beyond 0 on the side opposite the point estimate, capped at 1 (1 when the estimate is 0)."""
    A, B = _paired_stacks(a, b)
    return difference_bootstrap(A.astype(np.int8) - B.astype(np.int8), n_boot=n_boot, seed=seed, level=level)


def difference_bootstrap(D: np.ndarray, per: int = 1, n_boot: int = 10000, seed: int = 0,
                         level: float = 0.95) -> Dict[str, Any]:
    """:func:`paired_bootstrap` from the per-image differences ``D`` [k seeds, n images] (+1: only A right,
    -1: only B right), each entry the sum of ``per`` such differences (a seed's runs at ``per`` shot counts
    on the same image): the difference is their mean, in points."""
    _check_boot(level, n_boot)
    k, n = D.shape
    diff = 100.0 * float(D.sum(dtype=np.int64)) / (k * n * per)
    rng = np.random.default_rng(seed)
    per_seed = np.empty((n_boot, k))  # per replicate, each seed's difference on the drawn images
    chunk = max(1, _CHUNK_ELEMENTS // (k * n))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32 if n < 2 ** 31 else np.int64)
        per_seed[start:stop] = np.take(D, idx, axis=1).sum(axis=2, dtype=np.int64).T  # take: fast gather
    per_seed *= 100.0 / (n * per)
    reps = _seed_resampled(per_seed, rng.integers(0, k, size=(n_boot, k)) if k >= 2 else None)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    if diff > 0:
        p = min(1.0, 2 * float(np.mean(reps <= 0)))
    elif diff < 0:
        p = min(1.0, 2 * float(np.mean(reps >= 0)))
    else:
        p = 1.0
    method = "paired bootstrap over test images" + (" and seeds" if k >= 2 else "")
    return {"diff": diff, "ci": (float(lo), float(hi)), "level": level, "n_seeds": k, "n_images": n,
            "p_value": p, "method": method}


def seed_t_interval(a: Sequence[Any], b: Sequence[Any], level: float = 0.95) -> Optional[Tuple[float, float]]:
    """Student's t interval (k-1 degrees of freedom) of the mean of the k seeds' accuracy differences,
    in points; None for one seed. It treats the test set as fixed and the seeds as the sample: with
    3 seeds it is wide (t = 4.30). Every verdict takes the union of it and the bootstrap's interval
    (:func:`coop.report.comparisons.compare`)."""
    A, B = _paired_stacks(a, b)
    return _t_interval(100.0 * (A.mean(axis=1) - B.mean(axis=1)), level)


def _t_interval(d: np.ndarray, level: float) -> Optional[Tuple[float, float]]:
    """Student's t interval of the mean of the per-seed values ``d`` (None for fewer than 2)."""
    from scipy.stats import t as student_t

    k = len(d)
    if k < 2:
        return None
    half = float(student_t.ppf(0.5 + level / 2, k - 1)) * float(np.std(d, ddof=1)) / math.sqrt(k)
    return float(np.mean(d) - half), float(np.mean(d) + half)


def verdict(result: Dict[str, Any]) -> str:
    """"higher" iff the interval lies entirely above 0, "lower" iff entirely below, else "no difference"."""
    lo, hi = result["ci"]
    return "higher" if lo > 0 else ("lower" if hi < 0 else "no difference")
