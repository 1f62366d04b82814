"""Two methods compared on the same test images, runs paired by (shots, seed).

Every comparison the report makes -- CoOp against zero-shot CLIP, CoOp at one shot count against
the next, a block modification or a baseline against CoOp -- goes through :func:`compare`: it pairs
the runs of the two sides by seed (a seed one side lacks is left out, and the order of the records
does not matter), aligns their per-image predictions by the test image's index in the split, and
hands the correctness vectors to :func:`coop.report.stats.paired_bootstrap`. A one-run side (zero-shot
CLIP, deterministic) is paired with every run of the other. With two or more seed pairs the interval
that decides is the union of the bootstrap's and Student's t interval over the seeds' differences
(:func:`coop.report.stats.seed_t_interval`): with 3 seeds the bootstrap alone covers too little when
the seeds differ much (about 88% in a simulation where the seeds dominate), the t interval too
little when they barely differ (it treats the test images as fixed); the union errs on the side of
"no difference we can detect".
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..runs.results import by_shots, modified_methods
from .class_stats import class_difference, group_contrast
from .stats import _t_interval, difference_bootstrap, mcnemar_exact, paired_bootstrap, seed_t_interval, verdict, widen

N_BOOT = 10000
N_BOOT_CLASS = 2000  # per class (100 classes): the same test, fewer replicates
# Non-inferiority margin for "a block modification does not hurt accuracy" (report section 9.4, stated
# before any run): each seed's (modified - CoOp) is first averaged over the shot counts (a seed's runs share
# images and crops, so they are not independent), and the lower end of the 95% interval over the seeds must
# lie above -NI_MARGIN points (a one-sided test at the 2.5% level; Piaggio et al., JAMA 2012, CONSORT); no
# shot count may show a loss or an observed mean loss beyond the margin. The lower end is the lower of the
# paired bootstrap's and the seeds' t interval's. Averaged, because 3 seed pairs per shot count give a t
# interval too wide for the test to pass (stats.noninferiority_power).
NI_MARGIN = 1.0
MIN_CLASSES = 5  # a class-level bootstrap needs at least this many classes on each side


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
    seeds it used (``seeds``; ``single_reference``: b is one unseeded run, paired with every seed of a);
    None when the runs cannot be paired (no common seed, no per-image predictions)."""
    matched = pairs(a, b)
    got = _aligned(matched)
    if got is None:
        return None
    _, va, vb = got
    res = paired_bootstrap(va, vb, n_boot=n_boot, seed=0)
    res["seeds"] = [s for s, _, _ in matched]
    res["single_reference"] = len(b) == 1 and b[0].get("seed") is None  # one unseeded run paired with each seed
    res["per_seed"] = [100.0 * (float(np.mean(x)) - float(np.mean(y))) for x, y in zip(va, vb)]  # points, by seed
    res["ci_bootstrap"], res["seed_t_ci"] = res["ci"], seed_t_interval(va, vb)
    res["ci"] = widen(res["ci"], res["seed_t_ci"])  # with 2+ seed pairs: the union of both decides (within +-100)
    if res["seed_t_ci"] is not None:
        res["method"] += ", widened to the seeds' t interval"
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
    return class_difference(va, vb, _labels(ref, common), list(ref.get("classnames") or []), n_boot=n_boot, seed=0)


def _labels(ref: Dict[str, Any], common: Sequence[int]) -> np.ndarray:
    """The class index of each of the test images ``common``, from a record's per-image predictions."""
    labels_of = dict(zip(ref["test_predictions"]["index"], ref["test_predictions"]["label"]))
    return np.array([int(labels_of[i]) for i in common])


def compare_group(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]], classes: Sequence[str],
                  n_boot: int = N_BOOT_CLASS) -> Optional[Dict[str, Any]]:
    """a against b on the test images of ``classes`` pooled, on the other classes, and the contrast
    of the two (:func:`coop.report.class_stats.group_contrast`, classes resampled); None without pairs, without
    class names, or without test images on either side."""
    matched = pairs(a, b)
    got = _aligned(matched)
    if got is None:
        return None
    common, va, vb = got
    ref = matched[0][1]
    names, labels = list(ref.get("classnames") or []), _labels(ref, common)
    if not names or labels.max() >= len(names):
        return None  # records without class names: the group cannot be found
    group = [i for i, c in enumerate(names) if c in set(classes)]
    present = set(labels.tolist())
    if min(len(present & set(group)), len(present - set(group))) < MIN_CLASSES:
        return None  # too few classes on a side to resample classes
    return group_contrast(va, vb, labels, group, n_boot=n_boot, seed=0)


