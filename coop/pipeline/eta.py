"""How much work each pending run of a sweep is, for an estimate of the time left that holds at real size.

A plain "elapsed / runs done x runs left" is wrong by hours at real size: the zero-shot run encodes the
test split, a 4-shot run encodes 20,000 fresh crops, a baseline run takes seconds from the cache, and the
runs of one seed share their crops (the 2-shot run encodes only what the 1-shot run did not). The unit
here is one image through the image encoder; a training step counts as :data:`STEP_UNITS` of them (on
2 CPU cores a CoOp step of batch 32 costs about as much as encoding 5 images, check_env's measurements).
The estimate is ``elapsed x units left / units done``, so it calibrates itself on the machine as it runs.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ..data.split import fewshot
from ..methods.baselines import BaselineConfig
from ..methods.train_config import TrainConfig, crop_plan

STEP_UNITS = 5.0
BASELINE_UNITS = 50.0  # a baseline from the cache: seconds (Tip's views are counted as crops below)


def work_units(todo: Sequence, train_items, n_test: int) -> List[float]:
    """Units of each config of ``todo``, in order, counting each crop once (the first run that needs it)."""
    from ..methods.zeroshot import ZeroShotConfig

    seen: Dict[Tuple[str, str], int] = {}  # (crop seed, image) -> crops already counted
    test_done = False
    out: List[float] = []
    for cfg in todo:
        units = 0.0
        if not test_done:  # whichever run comes first encodes the test split
            units, test_done = float(n_test), True
        if isinstance(cfg, ZeroShotConfig) or getattr(cfg, "method", None) == "zeroshot":
            out.append(units + 1.0)
            continue
        if isinstance(cfg, BaselineConfig):
            images = fewshot(train_items, cfg.shots, cfg.seed, cfg.sampling)
            new = [it[0] for it in images if ("tip", it[0]) not in seen] if cfg.method != "lp" else []
            for rel in new:
                seen[("tip", rel)] = cfg.tip_views
            out.append(units + BASELINE_UNITS + cfg.tip_views * len(new))
            continue
        if isinstance(cfg, TrainConfig):
            name, plan = crop_plan(cfg)
            need = len(set(plan))
            images = fewshot(train_items, cfg.shots, cfg.seed, cfg.sampling)
            for it in images:
                have = seen.get((name, it[0]), 0)
                units += max(0, need - have)
                seen[(name, it[0])] = max(have, need)
            batch = cfg.batch_size or 32
            steps = cfg.epochs * max(1, len(images) // batch) if batch > 1 else cfg.epochs * len(images)
            out.append(units + STEP_UNITS * steps)
            continue
        out.append(units + BASELINE_UNITS)
    return out


def left(elapsed: float, units: Sequence[float], done: int) -> float:
    """Seconds left after ``done`` of the runs whose work is ``units``, at the rate seen so far."""
    did = sum(units[:done])
    return elapsed * sum(units[done:]) / did if did > 0 else float("nan")
