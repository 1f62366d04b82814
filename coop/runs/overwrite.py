"""Nothing replaced by surprise: what may overwrite a file at a result's path, and where the rest goes.

A result file we cannot use -- written by a newer version, refused by validation, a CoOp record whose
context file moved away, a user's own file -- is never taken for "not done yet" and overwritten: the
run stops with one line naming it (:func:`coop.runs.results.existing`), and only ``--force`` moves it
aside, renamed ``NAME.set-aside-<UTC time>`` beside it (with its context file), where no reader looks.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..utils.atomic import move_aside
from ..utils.errors import UserError
from .results import read_result, why_unreadable

log = logging.getLogger(__name__)


def set_aside(path: str | os.PathLike) -> None:
    """Move an existing file at ``path`` that is not a usable result -- a newer schema, a record validation
    refuses, a ``.json`` whose context file moved away, a user's file -- and its context file aside
    under :func:`aside_name`, instead of replacing it: what we cannot read we never destroy."""
    path = Path(path)
    if not path.exists() or path.is_dir() or why_unreadable(path) is None:
        return
    for p in (path, path.with_suffix(".pt")) if path.suffix == ".json" else (path,):
        if p.is_file():
            move_aside(p, "it was not a result this version can use")


def check_may_replace(path: str | os.PathLike, kinds: tuple, force: bool = False) -> None:
    """Refuse to replace a file at ``path`` that is not a result of one of ``kinds`` (another run's
    record, a user's file), unless ``force``: nothing is overwritten by surprise. With ``force`` a file
    that is not a usable result is moved aside (:func:`set_aside`), not replaced."""
    path = Path(path)
    if not path.exists():
        return
    if force:
        set_aside(path)
        return
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name for the result")
    rec = read_result(path)
    if rec is None or rec.get("kind") not in kinds:
        what = f"a {rec.get('kind')} result ({rec.get('method')})" if rec else "not a result file of this project"
        raise UserError(f"{path} exists and is {what}; pass --force to replace it, or write elsewhere with --out")
