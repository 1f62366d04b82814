"""Atomic file writes: a reader (or a killed run) sees either the old file or the new one, never half.

Every result JSON, learned context and feature cache goes through here: the data is written to a
temporary file in the same folder, flushed to disk, then renamed over the target (``os.replace`` is
atomic on POSIX and Windows when both paths are on one file system).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

import torch

PathLike = Union[str, os.PathLike]
TMP_SUFFIX = ".tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.lru_cache(maxsize=None)
def _host() -> str:
    """This machine's name as temp files carry it, reduced to [A-Za-z0-9_-]."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "") or "host"


def _writer_tag() -> str:
    """This process as its temp files name it: ``PID@HOST``, so that a folder shared by several machines
    (a SLURM array) never has one machine judge another's writer by a process id that means nothing on it."""
    return f"{os.getpid()}@{_host()}"


def remove_stale_temp_files(folder: PathLike) -> int:
    """Remove the temporary files that killed writers of this machine left below ``folder``
    (``.NAME.PID@HOST.XXXX.tmp`` whose process no longer runs here); a live writer's files, and another
    machine's, are kept (a name without ``@HOST``, from before hosts were named, counts as this machine's).
    Returns how many were removed."""
    here = _host()
    removed = 0
    for p in Path(folder).rglob(f".*{TMP_SUFFIX}") if Path(folder).is_dir() else []:
        parts = p.name.rsplit(".", 3)  # [".NAME", "PID@HOST", "XXXX", "tmp"]
        pid, _, host = parts[1].partition("@") if len(parts) == 4 else ("", "", "")
        if pid.isdigit() and (host or here) == here and not _alive(int(pid)):  # no host: an older version's
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{_writer_tag()}.", suffix=TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: PathLike, obj: Any, indent: int = 2) -> None:
    write_text(target, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def torch_save(obj: Any, target: PathLike) -> None:
    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def write_bytes(target: PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def aside_name(path: Path) -> Path:
    """Where :func:`move_aside` puts ``path``: beside it, named by the UTC time, never read as a result."""
    import datetime

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return path.with_name(f"{path.name}.set-aside-{stamp}")


def move_aside(path: Path, why: str) -> Path:
    """Rename ``path`` to :func:`aside_name` (never delete it) and say so; returns the new path."""
    import logging

    target = aside_name(Path(path))
    os.replace(path, target)
    logging.getLogger(__name__).warning("moved %s aside to %s (%s)", path, target.name, why)
    return target

