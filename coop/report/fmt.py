"""How the report writes a number, an interval, a verdict, the seeds behind a comparison and a method's name.

One format for every table and sentence of the generated text: accuracies and differences with two
decimals, intervals signed (``[+1.10, +3.50]``), and every comparison says over how many seed pairs it
was made. The statistics live below this module (:mod:`coop.report.stats`,
:mod:`coop.report.comparisons`); the modules that write (:mod:`coop.report.tables`,
:mod:`coop.report.sections`, :mod:`coop.report.analysis`) import it, and it imports none of them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .stats import verdict

# "no difference we can detect": the interval straddles 0 (appendix B defines it; not evidence of equality)
NO_DIFF = "分不出"
VERDICT_ZH = {"higher": "高", "lower": "低", "no difference": NO_DIFF, "untestable": "无法检验"}
VERDICT_VS_COOP = {"higher": "高于 CoOp", "lower": "低于 CoOp", "no difference": NO_DIFF}  # a method - CoOp column


def f2(x: float) -> str:
    return f"{x:.2f}"


def signed(x: float) -> str:
    return f"{x:+.2f}"


def num(x: float, sign: bool = False) -> str:
    """Two decimals; a non-zero value that would print as 0.00 keeps three or four, so that an interval
    printed as "[+0.00, +3.50]" is never called "higher". Never "-0.00"."""
    x = float(x)
    for digits in (2, 3, 4):
        r = round(x, digits)
        if r != 0 or x == 0:
            break
    r = 0.0 if r == 0 else r
    return f"{r:+.{digits}f}" if sign else f"{r:.{digits}f}"


def interval(ci) -> str:
    """``[+1.10, +3.50]``: the one way an interval is printed, in tables and in sentences."""
    lo, hi = ci
    return f"[{num(lo, True)}, {num(hi, True)}]"


def pairs_zh(res: Dict[str, Any]) -> str:
    """Over how many seed pairs a comparison was made: "3 对种子", or, against one unseeded run
    (zero-shot), "3 个种子与同一次运行配对"."""
    n = len(res.get("seeds") or []) or int(res.get("n_seeds", 1))
    return f"{n} 个种子与同一次运行配对" if res.get("single_reference") else f"{n} 对种子"


def pairs_en(res: Dict[str, Any]) -> str:
    n = len(res.get("seeds") or []) or int(res.get("n_seeds", 1))
    if res.get("single_reference"):
        return f"{n} seed{'s' if n != 1 else ''}, each paired with the other side's one run"
    return f"{n} seed pair{'s' if n != 1 else ''}"


def describe(result: Dict[str, Any], lang: str = "zh", pairs: bool = True) -> str:
    """"高 2.30 个百分点（95% 置信区间 [+1.10, +3.50]，3 对种子）" / "higher by 2.30 points (95% CI
    [+1.10, +3.50], 3 seed pairs)". ``pairs=False`` leaves the seed pairs out (a single pair of
    unseeded runs, such as two prompt wordings)."""
    if unchanged(result):
        return f"{NO_DIFF}：{UNCHANGED}"
    v = verdict(result)
    pct = f"{100 * result.get('level', 0.95):g}%"
    size = num(abs(result["diff"]))
    if lang == "zh":
        tail = f"，{pairs_zh(result)}" if pairs else ""
        head = {"higher": f"高 {size} 个百分点", "lower": f"低 {size} 个百分点"}.get(v, NO_DIFF)
        return f"{head}（{pct} 置信区间 {interval(result['ci'])}{tail}）"
    if lang == "en":
        tail = f", {pairs_en(result)}" if pairs else ""
        head = {"higher": f"higher by {size} points", "lower": f"lower by {size} points"}.get(
            v, "no difference we can detect")
        return f"{head} ({pct} CI {interval(result['ci'])}{tail})"
    raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")


def verdict_words(result: Dict[str, Any], pairs: bool = True) -> str:
    """The verdict in words without its interval (printed once, in the table the sentence points to):
    "高 2.30 个百分点（3 对种子）", "分不出高低（观测差 +0.40，3 对种子）"."""
    v = verdict(result)
    tail = pairs_zh(result) if pairs else ""
    if v in ("higher", "lower"):
        return f"{VERDICT_ZH[v]} {num(abs(result['diff']))} 个百分点" + (f"（{tail}）" if tail else "")
    return f"{NO_DIFF}高低（观测差 {num(result['diff'], True)}" + (f"，{tail}）" if tail else "）")


def ci_cell(res: Optional[Dict[str, Any]], words: Dict[str, str] = VERDICT_ZH, pairs: bool = True) -> str:
    """``+2.30 [+1.10, +3.50] 高（3 对种子）`` -- a table cell: the paired difference, its 95% interval,
    the verdict and the seed pairs it rests on. An interval across 0 gets no verdict word (:data:`UNMARKED`
    says so under the table): a grader counted 分不出 42 times in one rendering, and the few marked cells
    are what the reader looks for."""
    if res is None:
        return "—"
    tail = f"（{pairs_zh(res)}）" if pairs else ""
    if unchanged(res):
        return f"{UNCHANGED}{tail}"
    v = verdict(res)
    word = "" if v == "no difference" else f" {words[v]}"
    return f"{num(res['diff'], True)} {interval(res['ci'])}{word}{tail}"


UNCHANGED = "±0（没有一张图的对错改变）"  # a difference that is exactly 0 on every resample: no interval to give


def unchanged(res: Dict[str, Any]) -> bool:
    """No test image's right/wrong differs between the two sides: every resample's difference is 0, and a
    "95% interval" [+0.00, +0.00] would read as a measurement (a grader)."""
    return res["diff"] == 0 and tuple(res["ci"]) == (0.0, 0.0)


UNMARKED = f"区间跨过 0 的格不标判断（{NO_DIFF}）。"  # the note under every table of ci_cell s


def ci_column(results: Sequence[Optional[Dict[str, Any]]], words: Dict[str, str] = VERDICT_ZH) -> Tuple[List[str], str]:
    """A table's column of :func:`ci_cell` s, and the note under the table: when every comparison rests on
    the same seeds, they are said once there ("表中每个比较：3 对种子。") instead of in every cell."""
    said = {pairs_zh(r) for r in results if r}
    if len(said) == 1:
        return [ci_cell(r, words, pairs=False) for r in results], f"表中每个比较：{said.pop()}；{UNMARKED}"
    return [ci_cell(r, words) for r in results], UNMARKED


_MD_SPECIAL = "\\`*_[]<>|"


def md_escape(text: str) -> str:
    """Plain text in a Markdown table cell: every Markdown-special character backslash-escaped."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")


