"""Errors a user can act on, and the wrapper that turns them into one clear line.

Library code raises :class:`UserError` for problems the user can fix (a wrong path, missing
weights, a bad flag). Command-line entry points wrap their ``main`` with :func:`cli`, which prints
the message without a traceback and exits non-zero. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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


def cli(main: Callable[[Optional[Sequence[str]]], int | None]) -> Callable[[Optional[Sequence[str]]], int]:
    """Wrap a script's ``main(argv)``: user errors become one line on stderr and exit code 2."""

    def wrapped(argv: Optional[Sequence[str]] = None) -> int:
        try:
            return int(main(argv) or 0)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted: finished results are kept, unfinished ones were not written", file=sys.stderr)
            return EXIT_INTERRUPTED

    wrapped.__wrapped__ = main  # type: ignore[attr-defined]
    wrapped.__doc__ = main.__doc__
    return wrapped
