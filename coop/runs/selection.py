"""Which records belong together in one figure, one report or one timing table.

Every consumer of a folder's records reads them through :func:`coop.runs.results.load_results`, which
ends here; ``tests/test_consumers.py`` finds each module and script that reads records and runs it on a
folder mixing settings and models. Records are grouped by what made them, never by file times:

- **Inputs** (the *frame*): the split file, the CLIP weights, the test images' contents and the
  computing code. The reference frame is the zero-shot record's (the sweep redoes it whenever any of
  these changes), or, without one, the most common frame. A record of another frame -- left over from
  a sweep over other data, weights or code -- is **left out**, and a note says which and why.
- **Settings**: within one method, records whose settings (everything but shots and seed) differ are
  **shown apart**, as separate lines named by the settings that differ (``CoOp [epochs=5]``), never
  averaged together. In the base-to-new protocol the shots are a setting too (its tables average over
  seeds only).

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


FRAME_NAMES = ("split", "test images", "code", "weights")


def _differs(recs: List[Dict[str, Any]], ref: Tuple) -> str:
    """Which inputs of ``recs`` differ from the reference frame, in words (``weights (random:RN50)``)."""
    names = []
    for i, name in enumerate(FRAME_NAMES):
        if any(frame(r)[i] != ref[i] for r in recs):
            models = sorted({str((r.get("model") or {}).get("name")) for r in recs if frame(r)[i] != ref[i]})
            names.append(f"weights ({', '.join(models)})" if name == "weights" else name)
    return ", ".join(names) or "inputs"


def settings(rec: Dict[str, Any], axes: Tuple[str, ...] = ("shots", "seed")) -> Tuple:
    """A record's settings apart from ``axes``, what a figure or table spreads its runs over (CoOp's
    epochs-per-shots default counts as one setting)."""
    ident = dict(rec.get("settings") or rec.get("identity") or {})
    for k in ("shots", "seed"):
        ident.pop(k, None)
    if "shots" not in axes:
        ident["shots"] = rec.get("shots")
    return tuple(sorted((k, repr(v)) for k, v in ident.items()))


def _differing(groups: List[Tuple]) -> List[str]:
    keys = sorted({k for g in groups for k, _ in g})
    return [k for k in keys if len({dict(g).get(k) for g in groups}) > 1]


def _split_by_settings(method: str, recs: List[Dict[str, Any]], notes: List[str],
                       axes: Tuple[str, ...]) -> Dict[str, List[Dict[str, Any]]]:
    groups: Dict[Tuple, List[Dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault(settings(r, axes), []).append(r)
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
    notes.append(f"{method}: runs with different settings ({', '.join(keys)}) are shown apart, "
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
    """The records of ``loaded`` (:func:`coop.runs.results.load_results`' shape) that belong together,
    grouped by settings, with notes."""
    notes: List[str] = list(loaded.get("notes") or [])
    axes = ("seed",) if loaded.get("protocol") == "base2new" else ("shots", "seed")
    zs = loaded.get("zeroshot")
    groups = {g: loaded.get(g) or {} for g in ("coop", "baselines")}
    every = [r for g in groups.values() for rs in g.values() for r in rs]
    if zs is not None:
        ref = frame(zs)
    elif every:
        ref = Counter(frame(r) for r in every).most_common(1)[0][0]
    else:
        return {**loaded, "notes": notes}
    out: Dict[str, Any] = {"zeroshot": zs, "notes": notes, "protocol": loaded.get("protocol", "fewshot"),
                           "zeroshot_prompts": {t: r for t, r in (loaded.get("zeroshot_prompts") or {}).items()
                                                if frame(r) == ref}}
    for g, methods in groups.items():
        out[g] = {}
        for method, recs in methods.items():
            kept = [r for r in recs if frame(r) == ref]
            left = [r for r in recs if frame(r) != ref]
            if left:
                what = ", ".join(f"{r['shots']} shot{'s' if r['shots'] != 1 else ''} seed {r['seed']}"
                                 for r in left[:6]) + (" ..." if len(left) > 6 else "")
                notes.append(f"{method}: {len(left)} run{'s' if len(left) != 1 else ''} left out ({what}): made "
                             f"from other {_differs(left, ref)} than the rest (rerun them to include them)")
            if kept:
                out[g].update(_split_by_settings(method, kept, notes, axes))
    for n in notes[len(loaded.get("notes") or []):]:
        log.warning("%s", n)
    return out
