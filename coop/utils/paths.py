"""Where the project's own folders are, so that every script works from any current folder.

Defaults (``data``, ``splits/caltech101.json``, ``results``, ``report``) are resolved against the
project's root, the folder that holds ``coop/``; paths a user types stay relative to the current
folder, as everywhere else.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # coop/utils/paths.py -> the project
DATA = PROJECT_ROOT / "data"
SPLIT = PROJECT_ROOT / "splits" / "caltech101.json"
RESULTS = PROJECT_ROOT / "results"
REPORT = PROJECT_ROOT / "report" / "REPORT.md"  # what a student hands in: rendered, no markers
REPORT_TEMPLATE = PROJECT_ROOT / "report" / "REPORT.template.md"  # its hand-written text, with the marked blocks
CLIP_DIR_ENV = "COOP_CLIP_DIR"


def default_clip_dir() -> Path:
    """CLIP's weights folder: ``$COOP_CLIP_DIR``, else CLIP's own ``~/.cache/clip``."""
    return Path(os.environ.get(CLIP_DIR_ENV) or os.path.expanduser("~/.cache/clip"))
