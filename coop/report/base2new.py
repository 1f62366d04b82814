"""The base-to-new protocol's figure and report section, read only from ``RESULTS/base2new/`` records.

Each method's base, new and H accuracies (mean over seeds, each seed a point); verdicts by the report's
paired test (:func:`coop.report.comparisons.compare`: a bootstrap over the same test images and seeds,
widened to the seeds' t interval): CoCoOp against CoOp on base, new and H, and each against zero-shot
CLIP. H is not a mean of per-image scores: its interval resamples each half's test images (the same
draw for both methods), then the seed pairs, and is widened to the t interval over the seeds' H
differences likewise. Never drawn or averaged with the all-class records.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..runs.results import read_result
from ..utils.atomic import atomic_path, write_text
from .comparisons import N_BOOT, _aligned, compare, pairs
from .published import BASE2NEW_SOURCE, BASE2NEW_TABLE
from .stats import _t_interval, verdict, widen

log = logging.getLogger(__name__)

ORDER = ("Zero-shot CLIP", "CoOp", "CoCoOp")
PARTS = ("base", "new", "H")
WORDS = {"higher": "高于", "lower": "低于"}


def load_base2new(folder: Path) -> Dict[str, List[Dict[str, Any]]]:
    """``{method: [records]}`` of the folder's complete base-to-new records (zero-shot as one record)."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for f in [folder / "zeroshot.json", *sorted(folder.glob("*/shots*_seed*.json"))]:
        rec = read_result(f) if f.exists() else None
        if rec is not None and rec.get("kind") == "base2new":
            out.setdefault(rec["method"], []).append(rec)
    return out


def _half(recs: List[Dict[str, Any]], part: str) -> List[Dict[str, Any]]:
    """The runs as one half's records for :func:`compare` (zero-shot: one unseeded run)."""
    return [{"seed": r["seed"] if r["method"] != "Zero-shot CLIP" else None,
             "test_predictions": r["halves"][part]["test_predictions"]} for r in recs]


def _h(b: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.where(b + n > 0, 2 * b * n / np.maximum(b + n, 1e-12), 0.0)


def compare_h(a: List[Dict[str, Any]], b: List[Dict[str, Any]], n_boot: int = N_BOOT) -> Optional[Dict[str, Any]]:
    """H(a) - H(b) in points with its 95% interval: each half's test images resampled (one draw for both
    methods), seed pairs resampled, widened to the t interval over the seeds' H differences."""
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
        d = _h(acc["base"][0], acc["new"][0]) - _h(acc["base"][1], acc["new"][1])
        reps[r] = d[s].mean()
    per_seed = (_h(100 * sides["base"][0].mean(1), 100 * sides["new"][0].mean(1))
                - _h(100 * sides["base"][1].mean(1), 100 * sides["new"][1].mean(1)))
    ci = (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5)))
    t = _t_interval(per_seed, 0.95)  # None for one seed pair
    return {"diff": float(per_seed.mean()), "ci": widen(ci, t), "seeds": k}


