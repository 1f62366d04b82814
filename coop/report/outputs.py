"""The figure and the report are outputs like any other: :mod:`coop.runs.outputs` decides what they may replace.

A figure is ours when its PNG/PDF metadata carries :data:`FIGURE_TITLE` (written by
:func:`coop.report.plot.plot_fewshot`); a report file is ours when it holds the results markers
(only the part between them is replaced) or the line that :mod:`coop.report.document` writes into
every report it makes. Anything else of the same name is refused in one line; with ``--force`` it
is moved aside (``NAME.set-aside-<UTC time>``), never destroyed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..runs.outputs import BEGIN, END, FIGURE_TITLE, GENERATED_LINE, claim, figure_is_ours, report_is_ours  # noqa: F401


def check_may_overwrite(paths: Iterable[str | os.PathLike], force: bool, flag: str = "--out") -> None:
    """Each existing file of ``paths`` must be our own figure or report; with ``force`` a foreign one is
    moved aside first."""
    for p in map(Path, paths):
        claim(p, "figure" if p.suffix.lower() in (".png", ".pdf") else "report", force, flag)
