"""The report's results part, rendered as Markdown from result JSON files only.

    write_report("results", "report/REPORT.md")   # replaces the text between the results markers
    write_report("results/demo", "/tmp/demo.md")  # a whole file, with the DEMO banner on top

What it writes (Chinese, as ``report/REPORT.md``): zero-shot CLIP against CoOp at every shot count
(mean +- std over seeds and every seed's value), the few-shot figure (:func:`coop.report.plot.plot_fewshot`),
per-class gains and losses of CoOp at its largest shot count, the training curves (``curves.png``
next to the output file), the vocabulary words nearest to each learned context vector, and, when
runs with a transformer-block modification exist, their comparison with plain CoOp.

Every number is read from the records of :func:`coop.runs.results.load_results`; nothing is typed in.
Records made with random weights get a banner saying they are not CLIP or CoOp accuracies, and such
records are refused for a file that holds the results markers (``report/REPORT.md``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..runs.results import any_random, load_results
from ..utils.atomic import write_text
from ..utils.errors import UserError
from ..utils.paths import PROJECT_ROOT, REPORT
from .analysis import analysis, conclusion
from .fmt import rel_link
from .outputs import BEGIN, END, GENERATED_LINE
from .references import cited_list
from .sections import baselines_section, block_mod_evidence, per_class_section, prompts_section
from .tables import (CURVES_NAME, _accuracy_table, _all_records, _block_mod_section, _method_order,
                     _nearest_words_section, _provenance, accuracy_summary, draw_curves, plot_fewshot_figure)

log = logging.getLogger(__name__)

REPO_REPORT = REPORT

BANNER = ("> **⚠️ DEMO — RANDOM WEIGHTS. 演示：随机权重。** 下面的数字来自随机权重的模型"
          "（以及演示用的合成数据），**不是 CLIP 或 CoOp 的准确率**，只说明流程能跑通、报告能生成。"
          "These numbers are NOT accuracies of CLIP or CoOp.")
# random weights on real images (the "no weights yet" check of the real data): no demo, no synthetic data
BANNER_REAL_DATA = ("> **⚠️ RANDOM WEIGHTS. 随机权重。** 下面的数字来自随机权重的模型（真实图像上的流程检查），"
                    "**不是 CLIP 或 CoOp 的准确率**，只说明数据、划分、缓存与报告能在这些图像上运行。"
                    "These numbers are NOT accuracies of CLIP or CoOp.")


def banner(loaded: Dict[str, Any]) -> str:
    """The warning a report of random-weight records opens and closes with: the demo's, or real images'."""
    return BANNER if is_demo(loaded) else BANNER_REAL_DATA


def is_demo(loaded: Dict[str, Any]) -> bool:
    """True if any record is marked as the demo's (synthetic images): then nothing is called Caltech101."""
    recs = _all_records(loaded) + [r for rs in (loaded.get("baselines") or {}).values() for r in rs]
    return any(bool(r.get("demo")) for r in recs)


def standalone_title(loaded: Dict[str, Any]) -> str:
    """The title of a results file of its own: the demo's says its data are synthetic."""
    if is_demo(loaded):
        return "# 结果（演示：合成数据、随机权重，不是 Caltech101 上的 CLIP 或 CoOp 结果）"
    return "# 结果：零样本 CLIP 与 CoOp（Caltech101）"


def shown_path(path: Path) -> str:
    """A results folder as the report names it: relative to the project when inside it, else its name."""
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return Path(path).name


