"""Section 7 of the report as generated from result records: tables, figures, analysis, take-away.

    lines = results_part(loaded, out, results)   # Markdown lines for between the results markers

Figures are written into ``figures/`` beside ``out`` (report/figures/ for report/REPORT.md): the
assignment's figure alone (zero-shot star and CoOp's line, ``fewshot.png``), the comparison with the
baselines and block modifications (``fewshot_all.png``) and the training curves (``curves.png``).
Figures and tables are numbered per section (:mod:`coop.report.numbering`); the statistical method is
stated once, in appendix B, and each interval is printed once (in its table).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from ..runs.results import any_random
from .analysis import analysis, takeaways
from .comparisons import noninferiority_tests
from .fmt import _zh, rel_link
from .numbering import Numbering
from .outputs import GENERATED_LINE
from .prompts import prompts_section, zeroshot_summary
from .sections import baselines_section, block_mod_evidence, per_class_section
from .curves import curve_rows, draw_curves
from .tables import (CURVES_NAME, _accuracy_table, _all_records, _block_mod_section, _method_order,
                     _nearest_words_section, _provenance, accuracy_summary)

FIGURES = "figures"
FEWSHOT, FEWSHOT_ALL = "fewshot", "fewshot_all"  # coop.report.plot.plot_figures: STEM and STEM_all

BANNER = ("> **⚠️ DEMO — RANDOM WEIGHTS. 演示：随机权重。** 下面的数字来自随机权重的模型"
          "（以及演示用的合成数据），**不是 CLIP 或 CoOp 的准确率**，只说明流程能跑通、报告能生成。"
          "These numbers are NOT accuracies of CLIP or CoOp.")
# random weights on real images (the "no weights yet" check of the real data): no demo, no synthetic data
BANNER_REAL_DATA = ("> **⚠️ RANDOM WEIGHTS. 随机权重。** 下面的数字来自随机权重的模型（真实图像上的流程检查），"
                    "**不是 CLIP 或 CoOp 的准确率**，只说明数据、划分、缓存与报告能在这些图像上运行。"
                    "These numbers are NOT accuracies of CLIP or CoOp.")


# the last line of a random-weight section 7: what is above it, not what follows (section 8 is hand-written)
BANNER_END = ("> **⚠️ 第 7 节到此为止：上面的数字来自随机权重的模型，不是 CLIP 或 CoOp 的准确率。** "
              "Section 7 above: NOT accuracies of CLIP or CoOp.")


def is_demo(loaded: Dict[str, Any]) -> bool:
    """True if any record is marked as the demo's (synthetic images): then nothing is called Caltech101."""
    recs = _all_records(loaded) + [r for rs in (loaded.get("baselines") or {}).values() for r in rs]
    return any(bool(r.get("demo")) for r in recs)


def banner(loaded: Dict[str, Any]) -> str:
    """The warning a rendering of random-weight records carries: the demo's, or real images'."""
    return BANNER if is_demo(loaded) else BANNER_REAL_DATA


def _figure(lines: List[str], num: Numbering, key: str, png: Path, out: Path, alt: str, caption: str) -> None:
    lines += [f"![{alt}]({rel_link(png, out)})", "", f"{num.figure(key)}：{caption}", ""]


def fewshot_figures(loaded: Dict[str, Any], out: Path, num: Numbering, figures: bool) -> List[str]:
    """The assignment's figure (star + CoOp alone), then the comparison with everything else, if any."""
    if not figures:  # the figure numbers stay, so that the text's "图 7.1" still points at something
        return [f"{num.figure('fewshot')}：作业要求的图，这次渲染没有画（--no-figures）。", ""]
    from .plot import SEEDS_UP_TO, comparison_panels, plot_figures

    folder = Path(out).parent / FIGURES
    demo, rw = is_demo(loaded), any_random(loaded)
    data = "演示用合成数据（随机权重：纵轴不是 CLIP/CoOp 的准确率）" if demo else ("真实图像、随机权重（纵轴不是 CLIP/CoOp 的准确率）" if rw else "Caltech101 ")
    lines: List[str] = []
    plot_figures(loaded, folder / FEWSHOT)  # FEWSHOT and FEWSHOT_ALL
    _figure(lines, num, "fewshot", folder / f"{FEWSHOT}.png", out, f"few-shot: {'synthetic demo data' if demo else 'Caltech101'}",
            f"{data}上的 few-shot 结果（作业要求的图）。紫色五角星为零样本 CLIP（0 shot）；蓝色实线连接 CoOp 在每个 shot 数下"
            "各种子的平均；空心蓝点为每个种子（“×2”标出两个种子重合的点）。竖线是 95% 区间：星的只计测试图像的抽样（Wilson，零样本是一次确定性运行），"
            f"CoOp 平均的计入测试图像与种子两者（附录 B 的区间）。两者在同一批测试图像上，比较看{num.ref('accuracy', '表 7.1')}的配对区间。"
            "横轴的 0、1、2、4 等距排列，不按数值比例。")
    panels = comparison_panels(loaded)
    if panels:
        said = [f"{p['title_zh']}（{'、'.join(_zh(m) for m in p['methods'])}；" + ("空心标记为每个种子）" if len(p["methods"]) + 1 <= SEEDS_UP_TO
                                                             else "只画种子平均，种子间标准差见本节的表）") for p in panels]
        _figure(lines, num, "fewshot_all", folder / f"{FEWSHOT_ALL}.png", out,
                f"few-shot: all methods{', synthetic demo data' if demo else ''}",
                f"与其他方法的比较，{len(panels)} 栏共用一个纵轴范围，每栏都有图 {num.section}.1 的五角星与 CoOp 的蓝线作参照：" + "；".join(said) + "。")
    return lines


