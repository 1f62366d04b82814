"""The base-to-new protocol's figure and report section, read only from ``RESULTS/base2new/`` records.

The records come through :func:`coop.runs.results.load_results` (``protocol="base2new"``), as every
consumer's do: one frame of inputs (a run of other data, weights or code is left out and named), and a
method's runs of other settings shown as a group of their own (``CoCoOp [epochs=9]``), never averaged
with the rest. Each group's base and new accuracies are means over seeds (each seed a point); its H is
the harmonic mean of those two means, as the CoCoOp paper reports it. Verdicts by the report's paired
test (:func:`coop.report.comparisons.compare`: a bootstrap over the same test images and seeds, widened
to the seeds' t interval): CoCoOp against CoOp on base, new and H, and each against zero-shot CLIP (one
run, paired with every seed). H's interval resamples each half's test images (the same draw for both
methods), then the seed pairs, and is widened to the t interval over the seeds' H differences. Never
drawn or averaged with the all-class records.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..runs.results import load_results
from ..utils.atomic import atomic_path, write_text
from .comparisons import N_BOOT, _aligned, compare, pairs
from .stats import _t_interval, verdict, widen

log = logging.getLogger(__name__)

ORDER = ("Zero-shot CLIP", "CoOp", "CoCoOp")
PARTS = ("base", "new", "H")
COLORS = {"Zero-shot CLIP": "tab:purple", "CoOp": "tab:blue", "CoCoOp": "tab:red"}


class Groups(dict):
    """``{group: [records]}`` in the order shown (zero-shot, CoOp and its named groups, CoCoOp and
    its), with ``notes``: what the selection left out or showed apart."""

    notes: List[str]


def method_of(group: str) -> str:
    """``CoOp`` for ``CoOp [epochs=9]``: the method a group of runs belongs to."""
    return re.sub(r" \[.*\]$", "", group)


def groups(loaded: Dict[str, Any]) -> Groups:
    """The selected base-to-new records of ``loaded`` as :class:`Groups`."""
    out = Groups()
    if loaded.get("zeroshot") is not None:
        out["Zero-shot CLIP"] = [loaded["zeroshot"]]
    trained = loaded.get("coop") or {}
    rank = {m: i for i, m in enumerate(ORDER)}
    for g in sorted(trained, key=lambda g: (rank.get(method_of(g), len(ORDER)), method_of(g), g != method_of(g), g)):
        if trained[g]:
            out[g] = trained[g]
    out.notes = list(loaded.get("notes") or [])
    return out


def load_base2new(folder: Path) -> Groups:
    """The folder's base-to-new records that belong together (:func:`coop.runs.results.load_results`)."""
    return groups(load_results(folder, protocol="base2new"))


def _half(recs: List[Dict[str, Any]], part: str) -> List[Dict[str, Any]]:
    """The runs as one half's records for :func:`compare` (zero-shot: one unseeded run)."""
    return [{"seed": r["seed"] if r["method"] != "Zero-shot CLIP" else None,
             "test_predictions": r["halves"][part]["test_predictions"]} for r in recs]


def _h(b, n):
    b, n = np.asarray(b, float), np.asarray(n, float)
    return np.where(b + n > 0, 2 * b * n / np.maximum(b + n, 1e-12), 0.0)


