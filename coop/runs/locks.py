"""Who may write into a results folder, and which run, at one time.

Two kinds of lock (``fcntl.flock`` on small files in the results folder; released by the kernel when
a process ends, however it ends):

* the **folder lock** ``RESULTS/.lock``: a sweep (``run_all``) holds it *exclusively* from its
  first check to its report, so a second sweep on the same folder is refused at once, in one line,
  instead of replacing the first one's runs with other settings; a single run (``train_coop.py``,
  ``zeroshot.py``, ``run_all --only``) holds it *shared*, so many single runs -- the lines of
  ``run_all --print-commands`` under ``xargs -P``, GNU parallel or a SLURM array -- work side by side,
  and none of them beside a sweep;
* the **run lock** ``RESULTS/.locks/<run>.lock``: held exclusively while one run computes and writes
  its result, so two processes never compute the same run at once; the second is refused.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from ..utils.errors import UserError
from ..utils.flocks import holder

FOLDER_LOCK = ".lock"
RUN_LOCKS = ".locks"


@contextlib.contextmanager
def _flock(path: Path, exclusive: bool, refused: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # created once, never written: its bytes and time stay
        try:
            fcntl.flock(f, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(refused.format(holder=holder(path))) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def folder_lock(results: str | os.PathLike, exclusive: bool):
    """The results folder's lock: exclusive for a sweep, shared for a single run (see the module's text)."""
    results = Path(results)
    if exclusive:
        why = (f"another process is writing to {results}{{holder}} (a sweep, or single runs such as run_all --only "
               f"lines): a sweep needs the folder to itself, or the two would replace each other's runs. Wait for "
               f"it to finish, or pass another --results")
    else:
        why = (f"a sweep is running on {results}{{holder}}: wait for it to finish, or pass another --results")
    return _flock(results / FOLDER_LOCK, exclusive, why)


def run_lock(results: str | os.PathLike, result_file: str | os.PathLike):
    """The lock of one run, named by its result file (a path below ``results``)."""
    results, result_file = Path(results), Path(result_file)
    try:
        name = result_file.resolve().relative_to(results.resolve()).as_posix()
    except ValueError:  # an --out outside the results folder
        name = result_file.resolve().as_posix().lstrip("/")
    lock = results / RUN_LOCKS / (name.replace("/", "__") + ".lock")
    return _flock(lock, True, f"another process is computing {result_file} now{{holder}}; wait for it to finish "
                              f"(its result is then reused), or pass another --results")
