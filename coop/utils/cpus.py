"""How many DataLoader processes a machine gets by default (light to import: the flags' help text asks for it)."""
from __future__ import annotations

import os


def default_workers() -> int:
    """Half the cores (the encoder's threads use the rest), at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) // 2))
