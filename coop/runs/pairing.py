"""A trained run's two files -- its learned context (``.pt``) and its record (``.json``) -- are one run only
when both carry the same ``run_id``: the run writes the ``.pt``, then the ``.json``, so a kill or a full disk
between the two writes leaves a pair of two different runs. The one place that reads those ids, for
:mod:`coop.runs.results` (a record whose context is another run's is no result) and
:mod:`coop.methods.context` (``--context`` refuses such a pair).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional

import torch

_context_ids: Dict[tuple, Optional[str]] = {}


def context_run_id(path: Path) -> Optional[str]:
    """The run_id stored in a learned-context file, None if it is missing or unreadable (read once per
    process for an unchanged file: same device, inode, mtime and size -- a rewrite is a new file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _context_ids:
        try:
            _context_ids[key] = torch.load(path, map_location="cpu", weights_only=True).get("run_id")
        except Exception:
            _context_ids[key] = None
    return _context_ids[key]


def record_run_id(path: Path) -> Optional[str]:
    """The run_id of a record (``.json``), None if it is missing, unreadable or has none."""
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
        return rec.get("run_id") if isinstance(rec, dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def killed_between_writes(path: Path, schema: int) -> bool:
    """A complete-looking record (``path``, of ``schema``) beside a ``.pt`` of another run: a rerun that was
    killed between its two writes."""
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (isinstance(rec, dict) and rec.get("schema") == schema and rec.get("complete") is True
            and rec.get("context_file")):
        return False
    other = context_run_id(Path(path).parent / str(rec["context_file"]))
    return other is not None and other != rec.get("run_id")
