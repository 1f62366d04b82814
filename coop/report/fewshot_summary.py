"""What the few-shot figures show, computed from the records before anything is drawn: per method and shot
count the seeds, their accuracies, mean and sample std, the legend's labels (with missing seeds said), and the
notes (records left out or shown apart by :mod:`coop.runs.selection`). :mod:`coop.report.plot` draws it.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

from ..runs.results import any_random, by_shots, is_check, shot_stats
from ..utils.errors import UserError
from .figure_style import _method_order
from .fmt import _zh
from .readings import mean_interval, zeroshot_interval

log = logging.getLogger(__name__)


def _config_label(recs: List[Dict[str, Any]]) -> Optional[str]:
    """``"M=16, end"`` from the records' config (n_ctx, class_token_position), ``"mixed config"`` if
    the records disagree, None if the config does not name them."""
    seen = set()
    for r in recs:
        cfg = r.get("config") or {}
        m = cfg.get("n_ctx", cfg.get("M"))
        pos = cfg.get("class_token_position", cfg.get("position"))
        csc = bool(cfg.get("csc", False))
        views = (r.get("augmentation") or {}).get("views")
        seen.add((m, pos, csc, views))
    if len(seen) > 1:
        return "mixed config"
    (m, pos, csc, views), = seen
    parts = ([f"M={m}"] if m is not None else []) + ([str(pos)] if pos is not None else []) + (["CSC"] if csc else [])
    parts += [f"APPROXIMATE: --views {views}"] if views is not None else []
    return ", ".join(parts) or None


def _seeds_phrase(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _wilson_of(zs: Dict[str, Any]) -> Optional[List[float]]:
    """Zero-shot's 95% Wilson interval over its test images (drawn as a bar through the star), if known."""
    got = zeroshot_interval(zs)
    return [round(got[1], 4), round(got[2], 4)] if got else None


