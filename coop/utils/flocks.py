"""File locks (``fcntl.flock``): who holds one, and waiting for one without ever waiting silently.

Every lock of the project is a ``flock`` on a small file, released by the kernel when its process ends,
however it ends. A process that is *stopped* (Ctrl-Z, SIGSTOP, a suspended job) keeps its locks, so a
plain blocking ``flock`` could wait forever without a word. :func:`wait_for_lock` is the one way to
wait for a lock: after a few seconds it says which process holds it (pid and command, from Linux's
``/proc/locks``; and that it is stopped, with how to resume it) and says it again periodically until
the lock is free. Locks that refuse at once instead of waiting (a results folder's, a run's:
:mod:`coop.runs.locks`) name the holder with :func:`holder`.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import IO, Optional

log = logging.getLogger(__name__)

FIRST_NOTICE_S = 3.0   # a lock is usually held for well under a second: say something after this
REPEAT_NOTICE_S = 30.0  # then again every this many seconds, for as long as it takes
POLL_S = 0.1


def holder_pid(path: Path) -> Optional[int]:
    """The process holding a ``flock`` on ``path`` (the kernel's list of file locks, Linux's /proc/locks),
    or None when it cannot be told (no such lock, another system). The lock file itself is never written."""
    try:
        st = path.stat()
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if "FLOCK" in parts and want in parts and "->" not in parts:  # "->": a process waiting, not holding
                return int(parts[parts.index(want) - 1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    return " ".join(raw.split())[:300] or "?"


def is_stopped(pid: int) -> bool:
    """True if ``pid`` is stopped (Ctrl-Z, SIGSTOP) or stopped by a debugger: it holds its locks until resumed."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] in "Tt"
    except (OSError, ValueError, IndexError):
        return False


def _stopped_hint(pid: int) -> str:
    return (f", which is stopped (Ctrl-Z or SIGSTOP) and keeps the lock until it runs again: resume it "
            f"(fg, or kill -CONT {pid}) or end it (kill {pid})") if is_stopped(pid) else ""


def holder(path: Path) -> str:
    """`` (pid N: COMMAND)`` naming the process that holds the lock at ``path`` (and, if it is stopped,
    how to resume it), for a message; empty when it cannot be told or when it is this process."""
    pid = holder_pid(path)
    if pid is None or pid == os.getpid():
        return ""
    return f" (pid {pid}: {_command(pid)}{_stopped_hint(pid)})"


def wait_for_lock(f: IO, path: Path, what: str, exclusive: bool = True) -> None:
    """Take the ``flock`` of the open file ``f`` (the file at ``path``), waiting as long as it takes,
    but never silently: after :data:`FIRST_NOTICE_S` seconds, and every :data:`REPEAT_NOTICE_S` seconds
    after that, a warning says what is waited for (``what``, e.g. "the feature cache in DIR"), which
    process holds it, whether that process is stopped, and how to end the wait."""
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    t0 = time.monotonic()
    next_notice = FIRST_NOTICE_S
    while True:
        time.sleep(POLL_S)
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
            if time.monotonic() - t0 >= FIRST_NOTICE_S:
                log.warning("got the lock of %s after %.0f s", what, time.monotonic() - t0)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - t0
        if waited >= next_notice:
            pid = holder_pid(path)
            who = (f"pid {pid} ({_command(pid)}){_stopped_hint(pid)}" if pid is not None and pid != os.getpid()
                   else "another process (this system does not say which)")
            log.warning("waiting for the lock of %s (%s) for %.0f s now: it is held by %s; this run goes on "
                        "as soon as that process lets go of it or ends (Ctrl-C stops waiting)", what, path, waited, who)
            next_notice = waited + REPEAT_NOTICE_S
