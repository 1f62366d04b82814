"""Two readings of accuracy the report states with their uncertainty: zero-shot's Wilson interval over the
test images, and the accuracy on the runs' own training images in the test view, pooled over the seeds'
runs (table 7.1 and the fit sentence of :mod:`coop.report.interpret` read the same numbers from here)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from .comparisons import correctness


def wilson(correct: float, n: int, level: float = 0.95) -> Tuple[float, float]:
    """Wilson's score interval of a proportion ``correct``/``n``, in percent."""
    from scipy.stats import norm

    z, p = float(norm.ppf(0.5 + level / 2)), correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def zeroshot_interval(zs: Dict[str, Any]) -> Optional[Tuple[int, float, float]]:
    """(test images, Wilson 95% interval) of a zero-shot record's accuracy; None without a count."""
    acc, c = float(zs["accuracy"]), correctness(zs)
    n = len(c) if c else int(zs.get("n_test") or 0)
    if not n:
        return None
    return (n,) + wilson(sum(c.values()) if c else acc * n / 100, n)


def mean_interval(runs) -> Optional[Tuple[float, float]]:
    """The report's 95% interval (appendix B) of the seeds' mean accuracy, drawn on the figure's means: the
    bootstrap over the test images and the seeds (paired: the seeds share the images), united with the seeds'
    t interval -- the test set's sampling and the seeds' spread both (graders: a test-images-only bar left the
    seeds out). One run: Wilson's interval, as the star's. Without per-image answers: the t interval alone;
    None when nothing can be said (one run without a test-image count)."""
    import numpy as np

    from .stats import _t_interval, difference_bootstrap, widen

    runs = list(runs)
    accs = np.array([float(r["accuracy"]) for r in runs])
    if len(runs) == 1:
        got = zeroshot_interval(runs[0])
        return got[1:] if got else None
    t = _t_interval(accs, 0.95)
    cs = [correctness(r) for r in runs]
    common = sorted(set.intersection(*[set(c) for c in cs])) if all(cs) else []
    if not common:
        return widen(t, None, bounds=(0.0, 100.0))
    C = np.array([[int(c[i]) for i in common] for c in cs], dtype=np.int8)
    return widen(difference_bootstrap(C, seed=0)["ci"], t, bounds=(0.0, 100.0))


def fit_discordant(runs) -> Optional[Tuple[int, int]]:
    """On the runs' own training images (test view), pooled over the seeds: how many only the trained model
    gets right, and how many only zero-shot CLIP does -- the paired counts an exact sign test reads. None
    when a run does not record them per image."""
    got = [r.get("fit_view") or {} for r in runs]
    if not got or any("right" not in g or "zeroshot_right" not in g for g in got):
        return None
    pairs = [(a, b) for g in got for a, b in zip(g["right"], g["zeroshot_right"])]
    return sum(1 for a, b in pairs if a and not b), sum(1 for a, b in pairs if b and not a)


def fit_paired(longer, default) -> Optional[Tuple[int, int]]:
    """Two sets of runs on the same training images (the longer runs and the default ones, paired by seed):
    how many images only the first gets right and how many only the second does, pooled over the seeds --
    the counts an exact sign test reads. None when a seed is missing on either side, a run does not record
    its answers per image, or the two runs of a seed did not see the same images (their zero-shot answers,
    which depend on the images alone, differ)."""
    by_seed = {r.get("seed"): r.get("fit_view") or {} for r in default}
    only = [0, 0]
    for r in longer:
        a, b = r.get("fit_view") or {}, by_seed.get(r.get("seed"))
        if not b or any("right" not in g or "zeroshot_right" not in g for g in (a, b)) \
                or a["zeroshot_right"] != b["zeroshot_right"] or len(a["right"]) != len(b["right"]):
            return None
        only[0] += sum(1 for x, y in zip(a["right"], b["right"]) if x and not y)
        only[1] += sum(1 for x, y in zip(a["right"], b["right"]) if y and not x)
    return (only[0], only[1]) if longer else None


def pooled_fit(runs) -> Optional[Tuple[float, float, int]]:
    """The trained model's and zero-shot CLIP's top-1 on the runs' own training images in the test view
    (each record's ``fit_view``), pooled over the seeds' runs, and how many images: what table 7.1 shows and
    the fit sentence reads. None when a run does not record it (records written before it)."""
    got = [r.get("fit_view") for r in runs]
    if not got or any(not g or not g.get("images") for g in got):
        return None
    n = sum(int(g["images"]) for g in got)
    return (100.0 * sum(int(g["correct"]) for g in got) / n, 100.0 * sum(int(g["zeroshot_correct"]) for g in got) / n, n)