def summarize(loaded: Dict[str, Any], source: Optional[str | os.PathLike] = None,
              only: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """What the figure shows, computed from ``coop.runs.results.load_results`` output (``only``: just
    these methods besides zero-shot, e.g. ``("CoOp",)`` for the assignment's figure).

    Returns ``{"zeroshot": {"accuracy", "random_weights"} or None, "methods": {method: {"label", "label_zh",
    "config", "expected_seeds", "shots": {K: {"seeds", "accuracies", "mean", "std", "n", "interval"}}}}, "shots": [1, 2, 4],
    "random_weights", "demo", "notes": ["CoOp 4 shots: 2 of 3 seeds (no seed 3)", ...]}``: labels are the legend
    text with missing-seed remarks, ``expected_seeds`` the most common number of seeds over a method's shots,
    ``std`` the *sample* standard deviation over seeds (ddof=1; one seed gives 0), ``interval`` the mean's
    95% interval over the test images and seeds (:func:`coop.report.readings.mean_interval`; computed for a figure
    of one method only, where it is drawn; else None). With ``only``, the selection's
    notes about the methods left out are left out too. Every note is also logged as a warning. Raises
    :class:`UserError` if there is no record at all (``source`` names the folder in the message).
    """
    zs = loaded.get("zeroshot")
    coop = {m: list(rs) for m, rs in (loaded.get("coop") or {}).items() if rs and (only is None or m in only)}
    baselines = {m: list(rs) for m, rs in (loaded.get("baselines") or {}).items() if rs and (only is None or m in only)}
    where = f" in {source}" if source is not None else ""
    if zs is None and not coop:
        raise UserError(
            f"no result files{where}: run scripts/zeroshot.py and scripts/train_coop.py first "
            f"(they write zeroshot.json and coop/shots{{K}}_seed{{S}}.json into the results folder)")

    shown = tuple(f"{m}{c}" for m in [*(only or ()), "Zero-shot CLIP", "zero-shot"] for c in ": ")  # notes about them
    notes: List[str] = [n for n in loaded.get("notes") or [] if only is None or n.startswith(shown)]
    selection_notes = len(notes)
    if zs is None:
        notes.append("no zero-shot CLIP result (zeroshot.json): no star")
    if not coop:
        notes.append("no CoOp results (coop/shots*_seed*.json)" + ("" if baselines else ": zero-shot only"))
    coop = {**coop, **baselines}

    order = _method_order(coop)
    all_shots = sorted({int(r["shots"]) for rs in coop.values() for r in rs})
    methods: Dict[str, Any] = {}
    for method in order:
        shots_out = shot_stats(coop[method])
        runs = by_shots(coop[method])
        for k, st in shots_out.items():  # the mean's 95% interval (test images and seeds), beside the star's
            # (it bootstraps: only for a figure of one method, the assignment's, where it is drawn)
            got = mean_interval(list(runs[k].values())) if len(order) == 1 else None
            st["interval"] = [round(got[0], 4), round(got[1], 4)] if got else None
        seen = set()
        for r in coop[method]:
            k, s = int(r["shots"]), int(r["seed"])
            if (k, s) in seen:
                notes.append(f"{method} {k} shots: seed {s} appears twice; the first record is used")
            seen.add((k, s))
        counts = Counter(v["n"] for v in shots_out.values())
        # Most common seed count; ties go to the larger count (fewer would hide a missing seed).
        expected = max(counts, key=lambda c: (counts[c], c))
        all_seeds = sorted({s for v in shots_out.values() for s in v["seeds"]})
        short: List[str] = []
        for k, st in shots_out.items():
            seeds = st["seeds"]
            if len(seeds) < expected:
                lacking = [s for s in all_seeds if s not in seeds]
                short.append(f"{k} shots: {len(seeds)} of {expected}")
                notes.append(f"{method} {k} shots: {len(seeds)} of {expected} seeds"
                             + (f" (no seed {', '.join(map(str, lacking))})" if lacking else ""))
            elif len(seeds) > expected:
                notes.append(f"{method} {k} shots: {len(seeds)} seeds (others have {expected})")
        absent = [k for k in all_shots if k not in shots_out]
        if absent and not is_check(coop[method]):  # a check runs at one shot count by design
            notes.append(f"{method}: no runs at {', '.join(map(str, absent))} shots")
        cfg = _config_label(coop[method])
        label = method + (f" ({cfg})" if cfg else "") + f", mean of {_seeds_phrase(expected)}"
        label_zh = _zh(method) + (f"（{cfg}）" if cfg else "") + f"，{expected} 个种子的平均"  # 线性探测 CLIP, as the prose
        if short:
            label += f" ({'; '.join(short)})"
            label_zh += f"（{'；'.join(short)}）"
        methods[method] = {"label": label, "label_zh": label_zh, "config": cfg, "expected_seeds": expected,
                           "shots": shots_out}

    recs = [r for rs in coop.values() for r in rs] + ([zs] if zs else [])
    models = {str((r.get("model") or {}).get("name")) for r in recs}
    splits = {str((r.get("split") or {}).get("sha256")) for r in recs}
    if len(models) > 1:
        notes.append(f"records come from different models: {', '.join(sorted(models))}")
    if len(splits) > 1:
        notes.append("records come from different split files (split sha256 differs)")
    for n in notes[selection_notes:]:  # the selection's notes were logged where they arose
        log.warning("%s", n)

    return {
        "zeroshot": None if zs is None else {"accuracy": float(zs["accuracy"]),
                                             "random_weights": bool(zs.get("random_weights")),
                                             "interval": _wilson_of(zs)},
        "methods": methods,
        "shots": all_shots,
        "random_weights": bool(any_random(loaded)),
        "demo": any(bool(r.get("demo")) for r in recs),
        # the data set the records name (records made before datasets were records: Caltech101)
        "dataset": sorted({str((r.get("dataset") or {}).get("name", "caltech101")) for r in recs}) or ["caltech101"],
        "notes": notes,
    }
