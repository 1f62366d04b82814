"""The sweep's estimate of the time left is weighed by each run's work (issue 28: at real size a plain
runs-left average is off by hours: the zero-shot run encodes the test split, a 4-shot run 20,000 crops,
a baseline takes seconds, and the runs of one seed share their crops)."""
from __future__ import annotations

import pytest

from coop.methods.baselines import BaselineConfig
from coop.methods.train_config import TrainConfig
from coop.methods.zeroshot import ZeroShotConfig
from coop.pipeline.eta import STEP_UNITS, left, work_units


def test_each_crop_is_counted_once_and_steps_and_baselines_weigh_little(synthetic_split):
    from coop.data.split import fewshot_validation

    train = synthetic_split.train
    n_cls = len(synthetic_split.classnames)
    todo = [ZeroShotConfig(), TrainConfig(shots=1, seed=1, epochs=4), TrainConfig(shots=2, seed=1, epochs=6),
            TrainConfig(shots=2, seed=2, epochs=6, views=3), BaselineConfig(method="lp", shots=2, seed=1),
            BaselineConfig(method="tip", shots=2, seed=1), BaselineConfig(method="tip_f", shots=2, seed=1)]
    u = work_units(todo, synthetic_split)
    n_test = len(synthetic_split.test)
    assert u[0] == n_test + 1  # the test split, encoded by the first run
    # 4 crops of each 1-shot image, one step per epoch, and the test views of its training images and of the
    # few-shot validation set (1 a class each)
    assert u[1] == n_cls * 1 * 4 + STEP_UNITS * 4 + n_cls * 1 + n_cls * 1
    # the 2-shot run of seed 1 encodes only what the 1-shot run did not: 2 more crops of its first images,
    # and one more training and one more validation image a class in the test view (both sets are nested)
    assert u[2] == n_cls * (6 - 4) + n_cls * 6 + STEP_UNITS * 6 + n_cls * 1 + n_cls * 1
    # --views 3: 3 crops an image, another crop seed; seed 2's training and validation images that seed 1's did not count
    from coop.data.split import fewshot
    val = {s: {it[0] for it in fewshot_validation(synthetic_split.val, 2, s)["items"]} for s in (1, 2)}
    seen = {s: {it[0] for it in fewshot(train, 2, s)} for s in (1, 2)}
    assert u[3] == n_cls * 2 * 3 + STEP_UNITS * 6 + len(val[2] - val[1]) + len(seen[2] - seen[1])
    assert u[4] < u[5] and u[6] < u[5]  # Tip-Adapter encodes its views once; -F reuses them
    assert left(10.0, [1, 3], 1) == pytest.approx(30.0) and left(10.0, [2, 2, 2], 2) == pytest.approx(5.0)
