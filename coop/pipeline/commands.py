"""A sweep's pending runs as one shell command each, for the tools users already have.

``run_all.py --print-commands`` prints, one per line, the same ``run_all.py`` command with the same
flags and ``--only RUN`` for every run that is not done yet (zero-shot first: it encodes the test
split that every other run reads from the shared feature cache). Any tool that runs lines of a file
spreads them over cores, GPUs or machines::

    python scripts/run_all.py --print-commands > runs.txt
    xargs -d '\n' -P 2 -I{} sh -c {} < runs.txt           # or: parallel < runs.txt; or a SLURM array
    python scripts/run_all.py                      # collects them: the figure and the report

Paths in the printed commands are absolute, so a line runs the same from any folder or machine that
sees the same files. What the processes must share: the results folder (each run's lock and record)
and the feature cache (``--cache-dir``; writes are merged under a lock). What they must not: nothing
else is written outside those two folders.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import List, Sequence

from .sweep import SweepPlan, pending, run_key

PATH_FLAGS = ("--results", "--data-root", "--split-file", "--cache-dir", "--clip-dir", "--model")
DROP_FLAGS = ("--print-commands",)
DROP_WITH_VALUE = ("--only",)


def _absolute(flag: str, value: str) -> str:
    if flag == "--model" and not (os.sep in value or value.endswith(".pt")):  # a model name, not a file
        return value
    return str(Path(value).expanduser().resolve())


def base_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` without the flags of this listing, with every path made absolute."""
    out, it = [], iter(argv)
    for a in it:
        flag, eq, value = a.partition("=")
        if a in DROP_FLAGS or flag in DROP_WITH_VALUE:
            if flag in DROP_WITH_VALUE and not eq:
                next(it, None)
            continue
        if flag in PATH_FLAGS:
            if eq:
                out.append(f"{flag}={_absolute(flag, value)}")
            else:
                out += [a, _absolute(a, next(it, ""))]
            continue
        out.append(a)
    return out


def commands(plan: SweepPlan, argv: Sequence[str]) -> List[str]:
    """One shell line per pending run of ``plan`` (every run with ``--force``)."""
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0].endswith("run_all.py") else \
        Path(__file__).resolve().parents[2] / "scripts" / "run_all.py"
    todo = [plan.zeroshot, *plan.runs] if plan.force else pending(plan)
    base = [sys.executable, str(script), *base_argv(argv)]
    return [shlex.join([*base, "--only", run_key(cfg)]) for cfg in todo]


def print_commands(plan: SweepPlan, argv: Sequence[str]) -> None:
    for line in commands(plan, argv):
        print(line)
