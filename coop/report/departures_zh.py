"""Appendix A of the report: where a run departs from the original code, short and in Chinese.

    md = appendix_departures_zh()   # between report/REPORT.template.md's departures markers (scripts/make_figures.py)

CoOp's list (:data:`coop.methods.departures.DEPARTURES`) with its reasons: they decide how our numbers
compare with the paper's. The baselines' (:func:`coop.methods.baseline_departures.baseline_departures`)
with what differs only; their reasons are in docs/baselines.md, rendered from the same list.
"""
from __future__ import annotations

from typing import List


def baseline_rows_zh() -> List[str]:
    """The baselines' departures from their own code: which baselines, what differs."""
    from ..methods.baseline_departures import _who, baseline_departures

    rows = ["| # | 基线 | 与其原始代码的差异 |", "|---|---|---|"]
    for i, d in enumerate(baseline_departures(), 1):
        who = _who(d, lambda m: m.name_zh, "、", "全部")
        flag = f"（消除：`{d.flag}`）" if d.flag else ""
        rows.append(f"| {i} | {who} | {d.title_zh}{flag} |")
    return rows


def appendix_departures_zh() -> str:
    """Both lists as the report's appendix A block."""
    from ..methods.departures import markdown_zh

    lines = ["表 A.1：与 CoOp 原实现的差异（每个结果文件的 `departures` 字段记录该次运行适用了哪几项）。", ""]
    lines += [markdown_zh()]
    lines += ["", "表 A.2：七个基线与各自原始代码（CoOp 仓库的 lpclip、Tip-Adapter、CLAP 仓库的 adapters.py）的差异。", ""]
    lines += baseline_rows_zh()
    return "\n".join(lines)