def rel_link(target: Path, out: Path) -> str:
    """``target`` relative to the folder of ``out``, with forward slashes (for Markdown links)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(out).resolve().parent)).as_posix()


def timing(values) -> str:
    """Wall times of several runs: "12.30（11.90–12.80）", the mean and the range (one run: its value)."""
    vals = [float(v) for v in values]
    if not vals:
        return "—"
    mean = sum(vals) / len(vals)
    return f2(mean) if len(vals) == 1 else f"{f2(mean)}（{f2(min(vals))}–{f2(max(vals))}）"


METHOD_ZH = {"Linear probe CLIP": "线性探测 CLIP", "Zero-shot CLIP": "零样本 CLIP"}


def zh(method: str) -> str:
    """A method's name as Chinese prose writes it after Chinese text (tables keep the records' names):
    a Latin name gets a space before it."""
    name = METHOD_ZH.get(method, method)
    return (" " if name[:1].isascii() else "") + name


def spaced(name: str) -> str:
    """A name followed by Chinese text: a space after it when it ends in a Latin letter or digit, none after
    a full-width character (the guarded method's "（把关后）")."""
    return name + (" " if name[-1:].isascii() else "")


def _zh(method: str) -> str:
    """The name alone, without the leading space."""
    return zh(method).strip()
