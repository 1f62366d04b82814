"""Appendix A of the report: where a run departs from the original code, short and in Chinese.

    md = appendix_departures_zh()   # between report/REPORT.template.md's departures markers (scripts/make_figures.py)

CoOp's list (:data:`coop.methods.departures.DEPARTURES`) with its reasons: they decide how our numbers
compare with the paper's. Of the baselines' (:func:`coop.methods.baseline_departures.baseline_departures`)
those in what is chosen (aspect "selection"), the rest counted; the whole list with reasons is
docs/baselines.md, rendered from the same data.
"""
from __future__ import annotations

from collections import Counter
from typing import List


def baseline_rows_zh() -> List[str]:
    """The baselines' departures from their own code that change what a number means against the published
    ones (aspect "selection": what is chosen on which images), one row each; then one sentence counting the
    rest by aspect -- the whole list, with reasons, is docs/baselines.md, rendered from the same data."""
    from ..methods.baseline_departures import ASPECTS, _who, baseline_departures

    every = baseline_departures()
    rows = ["| 基线 | 选择上与其原始代码的差异 |", "|---|---|"]
    for d in (d for d in every if d.aspect == "selection"):
        who = _who(d, lambda m: m.name_zh, "、", "全部")
        flag = f"（消除：`{d.flag}`）" if d.flag else ""
        rows.append(f"| {who} | {d.title_zh}{flag} |")
    rest = Counter(d.aspect for d in every if d.aspect != "selection")
    return rows + ["", f"其余 {sum(rest.values())} 项只改变" + "、".join(f"{ASPECTS[a]}（{n} 项）" for a, n in rest.items())
                   + "，不改变方法与选择；逐项及原因见 docs/baselines.md，每个结果文件的 `departures` 字段记录适用了哪几项。"]


def appendix_departures_zh() -> str:
    """Both lists as the report's appendix A block."""
    from ..methods.departures import markdown_zh

    lines = ["表 A.1：与 CoOp 原实现的差异（每个结果文件的 `departures` 字段记录该次运行适用了哪几项）。", ""]
    lines += [markdown_zh()]
    lines += ["", "表 A.2：七个基线在选择上与各自原始代码（CoOp 仓库的 lpclip、Tip-Adapter、CLAP 仓库的 adapters.py）的差异"
              "（与已发表的数字比较时要注意的几项）。", ""]
    lines += baseline_rows_zh()
    return "\n".join(lines)
