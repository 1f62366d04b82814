"""This process's peak resident memory, for records and benchmarks."""
from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB).

    Linux's VmHWM is per address space, so a fresh child starts from zero; ``ru_maxrss`` would
    carry the parent's peak across fork+exec and is only the fallback (kB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2 ** 20 if sys.platform == "darwin" else r / 1024