def results_part(loaded: Dict[str, Any], out: Path, results: Path, figures: bool = True,
                 source: str = "results", tests: Optional[Dict[str, Any]] = None) -> List[str]:
    """The generated section 7 (without its ``## 7.`` heading), as Markdown lines (``tests``: the
    rendering's block-modification tests, :func:`coop.report.comparisons.noninferiority_tests`)."""
    out = Path(out)
    num = Numbering("7")
    rw, demo = any_random(loaded), is_demo(loaded)
    summary = accuracy_summary(loaded)
    methods = ([m for m in _method_order(summary) if m == "CoOp" or m.startswith("CoOp [")]  # CoOp and its variants
               or _method_order(summary)[:1])
    lines: List[str] = [banner(loaded), ""] if rw else []
    lines += [f"{GENERATED_LINE} from {source}; edit the code, not this text -->", ""]
    for n in loaded.get("notes") or []:  # what the selection left out or split (coop.runs.selection)
        lines += [f"> 注：{n}", ""]

    lines += ["### 7.1 零样本 CLIP 与 CoOp", ""]
    summary_zs = zeroshot_summary(loaded)
    lines += [summary_zs, ""] if summary_zs else []
    what = "随机权重模型的测试集 top-1 (%)：不是 CLIP/CoOp 的准确率" if rw else "测试集 top-1 准确率 (%)"
    lines += [f"{num.table('accuracy')}：{what}。CoOp 取最后一个 epoch（不按测试集挑选）；标准差为种子间的样本标准差；"
              "“相对零样本”为同一测试图像上的配对差及其 95% 置信区间（方法见附录 B）；最后一列为训练后的模型在它自己的训练图像上的准确率"
              "（与测试图像同样的中心裁剪，各种子合并；括号内为零样本 CLIP 在同样图像上的准确率。只作观察：它与测试准确率的差距是第 8 节过拟合与训练不足两个假设的一个迹象）。", ""]
    lines += _accuracy_table(loaded, summary, methods) + [""] + _provenance(loaded) + [""]

    lines += ["### 7.2 few-shot 曲线", ""] + fewshot_figures(loaded, out, num, figures)

    lines += ["### 7.3 与基线方法及已发表结果的比较", ""] + baselines_section(loaded, num) + [""]
    lines += ["### 7.4 零样本提示的措辞", ""] + prompts_section(loaded, num) + [""]
    lines += ["### 7.5 各类别的变化", ""] + per_class_section(loaded, num) + [""]

    lines += ["### 7.6 训练曲线", ""]
    curves = out.parent / FIGURES / CURVES_NAME
    if figures and draw_curves(loaded, curves):
        _figure(lines, num, "curves", curves, out, "training curves",
                f"{'演示（合成数据、随机权重）的' if demo else ''}训练曲线，每行一个方法（{curve_rows(loaded)}），每条线是一个 shot 数的种子平均"
                "（颜色 = shot 数，阴影为各种子的最小–最大）：左为训练集交叉熵，右为训练准确率（该 epoch 的随机裁剪上，按 epoch 平均）。")
    else:
        lines += ["（记录里没有训练历史，或未生成图。）", ""]

    lines += ["### 7.7 学到的上下文向量最近的词", ""] + _nearest_words_section(loaded, num) + [""]
    lines += ["### 7.8 块修改（第 9 节）", ""]
    lines += _block_mod_section(loaded, summary, num) or ["（没有块修改的运行。）"]
    for paragraph in block_mod_evidence(loaded):
        lines += ["", paragraph]
    lines += ["", "### 7.9 分析（由结果文件计算生成）", ""]
    tests = tests if tests is not None else noninferiority_tests(loaded)
    for paragraph in analysis(loaded, num, tests):
        lines += [paragraph, ""]
    lines += ["### 7.10 要点（由结果文件计算生成）", ""] + takeaways(loaded, tests) + [""]
    if rw:
        lines = label_random(lines) + [BANNER_END]
    return lines


RANDOM_NOTE = "（随机权重：本小节的数字不是准确率。）"


def label_random(lines: List[str]) -> List[str]:
    """Each subsection that shows numbers but does not say they come from random weights gets
    :data:`RANDOM_NOTE` under its heading (:func:`coop.report.crossref.unlabelled_random` finds them)."""
    from .crossref import unlabelled_random

    bare = set(unlabelled_random("\n".join(lines))) - {"(start)"}
    out: List[str] = []
    for line in lines:
        out.append(line)
        if line in bare:
            out += ["", RANDOM_NOTE]
    return out
