"""Which records a sweep's figure and report were drawn from, so that a rerun redraws them only when that
changed: a small ``.drawn.json`` in the results folder maps each output to the fingerprint of the records it
shows (:func:`coop.runs.selection.fingerprint`, from the records' run ids -- not file times, so results copied
in with old times count too)."""
from __future__ import annotations

import json
from pathlib import Path

from ..utils.atomic import write_json

DRAWN = ".drawn.json"  # in the results folder: {output file: fingerprint of the records it shows}


def _drawn(results: Path) -> dict:
    try:
        return json.loads((Path(results) / DRAWN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_stale(path: Path, results: Path, fingerprint: str) -> bool:
    """Missing, or drawn from other records than those the results folder holds now."""
    return not Path(path).exists() or _drawn(results).get(str(Path(path).resolve())) != fingerprint


def mark_drawn(path: Path, results: Path, fingerprint: str) -> None:
    write_json(Path(results) / DRAWN, {**_drawn(results), str(Path(path).resolve()): fingerprint})
