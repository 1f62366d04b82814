"""Which records belong together in one figure or one report.

Records are grouped by what made them, never by file times:

- **Inputs** (the *frame*): the split file, the CLIP weights, the test images' contents and the
  computing code. The reference frame is the zero-shot record's (the sweep redoes it whenever any of
  these changes), or, without one, the most common frame. A record of another frame -- left over from
  a sweep over other data, weights or code -- is **left out**, and a note says which and why.
- **Settings**: within one method, records whose settings (everything but shots and seed) differ are
  **shown apart**, as separate lines named by the settings that differ (``CoOp [epochs=5]``), never
  averaged together.

:func:`select` returns the loaded dict with only what belongs together and ``notes`` saying what
was left out or split.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Dict, List, Tuple

log = logging.getLogger(__name__)

FRAME_KEYS = ("split_sha256", "test_images_sha256", "code_sha256")


def frame(rec: Dict[str, Any]) -> Tuple:
    inputs = rec.get("inputs") or {}
    return tuple(inputs.get(k) for k in FRAME_KEYS) + ((rec.get("model") or {}).get("sha256"),)


def settings(rec: Dict[str, Any]) -> Tuple:
    """A record's settings apart from shots and seed (CoOp's epochs-per-shots default counts as one)."""
    ident = dict(rec.get("settings") or rec.get("identity") or {})
    for k in ("shots", "seed"):
        ident.pop(k, None)
    return tuple(sorted((k, repr(v)) for k, v in ident.items()))


def _differing(groups: List[Tuple]) -> List[str]:
    keys = sorted({k for g in groups for k, _ in g})
    return [k for k in keys if len({dict(g).get(k) for g in groups}) > 1]


def _split_by_settings(method: str, recs: List[Dict[str, Any]], notes: List[str]) -> Dict[str, List[Dict[str, Any]]]:
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault(settings(r), []).append(r)
    if len(groups) == 1:
        return {method: recs}
    keys = _differing(list(groups))
    label = lambda g: ", ".join(f"{k}={dict(g)[k]}" for k in keys if k in dict(g))  # noqa: E731
    # The plain name (what the report compares with) goes to the group that covers the most (shots, seed)
    # cells, then the one with the fewest departures from the method's recipe, then the most runs; the
    # last tie is broken by the settings themselves, never by which file was read first.
    order = sorted(groups, key=lambda g: (-len({(r["shots"], r["seed"]) for r in groups[g]}),
                                          min(len(r.get("departures") or []) for r in groups[g]),
                                          -len(groups[g]), label(g)))
    out = {method: groups[order[0]]}
    for g in order[1:]:
        out[f"{method} [{label(g)}]"] = groups[g]
    notes.append(f"{method}: runs with different settings ({', '.join(keys)}) are shown as separate lines, "
                 f"not averaged; \"{method}\" is the one with {label(order[0])} (the most shots and seeds, "
                 f"then the fewest departures from the recipe)")
    return out


def fingerprint(loaded: Dict[str, Any]) -> str:
    """What a figure or report drawn from ``loaded`` shows: its records' run ids (and the notes), so
    that an output is redrawn whenever what it would show changes -- whatever the files' times."""
    import hashlib
    import json

    ids = [(loaded["zeroshot"] or {}).get("run_id")]
    for g in ("coop", "baselines"):
        for method, recs in sorted((loaded.get(g) or {}).items()):
            ids += [f"{method}:{r['shots']}:{r['seed']}:{r.get('run_id')}" for r in recs]
    return hashlib.sha256(json.dumps([ids, loaded.get("notes") or []]).encode()).hexdigest()


def select(loaded: Dict[str, Any]) -> Dict[str, Any]:
    """The records of ``loaded`` that belong together, grouped by settings, with notes."""
    notes: List[str] = list(loaded.get("notes") or [])
    zs = loaded.get("zeroshot")
    groups = {g: loaded.get(g) or {} for g in ("coop", "baselines")}
    every = [r for g in groups.values() for rs in g.values() for r in rs]
    if zs is not None:
        ref = frame(zs)
    elif every:
        ref = Counter(frame(r) for r in every).most_common(1)[0][0]
    else:
        return {**loaded, "notes": notes}
    out: Dict[str, Any] = {"zeroshot": zs, "notes": notes,
                           "zeroshot_prompts": {t: r for t, r in (loaded.get("zeroshot_prompts") or {}).items()
                                                if frame(r) == ref}}
    for g, methods in groups.items():
        out[g] = {}
        for method, recs in methods.items():
            kept = [r for r in recs if frame(r) == ref]
            left = [r for r in recs if frame(r) != ref]
            if left:
                what = ", ".join(f"{r['shots']} shots seed {r['seed']}" for r in left[:6]) + (" ..." if len(left) > 6 else "")
                notes.append(f"{method}: {len(left)} run{'s' if len(left) != 1 else ''} left out ({what}): made "
                             f"from other data, weights, split or code than the rest (rerun them to include them)")
            if kept:
                out[g].update(_split_by_settings(method, kept, notes))
    for n in notes[len(loaded.get("notes") or []):]:
        log.warning("%s", n)
    return out
