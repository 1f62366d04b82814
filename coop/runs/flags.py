"""One guard against flags that would be ignored: a flag the user set either changes a run or is refused.

Every script that makes runs builds them with a pure function of its parsed flags (``runs_of(args)``,
a list of :class:`coop.runs.protocol.RunConfig`). :func:`refuse_ignored` asks that function, for each flag
the user set, what the runs would be with that flag left at its default: if nothing changes, the flag
does nothing in this command (another protocol's flag, a setting a protocol fixes, templates with a
saved context) and the command stops in one line naming it -- instead of running and recording
settings the user did not ask for. Flags the script acts on itself (``--force``, ``--print-commands``,
``--out``) are named by the script (``acts_on``); nothing else is exempt, so a new flag or a new protocol
is covered without a list to keep.
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import asdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from ..utils.errors import UserError

GIVEN = "_coop_given"  # the namespace attribute naming the options the user set (coop.runs.cli_args)
FLAGS = "_coop_flags"  # dest -> the option as typed (--n-ctx)


def given(args: argparse.Namespace) -> List[str]:
    """The destinations of the options the user set on the command line (in the order of the parser)."""
    return list(getattr(args, GIVEN, ()))


def _snapshot(runs: Sequence[Any]) -> List[tuple]:
    return [(type(r).__name__, repr(sorted(asdict(r).items()))) for r in runs]


def refuse_ignored(args: argparse.Namespace, runs_of: Callable[[argparse.Namespace], Sequence[Any]],
                   acts_on: Iterable[str] = (), what: str = "this command",
                   hints: Optional[Dict[str, str]] = None) -> None:
    """Raise a one-line :class:`UserError` for the first flag the user set that changes none of the runs
    ``runs_of(args)`` makes (compared with the same flags, that one at its default)."""
    defaults: Dict[str, Any] = getattr(args, "_coop_defaults", {})
    base = _snapshot(runs_of(args))
    for dest in given(args):
        if dest in set(acts_on) or dest not in defaults or getattr(args, dest) == defaults[dest]:
            continue  # a flag typed at its default changes nothing by definition, and asks for nothing else
        probe = copy.copy(args)
        setattr(probe, dest, defaults[dest])
        try:
            other = _snapshot(runs_of(probe))
        except UserError:
            continue  # the command needs the flag (e.g. the default would be refused): it is used
        if other == base:
            flag = getattr(args, FLAGS, {}).get(dest, "--" + dest.replace("_", "-"))
            hint = (hints or {}).get(dest)
            raise UserError(f"{flag} does nothing in {what}: it would be ignored and the records would not say so; "
                            + (f"use {hint}" if hint else "leave it out"))
