"""Errors a user can act on, and the wrapper that turns them into one clear line.

Library code raises :class:`UserError` for problems the user can fix (a wrong path, missing
weights, a bad flag). Command-line entry points wrap their ``main`` with :func:`cli`, which prints
the message without a traceback and exits non-zero. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool killed by it


class UserError(Exception):
    """A problem the user can fix. The message says what is wrong, where, and how to fix it."""


def setup_logging(verbose: bool = False) -> None:
    """Plain one-line log records on stderr, as the scripts print them."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )


_HINTS = {errno.EACCES: "fix its permissions or choose another folder", errno.EPERM: "fix its permissions or "
          "choose another folder", errno.ENOSPC: "free some space", errno.EROFS: "it is on a read-only file system: "
          "choose another folder", errno.EISDIR: "it is a folder: give a file name", errno.ENOTDIR: "a file stands "
          "where a folder is needed", errno.EDQUOT: "your disk quota is full: free some space"}


def os_error_line(e: OSError) -> str:
    """One line for a failed read or write: what failed, where, and what to do."""
    where = e.filename or ""
    name = Path(where).name if where else ""
    if name.startswith(".") and name.endswith(".tmp"):  # our atomic writes' temp file: name the folder
        where = str(Path(where).parent)
    hint = _HINTS.get(e.errno, "check the path, its permissions and the free space")
    return f"{e.strerror or e}: {where} ({hint}; see --help for the output flags)" if where else f"{e} ({hint})"


_interrupted = False


def _on_sigint(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise the Ctrl-C that Python swallowed: one that arrives while a ``__del__`` or a garbage
    collection runs (a DataLoader's workers shutting down between two runs, say) is printed as
    "Exception ignored" and lost. The sweep calls this before each run."""
    if _interrupted:
        raise KeyboardInterrupt


def cli(main: Callable[[Optional[Sequence[str]]], int | None]) -> Callable[[Optional[Sequence[str]]], int]:
    """Wrap a script's ``main(argv)``: user errors become one line on stderr and exit code 2."""

    def wrapped(argv: Optional[Sequence[str]] = None) -> int:
        global _interrupted
        _interrupted, previous = False, None
        # only over Python's own handler: an inherited "ignore" (a background job of a script) or a
        # caller's handler stays as it is
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous = signal.signal(signal.SIGINT, _on_sigint)
        try:
            code = int(main(argv) or 0)
            raise_if_interrupted()  # a Ctrl-C that was swallowed still ends as one
            return code
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USER_ERROR
        except BrokenPipeError:  # the reader of stdout stopped early (| head -n 1): stop quietly, as Unix tools do
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return EXIT_BROKEN_PIPE
        except OSError as e:  # a folder that cannot be written, a full disk: the machine's state, not a bug
            print(f"error: {os_error_line(e)}", file=sys.stderr)
            return EXIT_USER_ERROR
        except RuntimeError as e:
            if "PytorchStreamWriter" not in str(e) and "file write failed" not in str(e):
                raise
            print(f"error: a file could not be written ({str(e).splitlines()[0]}); free some space or choose "
                  f"another folder", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted: finished results are kept, unfinished ones were not written", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            _interrupted = False  # a later in-process call starts clean
            if main.__module__ == "__main__":  # the process ends next: its last garbage collection would walk
                gc.freeze()  # torch's and torchvision's ~10^6 module objects for about 1 s; the OS frees it all anyway

    wrapped.__wrapped__ = main  # type: ignore[attr-defined]
    wrapped.__doc__ = main.__doc__
    return wrapped