def compare_over_shots(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]],
                       shots: Sequence[int], n_boot: int = N_BOOT) -> Optional[Dict[str, Any]]:
    """a - b averaged over the shot counts ``shots``, with the seed as the unit: each seed's per-image
    difference is summed over its runs at those shot counts (they share the few-shot images and crops, so
    they are not independent), then resampled as :func:`compare` does (images and seeds; the union with the
    t interval over the seeds' means). None without a seed both sides ran at every shot count, or without
    per-image predictions."""
    ka, kb = by_shots(list(a)), by_shots(list(b))
    if not shots or any(k not in ka or k not in kb for k in shots):
        return None
    seeds = sorted(set.intersection(*[set(ka[k]) & set(kb[k]) for k in shots]))
    cs = {(k, s): (correctness(ka[k][s]), correctness(kb[k][s])) for k in shots for s in seeds}
    if not seeds or any(x is None or y is None for x, y in cs.values()):
        return None
    common = sorted(set.intersection(*[set(x) & set(y) for x, y in cs.values()]))
    if not common:
        return None
    D = np.array([[sum(int(cs[k, s][0][i]) - int(cs[k, s][1][i]) for k in shots) for i in common] for s in seeds],
                 dtype=np.int16)
    res = difference_bootstrap(D, per=len(shots), n_boot=n_boot, seed=0)
    res["seeds"], res["shots"], res["single_reference"] = seeds, list(shots), False
    res["per_seed"] = [100.0 * float(d) / (len(common) * len(shots)) for d in D.sum(axis=1)]  # each seed's mean
    res["ci_bootstrap"], res["seed_t_ci"] = res["ci"], _t_interval(np.array(res["per_seed"]), 0.95)
    res["ci"] = widen(res["ci"], res["seed_t_ci"])
    return res


def noninferiority(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]],
                   margin: float = NI_MARGIN) -> Optional[Dict[str, Any]]:
    """Is ``a`` no worse than ``b`` by more than ``margin`` points over the shot counts both have?

    ``{"tests", "lower", "pooled", "pooled_lower", "losses", "beyond", "margin", "untested", "noninferior"}``:
    per shot count the paired comparison and its lower bound (the lower of the bootstrap's and the seeds' t
    interval's), reported; ``pooled`` is :func:`compare_over_shots` over the judged shot counts (each seed's
    mean over them), and it decides; ``losses`` are the shot counts whose own interval lies below 0,
    ``beyond`` those whose observed mean difference is at or below -margin (a loss at one shot count that
    gains at the others would hide). ``untested`` lists the shot counts that could not be judged -- missing
    on one side, without per-image predictions, or with fewer than 2 seed pairs. Non-inferior only when
    nothing is untested, no shot count shows a loss or an observed loss beyond the margin, and the pooled
    lower bound lies above -margin; None when nothing could be paired at all. Decided by the bounds."""
    ka, kb = by_shots(list(a)), by_shots(list(b))
    tests = {k: compare(list(ka[k].values()), list(kb[k].values())) for k in sorted(set(ka) & set(kb))}
    tests = {k: t for k, t in tests.items() if t is not None}
    if not tests:
        return None
    judged = {k: t for k, t in tests.items() if t.get("seed_t_ci") is not None}
    lower = {k: t["ci"][0] for k, t in judged.items()}  # compare's interval: the union of both
    untested = sorted((set(ka) | set(kb)) - set(judged))
    pooled = compare_over_shots(a, b, sorted(judged))
    losses = [k for k, t in tests.items() if verdict(t) == "lower"]
    beyond = [k for k, t in tests.items() if t["diff"] <= -margin and k not in losses]
    pooled_lower = pooled["ci"][0] if pooled is not None and pooled["seed_t_ci"] is not None else None
    return {"tests": tests, "lower": lower, "pooled": pooled, "pooled_lower": pooled_lower, "losses": losses,
            "beyond": beyond, "margin": margin, "untested": untested,
            "noninferior": pooled_lower is not None and not untested and not losses and not beyond
            and pooled_lower > -margin}


def noninferiority_tests(loaded: Dict[str, Any]) -> Dict[str, Optional[Dict[str, Any]]]:
    """Section 9.4's test of every block modification against CoOp (each bootstraps): a rendering computes
    them once and hands them to every section that states a verdict."""
    coop = loaded.get("coop") or {}
    base = coop.get("CoOp") or []
    return {m: noninferiority(coop[m], base) for m in modified_methods(coop)}


def identical_runs(groups: Dict[str, List[Dict[str, Any]]]) -> List[Tuple[str, str, int, int]]:
    """Pairs of methods whose per-image test predictions are the same at some (shots, seed) both ran:
    ``(a, b, runs with the same predictions, runs both have)`` -- two names for one classifier there."""
    out = []
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = by_shots(list(groups[a])), by_shots(list(groups[b]))
            both = same = 0
            for k in set(ra) & set(rb):
                for seed in set(ra[k]) & set(rb[k]):
                    pa, pb = ra[k][seed].get("test_predictions"), rb[k][seed].get("test_predictions")
                    if pa and pb:
                        both += 1
                        same += pa == pb
            if same:
                out.append((a, b, same, both))
    return out
