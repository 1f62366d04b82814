"""Two readings of accuracy the report states with their uncertainty: zero-shot's Wilson interval over the
test images, and the last epoch's training accuracy pooled over the seeds' runs (table 7.1 and the fit
sentence of :mod:`coop.report.interpret` read the same numbers from here)."""
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


def trained_runs(runs) -> List[Dict[str, Any]]:
    """The runs whose last epoch has a training accuracy, counted on at least one crop."""
    return [r for r in runs if (r.get("history") or {}).get("train_acc") and _train_images(r)]


def pooled_train(runs) -> Optional[Tuple[float, int]]:
    """The last epoch's training accuracy over the seeds' runs, their crops pooled (a mean weighted by the
    crops each counted), and how many crops: what table 7.1 shows and the fit sentence reads."""
    got = [(float(r["history"]["train_acc"][-1]), _train_images(r)) for r in trained_runs(runs)]
    n = sum(m for _, m in got)
    return (sum(a * m for a, m in got) / n, n) if n else None


def pooled_zeroshot_train(runs) -> Optional[float]:
    """Zero-shot CLIP's accuracy on the crops the same runs' last-epoch training accuracy counts
    (``zeroshot_train_acc``), pooled over the seeds like :func:`pooled_train`; None when a run does not record it."""
    got = trained_runs(runs)
    if not got or any(r.get("zeroshot_train_acc") is None for r in got):
        return None
    sizes = [_train_images(r) for r in got]
    return sum(float(r["zeroshot_train_acc"]) * m for r, m in zip(got, sizes)) / sum(sizes)


def _train_images(rec: Dict[str, Any]) -> int:
    """The crops the last epoch's training accuracy was counted on: full batches only (the incomplete
    last one is dropped, :func:`coop.methods.train_config.steps_per_epoch`)."""
    from ..methods.train_config import steps_per_epoch

    n = len(rec.get("fewshot_train") or []) or int(rec["shots"]) * int(rec.get("n_classes") or len(rec.get("classnames") or []))
    batch = int((rec.get("config") or {}).get("batch_size") or 32)
    return min(n, steps_per_epoch(n, batch) * batch) if n else 0
