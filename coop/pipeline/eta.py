"""How much work each pending run of a sweep is, for an estimate of the time left that holds at real size.

A plain "elapsed / runs done x runs left" is wrong by hours at real size: the zero-shot run encodes the
test split, a 4-shot run encodes 20,000 fresh crops, a baseline run takes seconds from the cache, and the
runs of one seed share their crops (the 2-shot run encodes only what the 1-shot run did not). The unit
here is one image through the image encoder; a training step counts as :data:`STEP_UNITS` of them (on
2 CPU cores a CoOp step of batch 32 costs about as much as encoding 5 images, check_env's measurements).
The estimate is ``elapsed x units left / units done``, so it calibrates itself on the machine as it runs.
"""
from __future__ import annotations

from typing import List, Sequence

from ..runs.protocol import WorkBudget

STEP_UNITS = WorkBudget.STEP_UNITS
BASELINE_UNITS = WorkBudget.CACHED_UNITS


def work_units(todo: Sequence, split) -> List[float]:
    """Units of each config of ``todo``, in order, counting each crop once (the first run that needs it)
    and the test split once (the first run encodes it); each kind of run says its own
    (:meth:`coop.runs.protocol.RunConfig.work`)."""
    budget = WorkBudget(split)
    out = [cfg.work(budget) for cfg in todo]
    if out:
        out[0] += float(len(split.test))
    return out


def left(elapsed: float, units: Sequence[float], done: int) -> float:
    """Seconds left after ``done`` of the runs whose work is ``units``, at the rate seen so far."""
    did = sum(units[:done])
    return elapsed * sum(units[done:]) / did if did > 0 else float("nan")
