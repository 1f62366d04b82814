"""Progress bars on a terminal only, and a log file per run (as CoOp writes one per run).

A redirected log (``bash scripts/run_all.sh > sweep.log 2>&1``) gets no carriage-return bars: tqdm
is disabled when stderr is not a terminal, and the runs' own log lines say what happened.
:func:`run_log` copies everything logged during one run into ``<result>.log`` beside its JSON.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm


def on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def bar(*args, disable: bool = False, **kwargs) -> tqdm:
    """``tqdm`` shown only on a terminal (and when not ``disable``)."""
    return tqdm(*args, disable=disable or not on_terminal(), **kwargs)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Path]:
    """Everything logged (INFO and up) while the block runs also goes to ``path`` (a folder that
    cannot be written only loses the log file, never the run)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    except OSError:
        yield path
        return
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
