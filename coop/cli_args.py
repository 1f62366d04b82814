"""Parsing of the list-valued flags shared by the scripts (``--shots "1 2 4"``, ``--seeds 1,2,3``)."""
from __future__ import annotations

from typing import List

from .errors import UserError


def parse_int_list(text: str, flag: str, minimum: int = 1) -> List[int]:
    """``"1 2 4"`` or ``"1,2,4"`` -> ``[1, 2, 4]``; anything else is a clear user error."""
    items = text.replace(",", " ").split()
    try:
        values = [int(x) for x in items]
    except ValueError:
        raise UserError(f"{flag} {text!r} does not parse: give integers separated by spaces, e.g. {flag} \"1 2 4\"") from None
    if not values:
        raise UserError(f"{flag} is empty: give at least one integer, e.g. {flag} \"1 2 4\"")
    bad = [v for v in values if v < minimum]
    if bad:
        raise UserError(f"{flag} {text!r}: {bad[0]} is not allowed, each value must be >= {minimum}")
    if len(set(values)) != len(values):
        raise UserError(f"{flag} {text!r} repeats a value")
    return values
