"""A finished sweep's time per stage, measured from its records, beside check_env's projection.

Every record carries its wall time (a CoOp record splits it into encoding its features and training);
the work of each stage is counted from the records themselves (crops a run had to encode, steps it took),
so the projection -- ``check_env.py --json``'s unit costs times that work -- is compared stage by stage.
``scripts/sweep_timing.py`` prints the table and writes it as JSON (``results/realsize.json`` holds the
one docs/speed.md quotes).

The records are those that belong together (:func:`coop.runs.results.load_results`, as the figure's and
the report's): a run made from other data, weights or code is left out and named in ``notes``; a
method's runs of other settings keep their group's name in their rows (``CoOp [epochs=3] 1 shot, seed 3``).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..methods.train_config import steps_per_epoch
from ..runs.results import load_results


def _records(results: Path, notes: Optional[List[str]] = None) -> List[Tuple[str, Dict[str, Any]]]:
    """``[(group, record)]`` of the records that belong together, in their start order; the selection's
    notes (what was left out, what is shown apart) are added to ``notes``."""
    loaded = load_results(results)
    if notes is not None:
        notes += loaded["notes"]
    recs = {id(r): ("Zero-shot CLIP", r) for r in loaded["zeroshot_prompts"].values()}
    recs.update({id(r): (g, r) for group in ("coop", "baselines") for g, rs in loaded[group].items() for r in rs})
    return sorted(recs.values(), key=lambda gr: gr[1].get("started_at") or "")


def architecture(model: Optional[str]) -> Optional[str]:
    """``RN50`` for ``random:RN50``, ``RN50`` and ``.../RN50.pt``: weights do not change the time."""
    if not model:
        return None
    return model[len("random:"):] if model.startswith("random:") else Path(model).stem if model.endswith(".pt") else model


def unit_costs(check: Optional[Dict[str, Any]], model: str, precision: str,
               device: Optional[str] = None) -> Optional[Dict[str, float]]:
    """check_env's unit costs for ``model``'s architecture at ``precision`` on ``device``'s kind (its
    RN50's or its demo's), or None when the check timed none of them: then nothing is projected."""
    meas = (check or {}).get("measurements") or {}
    timed_on = str(meas.get("device") or "")
    if device and timed_on and device.split(":")[0] != timed_on.split(":")[0]:  # a GPU's check, a CPU's sweep
        return None
    for m in (meas, meas.get("demo") or {}):
        if isinstance(m, dict) and architecture(m.get("model")) == architecture(model):
            u = m.get("units")
            u = u.get(precision) if isinstance(u, dict) else None
            ok = isinstance(u, dict) and all(isinstance(u.get(k), (int, float)) and u[k] > 0
                                             for k in ("crops_img_s", "step_s"))
            return u if ok else None  # a unit cost it did not measure projects nothing
    return None


def _row(stage: str, kind: str, work: str, measured: Optional[float], projected: Optional[float]) -> Dict[str, Any]:
    return {"stage": stage, "kind": kind, "work": work, "measured_s": measured, "projected_s": projected}


def stages(results: Path, check: Optional[Dict[str, Any]] = None,
           notes: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """One row per stage: what, its kind, the work, measured seconds, projected seconds (None without
    ``check``, or when ``check`` timed another model or precision). The selection's notes go into ``notes``.

    The work is counted from the records in their start order: test images the first zero-shot record
    encoded, and the crops a CoOp run needed that no earlier record of this folder needed (the nested
    1/2/4-shot runs of one seed share theirs). A cache filled before the sweep, or runs made at once in
    several processes, make that count an upper bound of what was encoded.
    """
    rows: List[Dict[str, Any]] = []
    seen: Dict[tuple, int] = {}
    for group, r in _records(results, notes):
        start = len(rows)
        cfg = r.get("config") or {}
        units = unit_costs(check, (r.get("model") or {}).get("name") or cfg.get("model"),
                           r.get("precision") or cfg.get("precision") or "fp32", (r.get("environment") or {}).get("device"))
        rate = units["crops_img_s"] if units else None
        if r["kind"] == "zeroshot":
            first = not any(row["stage"].startswith("zero-shot") for row in rows)
            work = r["n_test"] if first else 0
            stage = f"zero-shot ({cfg.get('templates', 'single')} prompts)"
            if work:
                rows.append(_row(stage, "encoding", f"{work:,} test images encoded", r["wall_time_s"],
                                 work / rate if rate else None))
            else:  # its prompts' text and the cached test features: not projected
                rows.append(_row(stage, "baselines", "its prompts; test features from the cache", r["wall_time_s"], None))
        elif r["kind"] == "coop":
            aug, hist = r.get("augmentation") or {}, r.get("history") or {}
            need = aug.get("crops_per_image", 0)
            new = 0
            for rel, _, _ in r.get("fewshot_train") or []:
                have = seen.get((aug.get("crop_seed"), rel), 0)
                new += max(0, need - have)
                seen[(aug.get("crop_seed"), rel)] = max(have, need)
            epochs = len(hist.get("epoch", []))
            n = len(r.get("fewshot_train") or [])
            steps = epochs * steps_per_epoch(n, cfg.get("batch_size", 32))
            t = r.get("time_s") or {}
            what = f"{group} {r['shots']} shot{'s' if r['shots'] != 1 else ''}, seed {r['seed']}"
            rows.append(_row(what + ": crops encoded", "encoding", f"{new:,} crops", t.get("features"),
                             new / rate if rate else None))
            rows.append(_row(what + ": training", "training", f"{steps:,} steps", t.get("train"),
                             steps * units["step_s"] if units else None))
        else:
            views = (cfg.get("options") or {}).get("views") or (r.get("identity") or {}).get("options", {}).get("views")
            rows.append(_row(f"{group} {r['shots']} shot{'s' if r['shots'] != 1 else ''}, seed {r['seed']}",
                             "baselines", "its images' test views"
                             + (f" + {views} augmented views each" if views else "")  # shared: encoded by the first
                             + ", then the fit", r["wall_time_s"], None))
        for row in rows[start:]:
            row["peak_rss_mb"] = (r.get("environment") or {}).get("peak_rss_mb")  # the process's so far
    return rows


def _count(loaded: Dict[str, Any]) -> int:
    shown = {id(r) for r in loaded["zeroshot_prompts"].values()}
    shown |= {id(r) for group in ("coop", "baselines") for rs in loaded[group].values() for r in rs}
    return len(shown)


def drawing_rows(results: Path) -> List[Dict[str, Any]]:
    """The figure and the report's results section, drawn again from ``results``' records into a
    temporary folder (the sweep's own outputs are left as they are) and timed."""
    from ..report.document import write_report
    from ..report.plot import plot_fewshot

    rows = []
    with tempfile.TemporaryDirectory(prefix="coop-timing-") as tmp:
        t = time.perf_counter()
        loaded = load_results(results)
        plot_fewshot(loaded, Path(tmp) / "fewshot")
        rows.append(_row("figure (fewshot.png, .pdf)", "drawing", f"{_count(loaded)} records read",
                         time.perf_counter() - t, None))
        t = time.perf_counter()
        write_report(results, Path(tmp) / "REPORT.md", figures=False)  # it would draw the figure into results
        rows.append(_row("report (results section)", "drawing", "the records' tables, without its figures",
                         time.perf_counter() - t, None))
    return rows


def folder_mb(folder: Optional[Path]) -> Optional[float]:
    """Bytes in the files under ``folder`` (MB), or None when there is no such folder."""
    if folder is None or not Path(folder).is_dir():
        return None
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total / 2 ** 20


def shares(rows: List[Dict[str, Any]]) -> Dict[str, float]:
    """Each kind of stage's share of the measured time: image encoding (the test split and the crops,
    input path included), CoOp training, the baselines (prompt ensembling included), drawing."""
    kinds = {"encoding": 0.0, "training": 0.0, "baselines": 0.0, "drawing": 0.0}
    for row in rows:
        kinds[row["kind"]] += row["measured_s"] or 0.0
    total = sum(kinds.values())
    return {k: round(v / total, 4) for k, v in kinds.items()} if total else {}


def table(rows: List[Dict[str, Any]]) -> List[str]:
    """Markdown: stage, work, measured, projected, measured/projected."""
    def fmt(s: Optional[float]) -> str:
        return "—" if s is None else f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"

    out = ["| stage | work | measured | projected | measured / projected |", "|---|---|---|---|---|"]
    for row in rows:
        m, p = row["measured_s"], row["projected_s"]
        ratio = f"{m / p:.2f}" if m and p else "—"
        out.append(f"| {row['stage']} | {row['work']} | {fmt(m)} | {fmt(p)} | {ratio} |")
    return out