def verdicts(recs: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """The protocol's comparisons: CoCoOp vs CoOp, and each trained method vs zero-shot CLIP, per part."""
    out = []
    for a, b in (("CoCoOp", "CoOp"), ("CoOp", "Zero-shot CLIP"), ("CoCoOp", "Zero-shot CLIP")):
        if not recs.get(a) or not recs.get(b):
            continue
        for part in PARTS:
            res = compare_h(recs[a], recs[b]) if part == "H" else compare(_half(recs[a], part), _half(recs[b], part))
            if res is not None:
                out.append({"a": a, "b": b, "part": part, "diff": res["diff"], "ci": res["ci"],
                            "verdict": verdict(res), "pairs": len(res["seeds"]) if isinstance(res["seeds"], list) else res["seeds"]})
    return out


def _stats(rs: List[Dict[str, Any]], part: str) -> tuple:
    v = np.array([r["H"] if part == "H" else r["halves"][part]["accuracy"] for r in rs], float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def draw(recs: Dict[str, List[Dict[str, Any]]], out_png: Path) -> Path:
    """Base, new and H per method: each seed a hollow point, the mean a filled one."""
    from matplotlib.figure import Figure

    from .outputs import FIGURE_TITLE

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    methods = [m for m in ORDER if recs.get(m)]
    colors = {"Zero-shot CLIP": "tab:purple", "CoOp": "tab:blue", "CoCoOp": "tab:red"}
    for j, m in enumerate(methods):
        for i, part in enumerate(PARTS):
            x = i + (j - (len(methods) - 1) / 2) * 0.22
            vals = [r["H"] if part == "H" else r["halves"][part]["accuracy"] for r in recs[m]]
            ax.scatter([x] * len(vals), vals, facecolors="none", edgecolors=colors[m], s=25)
            ax.scatter([x], [np.mean(vals)], color=colors[m], marker="*" if m == "Zero-shot CLIP" else "o", s=70,
                       label=m if i == 0 else None)
    random_weights = any(r.get("random_weights") for rs in recs.values() for r in rs)
    demo = any(r.get("demo") for rs in recs.values() for r in rs)
    ax.set_xticks(range(3), ["base", "new", "H"])
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(("synthetic demo data" if demo else "Caltech101") + ": base-to-new (RN50)"
                 + (" -- RANDOM WEIGHTS" if random_weights else ""))
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=130, metadata={"Title": FIGURE_TITLE})
    return out_png


def markdown(recs: Dict[str, List[Dict[str, Any]]], figure: Optional[str] = None) -> List[str]:
    """The report section (Chinese): the table, the verdicts, the published reference."""
    random_weights = any(r.get("random_weights") for rs in recs.values() for r in rs)
    lines = ["### 基类到新类的泛化（CoCoOp 的协议）", ""]
    if random_weights:
        lines += ["> **随机权重**：以下数字不是 CLIP、CoOp 或 CoCoOp 的准确率，只说明流程可以运行。", ""]
    lines += ["| 方法 | 基类 | 新类 | H | 种子数 |", "|---|---|---|---|---|"]
    for m in [m for m in ORDER if recs.get(m)]:
        cells = []
        for part in PARTS:
            mean, std, n = _stats(recs[m], part)
            cells.append(f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else ""))
        lines.append(f"| {m} | {' | '.join(cells)} | {len(recs[m])} |")
    lines += ["", "H = 2·基类·新类/(基类+新类)。均值 ± 种子间样本标准差。", ""]
    if figure:
        lines += [f"![base-to-new]({figure})", ""]
    for v in verdicts(recs):
        lo, hi = v["ci"]
        said = (f"{v['a']} 与 {v['b']} 无可检测的差异" if v["verdict"] == "no difference"
                else f"{v['a']} {WORDS[v['verdict']]} {v['b']}")
        lines.append(f"- {v['part']}：{said}，差 {v['diff']:+.2f} 个百分点，"
                     f"95% 区间 [{lo:+.2f}, {hi:+.2f}]（{v['pairs']} 个种子配对）。")
    lines += ["", f"已发表的参考（另一骨干网络 ViT-B/16，不可直接比较数值；{BASE2NEW_SOURCE}）：", "",
              "| 方法 | 基类 | 新类 | H |", "|---|---|---|---|"]
    lines += [f"| {m} | {b:.2f} | {n:.2f} | {h:.2f} |" for m, (b, n, h) in BASE2NEW_TABLE.items()]
    return lines + [""]


def finish_base2new(folder: Path, changed: bool, report: bool) -> None:
    """After a base-to-new sweep: the figure and the report section beside the records."""
    recs = load_base2new(folder)
    if not recs:
        return
    png = draw(recs, folder / "base2new.png")
    log.info("wrote %s", png)
    if report:
        out = folder / "REPORT_base2new.md"
        write_text(out, "\n".join(["<!-- generated by scripts/report.py machinery from the base-to-new records -->",
                                   "", *markdown(recs, png.name)]) + "\n")
        log.info("wrote %s", out)