def render_results(loaded: Dict[str, Any], out: Path, results: Path, figures: bool = True,
                   title: Optional[str] = None) -> str:
    """The results part as Markdown (starting with the DEMO banner if any record has random
    weights). Images are written (``curves.png`` next to ``out``, the few-shot figure into
    ``results``) and linked relative to ``out``."""
    out, results = Path(out), Path(results)
    recs = _all_records(loaded)
    if not recs:
        raise UserError(f"no result files in {results}: run scripts/zeroshot.py and scripts/train_coop.py "
                        f"(or bash scripts/run_all.sh) first")
    random_weights = any_random(loaded)
    demo = is_demo(loaded)
    summary = accuracy_summary(loaded)
    methods = [m for m in _method_order(summary) if m == "CoOp"] or _method_order(summary)[:1]
    lines: List[str] = []
    if random_weights:
        lines += [banner(loaded), ""]
    if title:  # a file of its own: the sections it refers to are report/REPORT.md's
        lines += [title, "", "> 节号与 report/REPORT.md 相同：文中提到的第 2–6、8、9 节及参考文献编号都指该报告。", ""]
    lines += [f"{GENERATED_LINE} from {shown_path(results)}; edit the code, not this text -->", ""]

    for n in loaded.get("notes") or []:  # what the selection left out or split (coop.runs.selection)
        lines += [f"> 注：{n}", ""]
    lines += ["### 7.1 零样本 CLIP 与 CoOp", ""]
    lines += _accuracy_table(loaded, summary, methods)
    lines += ["",
              "准确率为测试集 top-1 (%)，CoOp 取最后一个 epoch 的模型（不按测试集挑选）。"
              "标准差为各种子间的样本标准差（numpy.std，ddof=1；只有 1 个种子时记为 0）；“相对零样本”是同一测试图像上的配对差及其 95% 置信区间"
              "（配对自助法，有两对及以上种子时与按种子的 t 区间取并集，见 7.9 节开头），“高/低”表示区间整体在 0 的一侧。最后一列是最后一个 epoch 在随机裁剪上的训练准确率"
              "（种子平均；与测试准确率不在同一批图像上，只作观察，见第 8 节）。", ""]
    lines += _provenance(loaded) + [""]

    lines += ["### 7.2 few-shot 曲线", ""]
    png = plot_fewshot_figure(loaded, results) if figures else None
    if png is not None and png.exists():
        data = "演示用合成数据（随机权重，不是 Caltech101 的结果）" if demo else "Caltech101 "
        lines += [f"![few-shot: {'synthetic demo data' if demo else 'Caltech101'}]({rel_link(png, out)})", "",
                  f"图 2：{data}上的 few-shot 曲线。紫色星为零样本 CLIP（0 shot），蓝线为 CoOp 各 shot 数下"
                  "种子的平均准确率，其他线型为基线方法与块修改（见图例），空心标记为每个种子的结果（图中文字为英文）。", ""]
    else:
        lines += ["（few-shot 图未生成：coop.report.plot 不可用。）" if figures else "（未生成图。）", ""]

    lines += ["### 7.3 与基线方法及已发表结果的比较", ""] + baselines_section(loaded) + [""]
    lines += ["### 7.4 零样本提示的措辞", ""] + prompts_section(loaded) + [""]
    lines += ["### 7.5 各类别的提升与下降", ""] + per_class_section(loaded) + [""]

    lines += ["### 7.6 训练曲线", ""]
    curves = out.parent / CURVES_NAME
    if figures and draw_curves(loaded, curves):
        lines += [f"![training curves]({rel_link(curves, out)})", "",
                  f"图 3：{'演示（合成数据、随机权重）的' if demo else ''}训练曲线。每条线是一次运行（颜色 = shots，线型 = seed）：左为训练集交叉熵，右为训练准确率"
                  "（在该 epoch 的随机裁剪上，按 epoch 平均）。", ""]
    else:
        lines += ["（记录里没有 history，或未生成图。）", ""]

    lines += ["### 7.7 学到的上下文向量最近的词", ""] + _nearest_words_section(loaded) + [""]
    lines += ["### 7.8 块修改的结果（第 9 节）", ""]
    lines += _block_mod_section(loaded, summary) or ["（没有块修改的运行：`bash scripts/run_all.sh --block-mod adapter` 会加上。）"]
    for paragraph in block_mod_evidence(loaded):
        lines += ["", paragraph]
    lines += ["", "### 7.9 分析（由结果文件计算生成）", ""]
    for paragraph in analysis(loaded):
        lines += [paragraph, ""]
    lines += ["### 7.10 结论（由结果文件计算生成）", "", conclusion(loaded), ""]
    if title:  # a file of its own: the references the text cites (numbered as in the report)
        lines += ["### 参考文献（编号与 report/REPORT.md 相同）", ""] + cited_list("\n".join(lines)) + [""]
    if random_weights:
        lines += ["", banner(loaded)]
    return "\n".join(lines).rstrip() + "\n"


def replace_between_markers(text: str, body: str) -> str:
    """``text`` with everything strictly between the markers replaced by ``body`` (the markers and
    all text outside them are kept byte for byte)."""
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < 0 or j < i or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise UserError(f"the results markers must appear once each, {BEGIN} before {END}")
    start = i + len(BEGIN)
    return text[:start] + "\n" + body.strip("\n") + "\n" + text[j:]


