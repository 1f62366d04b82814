"""Per-class comparisons: the class, not the image, as the unit of a claim about classes.

:func:`class_difference` gives each class its own paired interval and an exact sign test (the report's
per-class table); :func:`group_contrast` asks whether a group of classes gains more than the others,
resampling classes (section 9.1's hypothesis about names BPE splits). Both rest on the paired machinery of
:mod:`coop.report.stats`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from .stats import (ACCURACY_DIFF_BOUNDS, VERDICTS, _check_boot, _paired_stacks, _seed_resampled, _stack, _t_interval,
                    paired_bootstrap, sign_test_p, verdict, widen)

CLASS_VERDICTS = VERDICTS + ("untestable",)  # a class too small for the sign test ever to reach p < 0.05


def sign_test_min_n(alpha: float = 0.05) -> int:
    """The fewest images on which an exact two-sided sign test can reach p < ``alpha``: with every
    image changing the same way p = 2 / 2**n, so n = 6 at 0.05 (p = 0.03125; n = 5 gives 0.0625)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = 1
    while sign_test_p(n, 0) >= alpha:
        n += 1
    return n


def class_difference(a_correct_list: Sequence[Any], b_correct_list: Sequence[Any], labels: Any,
                     classnames: Sequence[str], n_boot: int = 10000, seed: int = 0) -> List[Dict[str, Any]]:
    """Per class: ``{"class", "n_test", "diff", "ci", "p_sign", "testable", "verdict"}``, in ``classnames`` order.

    ``labels[i]`` is the class index (into ``classnames``) of test image i. Each class gets the same
    paired bootstrap as :func:`paired_bootstrap`, restricted to its own images, for its interval. A
    percentile interval over 9-15 images is too narrow, so the verdict also needs an exact sign test
    over the class's images (each image's difference averaged over the seeds; positive, negative or
    zero) at p < 0.05: "higher" only if the interval lies above 0 *and* the test agrees. A class with
    fewer test images than :func:`sign_test_min_n` (6 at the 95% level) can never pass the sign test:
    it is "untestable" (``testable`` False), not "no difference". Classes without any test image are
    left out."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    A, B = _stack(a_correct_list, "a"), _stack(b_correct_list, "b")
    if A.shape[1] != labels.size or B.shape[1] != labels.size:
        raise ValueError(f"labels cover {labels.size} images but the runs cover {A.shape[1]} and {B.shape[1]}")
    rows = []
    for c, name in enumerate(classnames):
        mask = labels == c
        if not mask.any():
            continue
        res = paired_bootstrap(list(A[:, mask]), list(B[:, mask]), n_boot=n_boot, seed=seed)
        per_image = (A[:, mask].astype(np.int64) - B[:, mask].astype(np.int64)).sum(axis=0)  # sign of the seed mean
        p = sign_test_p(int((per_image > 0).sum()), int((per_image < 0).sum()))
        alpha = 1 - res["level"]
        testable = int(mask.sum()) >= sign_test_min_n(alpha)
        rows.append({"class": name, "n_test": int(mask.sum()), "diff": res["diff"], "ci": res["ci"], "p_sign": p,
                     "testable": testable,
                     "verdict": ("untestable" if not testable else verdict(res) if p < alpha else "no difference")})
    return rows


def group_contrast(a: Sequence[Any], b: Sequence[Any], labels: Any, group: Sequence[int], n_boot: int = 2000,
                   seed: int = 0, level: float = 0.95) -> Dict[str, Dict[str, Any]]:
    """A - B on the images of the classes ``group`` (class indices into ``labels``), on the other
    classes' images, and the contrast of the two (group minus others; positive: A's advantage is larger
    in the group), in points, each ``{"diff", "ci", "level", "n_classes", "n_images"}``.

    The unit is the class, not the image: a hypothesis about *which classes* gain must not be decided
    by images of the same class, which move together. Each replicate draws classes with replacement
    within each side (a class brings all its test images, the same for every seed and both methods),
    then seeds as :func:`paired_bootstrap` does (rescaled by sqrt(k/(k-1))); with 2 or more seeds each
    interval is then widened to the union with the t interval over the seeds' values, as
    :func:`coop.report.comparisons.compare` does."""
    A, B = _paired_stacks(a, b)
    labels = np.asarray(labels)
    if labels.shape != (A.shape[1],):
        raise ValueError(f"labels cover {labels.size} images but the runs cover {A.shape[1]}")
    _check_boot(level, n_boot)
    present = np.unique(labels)
    in_group = np.isin(present, np.asarray(list(group), dtype=present.dtype))
    if in_group.all() or not in_group.any():
        raise ValueError("group_contrast needs test images of at least one class inside the group and one outside")
    k = A.shape[0]
    D = A.astype(np.int64) - B.astype(np.int64)  # +1: only A right, -1: only B right
    sums = np.stack([D[:, labels == c].sum(axis=1) for c in present], axis=1)  # [k, classes]
    counts = np.array([(labels == c).sum() for c in present])
    rng = np.random.default_rng(seed)

    def side(cols: np.ndarray):
        """Point difference, per-seed replicates [n_boot, k] (classes drawn), per-seed values [k], images."""
        drawn = cols[rng.integers(0, len(cols), size=(n_boot, len(cols)))]  # [n_boot, m] column indices
        per_seed = 100.0 * sums[:, drawn].sum(axis=2).T / counts[drawn].sum(axis=1)[:, None]
        per_seed_full = 100.0 * sums[:, cols].sum(axis=1) / counts[cols].sum()
        return 100.0 * sums[:, cols].sum() / (k * counts[cols].sum()), per_seed, per_seed_full, int(counts[cols].sum())

    (pin, sin, din, n_in), (pout, sout, dout, n_out) = side(np.flatnonzero(in_group)), side(np.flatnonzero(~in_group))
    seed_draw = rng.integers(0, k, size=(n_boot, k)) if k >= 2 else None

    def res(diff, per_seed, per_seed_full, n_cls, n_img, bounds=ACCURACY_DIFF_BOUNDS):
        lo, hi = np.quantile(_seed_resampled(per_seed, seed_draw), [(1 - level) / 2, (1 + level) / 2])
        t = _t_interval(per_seed_full, level)  # as compare() does: the union with the seeds' t interval decides
        return {"diff": float(diff), "ci": widen((float(lo), float(hi)), t, bounds), "seed_t_ci": t, "level": level,
                "n_classes": int(n_cls), "n_images": int(n_img)}

    n_cls_in = int(in_group.sum())
    return {"group": res(pin, sin, din, n_cls_in, n_in), "others": res(pout, sout, dout, len(present) - n_cls_in, n_out),
            "contrast": res(pin - pout, sin - sout, din - dout, n_cls_in, n_in, (-200.0, 200.0))}  # a difference of two
