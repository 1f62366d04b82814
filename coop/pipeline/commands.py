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

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .sweep import SweepPlan, narrowed, pending, run_key

log = logging.getLogger(__name__)

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


def _script() -> Path:
    return Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0].endswith("run_all.py") else \
        Path(__file__).resolve().parents[2] / "scripts" / "run_all.py"


def commands(plan: SweepPlan, argv: Sequence[str], only: Optional[Sequence[str]] = None) -> List[str]:
    """One shell line per pending run of ``plan`` (every run with ``--force``), or of the runs named
    by ``only``."""
    plan, with_zeroshot = narrowed(plan, only) if only is not None else (plan, True)
    todo = pending(plan, with_zeroshot=with_zeroshot)  # with --force: every run, each checked as the sweep would
    base = [sys.executable, str(_script()), *base_argv(argv)]
    return [shlex.join([*base, "--only", run_key(cfg)]) for cfg in todo]


def collect_command(argv: Sequence[str]) -> str:
    """The command that draws the figure and the report once the lines are done: the same flags,
    without ``--force`` (it would make the sweep redo every run, one after another)."""
    return shlex.join([sys.executable, str(_script()), *[a for a in base_argv(argv) if a != "--force"]])


def print_commands(plan: SweepPlan, argv: Sequence[str], only: Optional[Sequence[str]] = None) -> None:
    """The lines on stdout (nothing else: they are fed to xargs, parallel or an array job); how many,
    and how to collect them, on stderr."""
    lines = commands(plan, argv, only)
    for line in lines:
        print(line)
    if not lines:
        log.info("nothing to do: %s done; collect them: %s", "the runs of --only are" if only else "every run is",
                 collect_command(argv))
        return
    log.info("%d run%s to do%s; when %s done, collect them: %s", len(lines), "" if len(lines) == 1 else "s",
             " (zero-shot first: it encodes the test split the others read)" if len(lines) > 1
             and lines[0].endswith("zeroshot") else "", "it is" if len(lines) == 1 else "they are",
             collect_command(argv))
