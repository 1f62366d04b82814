"""Two methods compared on the same test images, runs paired by (shots, seed).

Every comparison the report makes -- CoOp against zero-shot CLIP, CoOp at one shot count against
the next, a block modification or a baseline against CoOp -- goes through :func:`compare`: it pairs
the runs of the two sides by seed (a seed one side lacks is left out, and the order of the records
does not matter), aligns their per-image predictions by the test image's index in the split, and
hands the correctness vectors to :func:`coop.report.stats.paired_bootstrap`. A one-run side (zero-shot
CLIP, deterministic) is paired with every run of the other.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .stats import class_difference, group_contrast, mcnemar_exact, paired_bootstrap, seed_t_interval

N_BOOT = 10000
N_BOOT_CLASS = 2000  # per class (100 classes): the same test, fewer replicates
# Non-inferiority margin for "a block modification does not hurt accuracy" (report section 9.4, stated
# before any run): at every shot count the lower end of the 95% interval of (modified - CoOp) must lie
# above -NI_MARGIN points (a one-sided test at the 2.5% level; Piaggio et al., JAMA 2012, CONSORT).
# The lower end is the lower of the paired bootstrap's and the seeds' t interval's (stats.seed_t_interval).
NI_MARGIN = 1.0


def correctness(rec: Dict[str, Any]) -> Optional[Dict[int, bool]]:
    """``{test index: correct}`` of a record, None if it has no per-image predictions."""
    p = rec.get("test_predictions")
    if not p:
        return None
    return {int(i): int(y) == int(q) for i, y, q in zip(p["index"], p["label"], p["pred"])}


def pairs(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]]) -> List[tuple]:
    """``[(seed, a record, b record)]``: by seed; a single ``b`` record (zero-shot) goes with every ``a``."""
    if len(b) == 1 and b[0].get("seed") is None:
        return [(r["seed"], r, b[0]) for r in sorted(a, key=lambda r: r["seed"])]
    by_seed = {r["seed"]: r for r in b}
    return [(r["seed"], r, by_seed[r["seed"]]) for r in sorted(a, key=lambda r: r["seed"]) if r["seed"] in by_seed]


def _aligned(matched: List[tuple]):
    """Correctness vectors of both sides over the test images every run of the pairs scored."""
    cs = [(correctness(ra), correctness(rb)) for _, ra, rb in matched]
    if not cs or any(x is None or y is None for x, y in cs):
        return None
    common = sorted(set.intersection(*[set(x) & set(y) for x, y in cs]))
    if not common:
        return None
    a = [np.array([x[i] for i in common]) for x, _ in cs]
    b = [np.array([y[i] for i in common]) for _, y in cs]
    return common, a, b


def compare(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]], n_boot: int = N_BOOT) -> Optional[Dict[str, Any]]:
    """The paired bootstrap of accuracy(a) - accuracy(b), in points, with its 95% interval and the
    seeds it used; None when the runs cannot be paired (no common seed, no per-image predictions)."""
    matched = pairs(a, b)
    got = _aligned(matched)
    if got is None:
        return None
    _, va, vb = got
    res = paired_bootstrap(va, vb, n_boot=n_boot, seed=0)
    res["seeds"] = [s for s, _, _ in matched]
    res["seed_t_ci"] = seed_t_interval(va, vb)
    return res


def mcnemar(a: Dict[str, Any], b: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """McNemar's exact test of one pair of runs on the test images both scored."""
    got = _aligned([(None, a, b)])
    return None if got is None else mcnemar_exact(got[1][0], got[2][0])


def compare_classes(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]], n_boot: int = N_BOOT_CLASS) -> List[Dict[str, Any]]:
    """Per class: test count, paired difference, interval and verdict (classes with no test image left out)."""
    matched = pairs(a, b)
    got = _aligned(matched)
    if got is None:
        return []
    common, va, vb = got
    ref = matched[0][1]
    labels_of = dict(zip(ref["test_predictions"]["index"], ref["test_predictions"]["label"]))
    labels = np.array([int(labels_of[i]) for i in common])
    return class_difference(va, vb, labels, list(ref.get("classnames") or []), n_boot=n_boot, seed=0)


def compare_group(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]], classes: Sequence[str],
                  n_boot: int = N_BOOT_CLASS) -> Optional[Dict[str, Any]]:
    """a against b on the test images of ``classes`` pooled, on the other images, and the contrast of
    the two (is a's advantage larger inside the group?); None without pairs or without images on
    either side."""
    matched = pairs(a, b)
    got = _aligned(matched)
    if got is None:
        return None
    common, va, vb = got
    ref = matched[0][1]
    names = list(ref.get("classnames") or [])
    labels_of = dict(zip(ref["test_predictions"]["index"], ref["test_predictions"]["label"]))
    inside = np.array([names[int(labels_of[i])] in set(classes) for i in common])
    if inside.all() or not inside.any():
        return None
    part = {name: paired_bootstrap([x[m] for x in va], [y[m] for y in vb], n_boot=n_boot, seed=0)
            for name, m in (("group", inside), ("others", ~inside))}
    return {**part, "contrast": group_contrast(va, vb, inside, n_boot=n_boot, seed=0),
            "n_classes": len(set(classes) & set(names))}


def noninferiority(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]],
                   margin: float = NI_MARGIN) -> Optional[Dict[str, Any]]:
    """Is ``a`` no worse than ``b`` by more than ``margin`` points at every shot count both have?

    ``{"tests": {shots: compare result}, "noninferior": bool, "margin": margin}``; None when no shot
    count can be paired. Decided by the lower ends of the paired 95% intervals, never by the means."""
    def by_k(recs):
        out: Dict[int, List[Dict[str, Any]]] = {}
        for r in recs:
            out.setdefault(int(r["shots"]), []).append(r)
        return out

    ka, kb = by_k(a), by_k(b)
    tests = {k: compare(ka[k], kb[k]) for k in sorted(set(ka) & set(kb))}
    tests = {k: t for k, t in tests.items() if t is not None}
    if not tests:
        return None
    lower = {k: min([t["ci"][0]] + ([t["seed_t_ci"][0]] if t.get("seed_t_ci") else [])) for k, t in tests.items()}
    return {"tests": tests, "lower": lower, "margin": margin, "noninferior": all(v > -margin for v in lower.values())}
