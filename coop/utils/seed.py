"""The seed recipe every run applies before it draws a random number."""
from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed ``random``, ``numpy``, ``torch`` and every CUDA device; make cuDNN deterministic.

    Seed 0 is a valid seed: it is applied like any other (no ``if seed:`` shortcut).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
