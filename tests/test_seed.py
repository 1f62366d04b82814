import random

import numpy as np
import pytest
import torch

from coop.utils.seed import set_seed


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_set_seed_makes_every_generator_repeat(seed):
    set_seed(seed)
    a = (random.random(), np.random.rand(), torch.rand(3))
    torch.backends.cudnn.benchmark = True
    set_seed(seed)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True


def test_seeds_differ_and_bad_seeds_are_refused():
    set_seed(0)
    x = torch.rand(3)
    set_seed(1)
    assert not torch.equal(x, torch.rand(3))
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError):
            set_seed(bad)
