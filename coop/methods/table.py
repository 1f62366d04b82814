"""The table of few-shot methods on cached features: one line each, in the figure's and report's order.

A new method is its module (defining a :class:`coop.methods.method.Method`) and one line here. Everything
else -- ``run_all --baselines``, the sweep, validation of its records, the comparison figure, the ETA,
the computing modules whose code makes its results stale -- is derived from this table.
"""
from __future__ import annotations

import functools
import importlib
from typing import Dict, List, Tuple

from ..utils.errors import UserError
from .method import Method

TABLE: List[str] = [
    "coop.methods.linear_probe:METHOD",
    "coop.methods.tip_adapter:TIP",
    "coop.methods.tip_adapter:TIP_F",
    "coop.methods.clip_adapter:METHOD",
    "coop.methods.taskres:METHOD",
    "coop.methods.clap:ZS_LP",
    "coop.methods.clap:CLAP",
]


def _load(ref: str) -> Method:
    module, _, name = ref.partition(":")
    entry = getattr(importlib.import_module(module), name)
    if not isinstance(entry, Method):
        raise TypeError(f"{ref} in coop.methods.table is not a Method")
    return entry


def methods() -> Dict[str, Method]:
    """The table's methods by key, in its order (read once per state of TABLE)."""
    return dict(_methods(tuple(TABLE)))


@functools.lru_cache(maxsize=8)
def _methods(refs: Tuple[str, ...]) -> Dict[str, Method]:
    out: Dict[str, Method] = {}
    for ref in refs:
        m = _load(ref)
        if m.key in out or m.key in ("all", "none"):
            raise ValueError(f"method key {m.key!r} of {ref} is taken")
        out[m.key] = m
    return out


def method(key: str) -> Method:
    table = methods()
    if key not in table:
        raise UserError(f"unknown baseline {key!r}; use one of {', '.join(table)}")
    return table[key]


def modules() -> List[str]:
    """The modules the table's methods live in (their code decides their results: coop.runs.provenance)."""
    return sorted({ref.partition(":")[0] for ref in TABLE})


def by_folder() -> Dict[str, Method]:
    return {m.folder: m for m in methods().values()}


def by_name() -> Dict[str, Method]:
    return {m.name: m for m in methods().values()}


def choices() -> List[str]:
    """What ``--baselines`` takes: all, none, each method's key and each group."""
    table = methods()
    groups = sorted({m.group for m in table.values() if m.group and m.group not in table})
    return ["all", "none", *table, *groups]  # a group named as a method ("tip") means the group


def selected(spec: str) -> List[str]:
    """``--baselines`` (names separated by spaces or commas) -> method keys, in the table's order."""
    table = methods()
    names = spec.replace(",", " ").split() or ["none"]
    keys = set()
    for n in names:
        if n == "all":
            keys |= set(table)
        elif n == "none":
            continue
        elif any(m.group == n for m in table.values()):  # a group first: "tip" is Tip-Adapter and -F, as always
            keys |= {k for k, m in table.items() if m.group == n}
        elif n in table:
            keys.add(n)
        else:
            raise UserError(f"--baselines {n!r} is unknown; use {', '.join(choices())} (several: \"lp tip\")")
    return [k for k in table if k in keys]
