"""The bonus's safeguard: a block modification answers only where the few-shot validation set shows it better.

Every CoOp run records its predictions on the few-shot validation set of its (shots, seed) -- min(shots, 4)
images per class from the split's val part, the set the baselines search on (``validation`` in the
record; :func:`coop.methods.train.validation`). For each (shots, seed), the *guarded* modification
answers with the modified run (CoOp+adapter, CoOp+lora) only when, on those validation images, it is
right on significantly more of them than plain CoOp's run of the same (shots, seed): among the images
exactly one of the two gets right, the exact one-sided sign test gives p < :data:`ALPHA`. Otherwise --
no significant gain, a tie, a loss -- CoOp's run answers: the modification has to earn its place
against the validation set's noise (at 1 shot, 100 images: one image is a point). No test image is read
for the choice, and nothing is retrained: both runs exist in the default sweep.

What this guarantees and what not (report, section 9.1): the guarded method equals CoOp wherever the
validation set does not show the modification better; on the test set it can fall below CoOp only where
the validation set misjudged; it says nothing about zero-shot CLIP, and it uses labelled validation
images CoOp does not. Its records are the chosen runs' records renamed (``method`` + :data:`SUFFIX`),
with ``guard`` saying which run answered and the validation counts it was decided on.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..runs.results import by_shots
from .stats import sign_test_p

SUFFIX = "（把关后）"  # the report is Chinese: the guarded method's name in its tables and text
ALPHA = 0.05  # the one-sided level of the validation sign test, fixed before any run
WHY = ("no CoOp run", "no validation predictions", "different validation images")  # why a (shots, seed) is left out


def guarded_name(method: str) -> str:
    return method + SUFFIX


def _right(rec: Dict[str, Any]) -> Optional[Dict[str, bool]]:
    """Per validation image (by path): did the run get it right? None without validation predictions."""
    v = rec.get("validation") or {}
    p = v.get("predictions") or {}
    if not v.get("items") or "pred" not in p:
        return None
    items = v["items"]
    if len(p["index"]) != len(p["pred"]) or any(not 0 <= i < len(items) for i in p["index"]):
        return None
    return {items[i][0]: int(items[i][1]) == int(y) for i, y in zip(p["index"], p["pred"])}


def decide(mod: Dict[str, bool], base: Dict[str, bool]) -> Dict[str, Any]:
    """The guard's decision on one (shots, seed): ``{"mod_only", "base_only", "p", "modified"}`` --
    validation images only the modification gets right, only CoOp does, the one-sided exact sign test's
    p that the modification is better, and whether it answers (p < ALPHA)."""
    shared = mod.keys() & base.keys()
    a = sum(1 for k in shared if mod[k] and not base[k])
    b = sum(1 for k in shared if base[k] and not mod[k])
    p = sign_test_p(a, b) / 2 if a > b else 1.0  # one-sided: exactly half the two-sided p when a > b
    return {"mod_only": a, "base_only": b, "p": p, "modified": p < ALPHA}


def guarded(mod: List[Dict[str, Any]], base: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Tuple[int, int, str]]]:
    """The guarded modification's records, one per (shots, seed) that both ``mod`` and ``base`` (plain
    CoOp) have with predictions on the same validation images; and the (shots, seed, why) that could
    not be guarded (``why`` one of :data:`WHY`)."""
    bm, bb = by_shots(list(mod)), by_shots(list(base))
    out: List[Dict[str, Any]] = []
    left: List[Tuple[int, int, str]] = []
    for k in sorted(bm):
        for seed, r in sorted(bm[k].items()):
            b = bb.get(k, {}).get(seed)
            if b is None:
                left.append((k, seed, WHY[0]))
                continue
            ra, rb = _right(r), _right(b)
            if ra is None or rb is None:
                left.append((k, seed, WHY[1]))
                continue
            if [it[0] for it in r["validation"]["items"]] != [it[0] for it in b["validation"]["items"]]:
                left.append((k, seed, WHY[2]))
                continue
            d = decide(ra, rb)
            chosen = r if d["modified"] else b
            out.append({**chosen, "method": guarded_name(r["method"]),
                        "guard": {**d, "chosen": chosen["method"], "val_images": len(ra.keys() & rb.keys())}})
    return out, left


def chosen_counts(records: List[Dict[str, Any]]) -> Dict[int, Tuple[int, int]]:
    """Per shot count: (how many seeds the modification answered, how many seeds in all)."""
    out: Dict[int, Tuple[int, int]] = {}
    for k, recs in sorted(by_shots(records).items()):
        out[k] = (sum(1 for r in recs.values() if (r.get("guard") or {}).get("modified")), len(recs))
    return out
