"""A sweep's pending runs as one shell command each, for the tools users already have.

``run_all.py --print-commands`` prints, one per line, the same ``run_all.py`` command with the same
flags and ``--only RUN`` for every run that is not done yet (zero-shot first: it encodes the test
split that every other run reads from the shared feature cache). Any tool that runs lines of a file
spreads them over cores, GPUs or machines::

    python scripts/run_all.py --print-commands > runs.txt
    xargs -d '\n' -P 2 -I{} sh -c {} < runs.txt           # or: parallel < runs.txt; or a SLURM array
    python scripts/run_all.py                      # collects them: the figure and the report

Paths in the printed commands are absolute, so a line runs the same from any folder or machine that
sees the same files: every path flag (a ``--model`` only when it is a checkpoint's path, not a name
that load_clip looks up: ``ViT-B/32`` or ``random:tiny`` stay names), and the folders that ``$COOP_CACHE`` and
``$COOP_CLIP_DIR`` name when no flag does (set at the head of each line, ``COOP_CACHE=/abs/path
python ...``, so a line run elsewhere builds no second cache). A run named twice by ``--only`` is
listed once. What the processes must share: the results folder (each run's lock and record) and the
feature cache (``--cache-dir``; writes are merged under a lock). What they must not: nothing else is
written outside those two folders.
"""
from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..utils.paths import CLIP_DIR_ENV
from .sweep import SweepPlan, narrowed, pending, run_key

log = logging.getLogger(__name__)

PATH_FLAGS = ("--results", "--data-root", "--split-file", "--cache-dir", "--clip-dir", "--model")
DROP_FLAGS = ("--print-commands",)
DROP_WITH_VALUE = ("--only",)
# environment variables that stand for a path flag when it is not given (an empty one counts as unset)
PATH_ENV = {"COOP_CACHE": "--cache-dir", CLIP_DIR_ENV: "--clip-dir"}


def _is_model_name(value: str) -> bool:
    """What load_clip reads as a name before any file of that name: random:..., an OpenAI model name."""
    from ..model.clip_loader import RANDOM_PREFIX, _clip

    return value.startswith(RANDOM_PREFIX) or value in _clip().available_models()


def _absolute(flag: str, value: str) -> str:
    if flag == "--model" and (_is_model_name(value) or not (Path(value).expanduser().exists() or os.sep in value
                                                            or value.endswith(".pt"))):
        return value  # a name (RN50, ViT-B/32, random:tiny) stays a name; a checkpoint's path becomes absolute
    return str(Path(value).expanduser().resolve())


def _env_prefix(argv: Sequence[str]) -> List[str]:
    """``VAR=/absolute/path`` for each path variable that is set and not overridden by its flag: a
    relative ``COOP_CACHE=cache`` means another folder wherever a line runs."""
    given = {a.partition("=")[0] for a in argv}
    out = []
    for var, flag in PATH_ENV.items():
        value = os.environ.get(var)
        if value and flag not in given:
            out.append(f"{var}={shlex.quote(str(Path(value).expanduser().resolve()))}")
    return out


def _line(words: Sequence[str], argv: Sequence[str]) -> str:
    return " ".join([*_env_prefix(argv), shlex.join(words)])


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
    return [_line([*base, "--only", run_key(cfg)], argv) for cfg in todo]  # narrowed(): each run once


def collect_command(argv: Sequence[str]) -> str:
    """The command that draws the figure and the report once the lines are done: the same flags,
    without ``--force`` (it would make the sweep redo every run, one after another)."""
    return _line([sys.executable, str(_script()), *[a for a in base_argv(argv) if a != "--force"]], argv)


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