def has_markers(path: Path) -> bool:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return BEGIN in text and END in text


def check_may_write(loaded: Dict[str, Any], out: Path) -> None:
    """Random-weight numbers never go into the report: refuse ``report/REPORT.md`` and any file that
    holds the results markers (a report whose results part they would replace)."""
    if not any_random(loaded):
        return
    out = Path(out)
    if out.resolve() == REPO_REPORT.resolve() or has_markers(out):
        raise UserError(f"refusing to write numbers from RANDOM weights into {out}: they are not accuracies "
                        f"of CLIP or CoOp. Write the demo report elsewhere (e.g. --out results/demo/REPORT_demo.md)")


DEPARTURES_BEGIN, DEPARTURES_END = "<!-- departures-zh:begin -->", "<!-- departures-zh:end -->"


def departures_block(text: str) -> str:
    """The text between the report's departures markers."""
    return text.split(DEPARTURES_BEGIN)[1].split(DEPARTURES_END)[0].strip("\n")


# The English table lives in docs/recipe.md ("Where we depart from CoOp"), between these markers.
DOCS_RECIPE = PROJECT_ROOT / "docs" / "recipe.md"
RECIPE_BEGIN, RECIPE_END = "<!-- departures:begin -->", "<!-- departures:end -->"


def _between(path: str | os.PathLike, begin: str, end: str, body: str) -> None:
    text = Path(path).read_text(encoding="utf-8")
    i, j = text.index(begin) + len(begin), text.index(end)
    write_text(path, text[:i] + "\n" + body + "\n" + text[j:])


# The baselines' departures from their own code: English in docs/baselines.md, Chinese in the report.
DOCS_BASELINES = PROJECT_ROOT / "docs" / "baselines.md"
BASELINES_BEGIN, BASELINES_END = "<!-- baseline-departures:begin -->", "<!-- baseline-departures:end -->"
BASELINES_ZH_BEGIN, BASELINES_ZH_END = "<!-- baseline-departures-zh:begin -->", "<!-- baseline-departures-zh:end -->"


def refresh_departures(path: str | os.PathLike = REPO_REPORT, recipe: Optional[str | os.PathLike] = None,
                       baselines: Optional[str | os.PathLike] = None) -> None:
    """Render :data:`coop.methods.departures.DEPARTURES` between the report's departures markers (in
    Chinese) and, with ``recipe``, between those of docs/recipe.md (:data:`DOCS_RECIPE`, in English):
    one list, two languages. The baselines' list (:data:`coop.methods.departures.BASELINE_DEPARTURES`)
    goes between the report's baseline markers when it has them, and into ``baselines`` (English;
    default: the baselines.md beside ``recipe``, when it exists)."""
    from ..methods.departures import baselines_markdown_en, baselines_markdown_zh, markdown_en, markdown_zh

    _between(path, DEPARTURES_BEGIN, DEPARTURES_END, markdown_zh())
    if BASELINES_ZH_BEGIN in Path(path).read_text(encoding="utf-8"):
        _between(path, BASELINES_ZH_BEGIN, BASELINES_ZH_END, baselines_markdown_zh())
    if recipe is not None:
        _between(recipe, RECIPE_BEGIN, RECIPE_END, markdown_en())
        if baselines is None and Path(recipe).with_name("baselines.md").exists():
            baselines = Path(recipe).with_name("baselines.md")
    if baselines is not None:
        _between(baselines, BASELINES_BEGIN, BASELINES_END, baselines_markdown_en())


def write_report(results: str | os.PathLike, out: str | os.PathLike, figures: bool = True) -> Path:
    """Render the results of ``results`` into ``out`` (between its markers if it has them, else the
    whole file) atomically. Returns ``out``."""
    results, out = Path(results), Path(out)
    loaded = load_results(results)
    check_may_write(loaded, out)
    if has_markers(out):
        body = render_results(loaded, out, results, figures=figures)
        text = replace_between_markers(out.read_text(encoding="utf-8"), body)
    else:
        text = render_results(loaded, out, results, figures=figures, title=standalone_title(loaded))
    write_text(out, text)
    log.info("wrote %s", out)
    return out
