"""A finished sweep's time per stage, measured from its records, beside check_env's projection.

Every record carries its wall time (a CoOp record splits it into encoding its features and training);
the work of each stage is counted from the records themselves (crops a run had to encode, steps it took),
so the projection -- ``check_env.py --json``'s unit costs times that work -- is compared stage by stage.
``scripts/sweep_timing.py`` prints the table and writes it as JSON (``results/realsize.json`` holds the
one docs/speed.md quotes).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..runs.results import read_result


def _records(results: Path) -> List[Dict[str, Any]]:
    files = [results / "zeroshot.json", *sorted(results.glob("zeroshot_prompts/*.json")),
             *sorted(results.glob("coop/shots*_seed*.json")), *sorted(results.glob("baselines/*/shots*_seed*.json"))]
    recs = [read_result(f) for f in files if f.exists()]
    return sorted([r for r in recs if r is not None], key=lambda r: r.get("started_at") or "")


def stages(results: Path, check: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """One row per stage: what, the work, measured seconds, projected seconds (None without ``check``)."""
    units = (check or {}).get("measurements", {}).get("units", {}).get("fp32")
    rate = units["crops_img_s"] if units else None
    rows: List[Dict[str, Any]] = []
    seen: Dict[tuple, int] = {}
    for r in _records(results):
        start = len(rows)
        if r["kind"] == "zeroshot":
            first = not any(row["stage"].startswith("zero-shot") for row in rows)
            work = r["n_test"] if first else 0
            rows.append({"stage": f"zero-shot ({(r.get('config') or {}).get('templates', 'single')} prompts)",
                         "work": f"{work:,} test images encoded" if work else "test features from the cache",
                         "measured_s": r["wall_time_s"],
                         "projected_s": work / rate if rate and work else None})  # its text: not projected
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
            steps = epochs * max(1, n // (r.get("config") or {}).get("batch_size", 32))
            t = r.get("time_s") or {}
            what = f"CoOp {r['shots']} shot{'s' if r['shots'] != 1 else ''}, seed {r['seed']}"
            rows.append({"stage": what + ": crops encoded", "work": f"{new:,} crops",
                         "measured_s": t.get("features"), "projected_s": new / rate if rate else None})
            rows.append({"stage": what + ": training", "work": f"{steps:,} steps",
                         "measured_s": t.get("train"), "projected_s": steps * units["step_s"] if units else None})
        else:
            rows.append({"stage": f"{r['method']} {r['shots']} shot{'s' if r['shots'] != 1 else ''}, seed {r['seed']}",
                         "work": "its images' test views" + (" + 10 views each" if "Tip" in r["method"] else "")
                                 + ", then the fit",
                         "measured_s": r["wall_time_s"], "projected_s": None})
        for row in rows[start:]:
            row["peak_rss_mb"] = (r.get("environment") or {}).get("peak_rss_mb")  # the process's so far
    return rows


def drawing_rows(results: Path) -> List[Dict[str, Any]]:
    """The figure and the report's results section, drawn again from ``results``' records into a
    temporary folder (the sweep's own outputs are left as they are) and timed."""
    from ..runs.results import load_results
    from .document import write_report
    from .plot import plot_fewshot

    rows = []
    with tempfile.TemporaryDirectory(prefix="coop-timing-") as tmp:
        t = time.perf_counter()
        loaded = load_results(results)
        plot_fewshot(loaded, Path(tmp) / "fewshot")
        rows.append({"stage": "figure (fewshot.png, .pdf)", "work": f"{len(_records(results))} records read",
                     "measured_s": time.perf_counter() - t, "projected_s": None})
        t = time.perf_counter()
        write_report(results, Path(tmp) / "REPORT.md", figures=False)  # it would draw the figure into results
        rows.append({"stage": "report (results section)", "work": "the records' tables, without its figures",
                     "measured_s": time.perf_counter() - t, "projected_s": None})
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
    """Each kind of stage's share of the measured time: image encoding (test features and crops,
    input path included), CoOp training, the baselines, drawing."""
    kinds = {"encoding": 0.0, "training": 0.0, "baselines": 0.0, "drawing": 0.0}
    for row in rows:
        s, m = row["stage"], row["measured_s"] or 0.0
        kind = ("encoding" if s.startswith("zero-shot") or s.endswith("crops encoded") else
                "training" if s.endswith(": training") else
                "drawing" if s.startswith(("figure", "report")) else "baselines")
        kinds[kind] += m
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
