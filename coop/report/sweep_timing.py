"""A finished sweep's time per stage, measured from its records, beside check_env's projection.

Every record carries its wall time (a CoOp record splits it into encoding its features and training);
the work of each stage is counted from the records themselves (crops a run had to encode, steps it took),
so the projection -- ``check_env.py --json``'s unit costs times that work -- is compared stage by stage.
``scripts/sweep_timing.py`` prints the table and writes it as JSON (``results/realsize.json`` holds the
one docs/speed.md quotes).
"""
from __future__ import annotations

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
        if r["kind"] == "zeroshot":
            first = not any(row["stage"].startswith("zero-shot") for row in rows)
            work = r["n_test"] if first else 0
            rows.append({"stage": f"zero-shot ({(r.get('config') or {}).get('templates', 'single')} prompts)",
                         "work": f"{work:,} test images encoded" if work else "test features from the cache",
                         "measured_s": r["wall_time_s"], "projected_s": work / rate if rate else None})
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
    return rows


def table(rows: List[Dict[str, Any]]) -> List[str]:
    """Markdown: stage, work, measured, projected, measured/projected."""
    def fmt(s: Optional[float]) -> str:
        return "—" if s is None else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"

    out = ["| stage | work | measured | projected | measured / projected |", "|---|---|---|---|---|"]
    for row in rows:
        m, p = row["measured_s"], row["projected_s"]
        ratio = f"{m / p:.2f}" if m and p else "—"
        out.append(f"| {row['stage']} | {row['work']} | {fmt(m)} | {fmt(p)} | {ratio} |")
    return out
