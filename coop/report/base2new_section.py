"""Section 10's generated part: the base-to-new results, read by :mod:`coop.report.base2new`.

    lines = base2new_part(folder, out)   # Markdown for between the base-to-new markers of the report

One table of base, new and H per method (H of the seed-averaged base and new, as the CoCoOp paper
reports it), the figure, and one table of the paired comparisons (CoCoOp against CoOp, each against
zero-shot CLIP) with their 95% intervals -- each interval printed once. Without records, a status
line saying what would be here and how to make it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from .fmt import NO_DIFF, _zh, f2, interval, num, rel_link
from .numbering import Numbering

B2N_BEGIN, B2N_END = "<!-- base2new:begin -->", "<!-- base2new:end -->"
STATUS = ("**尚无基类到新类的运行记录**（本协议还没有运行）。运行 `bash scripts/run_all.sh --protocol base2new` 之后，本节给出"
          "各方法在基类、新类上的准确率与 H 的表和图，以及 CoCoOp 与 CoOp、两者与零样本 CLIP 的配对比较。")
VERDICT = {"higher": "高", "lower": "低", "no difference": NO_DIFF}
HAND_TABLES = 1  # appendix D's hand-written table D.1 (the CoCoOp paper's) comes before the generated ones


def base2new_folder(results: Path) -> Optional[Path]:
    """Where a results folder keeps its base-to-new records: ``RESULTS/base2new``, or the folder itself."""
    from .base2new import load_base2new

    for folder in (Path(results) / "base2new", Path(results)):
        if folder.is_dir() and load_base2new(folder):
            return folder
    return None


def _records(recs: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    return [r for rs in recs.values() for r in rs]


def random_weights(recs: Dict[str, List[Dict[str, Any]]]) -> bool:
    return any(r.get("random_weights") for r in _records(recs))


def table(recs: Dict[str, List[Dict[str, Any]]], num_: Numbering) -> List[str]:
    """One row per group of runs, in :func:`coop.report.base2new.groups`' order (runs of other settings as
    named groups), by :func:`coop.report.base2new.summary` (H of the seed-averaged halves)."""
    from .base2new import summary

    rs = _records(recs)
    model = sorted({str((r.get("model") or {}).get("name")) for r in rs})
    what = "随机权重模型的 top-1 (%)：不是 CLIP/CoOp 的准确率" if random_weights(recs) else "测试集 top-1 准确率 (%)"
    out = [f"{num_.table('b2n')}：基类到新类（{'、'.join(model)}），{what}。基类、新类为种子平均 ± 种子间样本标准差；"
           "H 为这两个平均值的调和平均 2·基类·新类/(基类+新类)（CoCoOp 论文的做法），不是各种子 H 的平均；方括号里设置不同的"
           "运行单列一行。", "", "| 方法 | 基类 | 新类 | H | 种子数 |", "|---|---:|---:|---:|---:|"]
    for g in [g for g in recs if recs[g]]:
        s = summary(recs[g])
        cells = [f2(s[p]["mean"]) + (f" ± {f2(s[p]['std'])}" if p != "H" and s[p]["n"] > 1 else "") for p in ("base", "new", "H")]
        out.append(f"| {_zh(g)} | {' | '.join(cells)} | {'—（一次运行）' if g == 'Zero-shot CLIP' else len(recs[g])} |")
    return out


def comparisons(recs: Dict[str, List[Dict[str, Any]]], num_: Numbering) -> List[str]:
    from .base2new import verdicts

    rows: Dict[tuple, Dict[str, str]] = {}
    for v in verdicts(recs):
        pairs = f"{v['pairs']} 个种子与同一次运行配对" if v.get("single_reference") else f"{v['pairs']} 对种子"
        rows.setdefault((v["a"], v["b"]), {})[v["part"]] = (f"{num(v['diff'], True)} {interval(v['ci'])} "
                                                            f"{VERDICT[v['verdict']]}（{pairs}）")
    if not rows:
        return []
    out = [f"{num_.table('b2n_pairs')}：配对比较（前者 − 后者，百分点，95% 置信区间，方法见附录 B）。基类与新类逐图配对；"
           "H 的差是两者表中 H（种子平均的基类、新类的调和平均）之差，区间对两半的测试图像与种子分别重采样。", "",
           "| 比较 | 基类 | 新类 | H |", "|---|---|---|---|"]
    for (a, b), cells in rows.items():
        out.append(f"| {a} − {b} | " + " | ".join(cells.get(p, "—") for p in ("base", "new", "H")) + " |")
    return out


def base2new_part(folder: Optional[Path], out: Path, figures: bool = True) -> List[str]:
    """The generated part of appendix D for the records in ``folder`` (None or empty: the status line)."""
    from .base2new import draw, load_base2new

    recs = load_base2new(folder) if folder is not None else {}
    if not recs:
        return [STATUS]
    num_ = Numbering("D", tables=HAND_TABLES)
    lines: List[str] = []
    if random_weights(recs):
        demo = any(r.get("demo") for r in _records(recs))
        lines += [f"> **⚠️ 随机权重{'、合成数据' if demo else ''}。** 本节的数字来自随机权重的模型，**不是 CLIP、CoOp 或 "
                  "CoCoOp 的准确率**，只说明流程能运行。", ""]
    for n in getattr(recs, "notes", []):  # what the selection left out or showed apart (coop.runs.selection)
        lines += [f"> 注：{n}", ""]
    lines += table(recs, num_) + [""]
    if figures:
        png = Path(out).parent / "figures" / "base2new.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        draw(recs, png)
        lines += [f"![base-to-new]({rel_link(png, out)})", "",
                  f"{num_.figure('b2n')}：{num_.ref('b2n')} 的图：每个方法的基类、新类与 H，实心点为种子平均，空心点为每个种子"
                  "（H 的实心点与表中相同：种子平均的基类、新类的调和平均）。", ""]
    lines += comparisons(recs, num_)
    return lines
