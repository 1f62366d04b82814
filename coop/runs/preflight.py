"""Checks that run before any work: every flag a user can get wrong fails here, in one line.

``check_run(cfg)`` takes a run's config (any :class:`coop.runs.protocol.RunConfig`): its own ranges, the
device, the split file (its shape, and for CoOp whether the prompts fit CLIP's 77 tokens), and the
folders the run writes to (not a file, writable).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..model.device import resolve_device
from ..utils.errors import UserError
from ..model.precision import check_precision
from ..data.split import read_split


def check_writable_dir(path: str | os.PathLike, flag: str) -> None:
    """``path`` is a folder we can write to, or can be created as one."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p} is a file, not a folder; give a folder")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {p}: {existing} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {p}: {existing} is not writable; choose another folder or fix its permissions")


def check_output_file(path: str | os.PathLike, flag: str) -> None:
    """``path`` names a file we can write (not a folder; its folder can be made and written)."""
    p = Path(path).expanduser()
    if p.is_dir() or str(path).endswith(os.sep):
        raise UserError(f"{flag} {p} is a folder; give the name of a file (one inside {p}, for example)")
    check_writable_dir(p.parent, flag)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{flag} {p} exists and is not writable; choose another file or fix its permissions")


def check_run(cfg) -> None:
    cfg.check()
    check_precision(cfg.precision, resolve_device(cfg.device))
    cfg.check_split(read_split(cfg.split_file))  # the prompt's length, enough few-shot images: each kind its own
    check_writable_dir(cfg.results, "--results")
    from ..features.cache import cache_dir_source

    check_writable_dir(*cache_dir_source(cfg.cache_dir))  # $COOP_CACHE is named as such when it set the folder
    check_outside_images(cfg)


def check_outside_images(cfg) -> None:
    """Nothing we write may land among the class folders: the next run would read it as a class."""
    from ..features.cache import cache_dir_source

    try:
        images = cfg.data().find_image_root(cfg.data_root).resolve()
    except UserError:
        return  # no data yet: the run itself says so
    cache, cache_flag = cache_dir_source(cfg.cache_dir)
    for flag, folder in (("--results", cfg.results), (cache_flag, cache)):
        p = Path(folder).expanduser().resolve()
        if p == images or images in p.parents:
            raise UserError(f"{flag} {folder} is inside the image folder {images}: the next run would read it as a "
                            f"class. Choose a folder outside it")