def summary(recs: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Base and new: mean over the runs, sample std (0 for one run); H: the H of the two means."""
    out = {}
    for part in ("base", "new"):
        v = np.array([r["halves"][part]["accuracy"] for r in recs], float)
        out[part] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
    out["H"] = {"mean": float(_h(out["base"]["mean"], out["new"]["mean"])), "std": 0.0, "n": len(recs)}
    return out


def compare_h(a: List[Dict[str, Any]], b: List[Dict[str, Any]], n_boot: int = N_BOOT) -> Optional[Dict[str, Any]]:
    """H(a) - H(b) in points, each H that of the seed-averaged base and new (what the table shows), with
    its 95% interval: each half's test images resampled (one draw for both methods) and the seed pairs
    resampled, H of the resampled means; widened to the t interval over the seeds' H differences."""
    sides = {}
    for part in ("base", "new"):
        got = _aligned(pairs(_half(a, part), _half(b, part)))  # the seed pairs' vectors on their common images
        if got is None:
            return None
        _, va, vb = got
        sides[part] = (np.array(va, float), np.array(vb, float))
    k = len(sides["base"][0])
    rng = np.random.default_rng(0)
    reps = np.empty(n_boot)
    for r in range(n_boot):
        acc = {}
        for part, (xa, xb) in sides.items():
            idx = rng.integers(0, xa.shape[1], xa.shape[1])
            acc[part] = (100 * xa[:, idx].mean(1), 100 * xb[:, idx].mean(1))
        s = rng.integers(0, k, k) if k > 1 else np.zeros(1, int)
        reps[r] = (_h(acc["base"][0][s].mean(), acc["new"][0][s].mean())
                   - _h(acc["base"][1][s].mean(), acc["new"][1][s].mean()))
    means = {p: (100 * xa.mean(1), 100 * xb.mean(1)) for p, (xa, xb) in sides.items()}
    diff = float(_h(means["base"][0].mean(), means["new"][0].mean()) - _h(means["base"][1].mean(), means["new"][1].mean()))
    per_seed = _h(means["base"][0], means["new"][0]) - _h(means["base"][1], means["new"][1])
    ci = (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5)))
    t = _t_interval(per_seed, 0.95)  # None for one seed pair
    return {"diff": diff, "ci": widen(ci, t), "seeds": k}


def verdicts(recs: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """The protocol's comparisons: CoCoOp vs CoOp, and each trained method vs zero-shot CLIP, per part;
    each between the plainly named groups (named groups of other settings are shown, not compared).
    ``pairs``: seed pairs; ``single_reference``: b is zero-shot's one run, paired with every seed of a."""
    out = []
    for a, b in (("CoCoOp", "CoOp"), ("CoOp", "Zero-shot CLIP"), ("CoCoOp", "Zero-shot CLIP")):
        if not recs.get(a) or not recs.get(b):
            continue
        for part in PARTS:
            res = compare_h(recs[a], recs[b]) if part == "H" else compare(_half(recs[a], part), _half(recs[b], part))
            if res is not None:
                out.append({"a": a, "b": b, "part": part, "diff": res["diff"], "ci": res["ci"],
                            "verdict": verdict(res), "single_reference": b == "Zero-shot CLIP",
                            "pairs": len(res["seeds"]) if isinstance(res["seeds"], list) else res["seeds"]})
    return out


def title(recs: Dict[str, List[Dict[str, Any]]]) -> str:
    """The figure's title: the data, the records' own model(s), and RANDOM WEIGHTS when so."""
    shown = [r for rs in recs.values() for r in rs]
    models = sorted({str((r.get("model") or {}).get("name") or (r.get("config") or {}).get("model")) for r in shown})
    return (("synthetic demo data" if any(r.get("demo") for r in shown) else "Caltech101")
            + f": base-to-new ({', '.join(models)})" + (" -- RANDOM WEIGHTS" if any(r.get("random_weights") for r in shown) else ""))


def draw(recs: Dict[str, List[Dict[str, Any]]], out_png: Path) -> Path:
    """Base, new and H per group: each seed a hollow point; the filled one is the mean of base and of
    new, and the H of those two means (as the table)."""
    from matplotlib.figure import Figure

    from .outputs import FIGURE_TITLE

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    names = [g for g in recs if recs[g]]
    for j, g in enumerate(names):
        color, plain = COLORS.get(method_of(g), "tab:gray"), g == method_of(g)
        s = summary(recs[g])
        for i, part in enumerate(PARTS):
            x = i + (j - (len(names) - 1) / 2) * min(0.22, 0.8 / max(len(names), 1))
            vals = [r["H"] if part == "H" else r["halves"][part]["accuracy"] for r in recs[g]]
            ax.scatter([x] * len(vals), vals, facecolors="none", edgecolors=color, s=25)
            ax.scatter([x], [s[part]["mean"]], color=color, s=70, alpha=1.0 if plain else 0.55,
                       marker="*" if g == "Zero-shot CLIP" else "o" if plain else "s", label=g if i == 0 else None)
    ax.set_xticks(range(3), ["base", "new", "H"])
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title(recs), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=130, metadata={"Title": FIGURE_TITLE})
    return out_png


def finish_base2new(folder: Path) -> None:
    """After a base-to-new sweep: its figure beside the records (the report's appendix D draws its own)."""
    recs = load_base2new(folder)
    if recs:
        log.info("wrote %s", draw(recs, folder / "base2new.png"))
