"""Section 7 before a real run: what has been run, what the figure will show, what to compare with.

    md = status_markdown()   # between report/REPORT.template.md's results markers, until real records replace it

It says only what is true without real weights: the demo ran (synthetic images, random weights); the
real-size runs ran on the real images with random weights (their cost is appendix C's table, their
top-1 is not reported); the assignment's figure is specified, and shown as the demo drew it, labelled
synthetic; the published numbers need no weights. ``scripts/make_figures.py`` writes it;
tests/test_report_states.py checks the committed block is this text.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..utils.hashing import sha256_file
from ..utils.paths import SPLIT
from . import published
from .cost import REALSIZE, load

DEMO_FIGURE = "figures/demo_fewshot.png"  # relative to report/; drawn by scripts/make_figures.py --demo-results


def _cost(realsize: Optional[Dict[str, Any]]) -> str:
    """", 共 112 min、进程峰值内存 2.0 GB" from the measurement's totals ("" without it)."""
    tot = (realsize or {}).get("totals") or {}
    if not tot.get("measured_s"):
        return ""
    peak = f"、进程峰值内存 {tot['peak_rss_mb'] / 1024:.1f} GB" if tot.get("peak_rss_mb") else ""
    return f"，共 {tot['measured_s'] / 60:.0f} min{peak}，2 核 CPU"


def status_markdown(realsize: Optional[Dict[str, Any]] = None) -> str:
    """The status block (Chinese)."""
    if realsize is None:
        try:
            realsize = load(REALSIZE)
        except OSError:
            realsize = None
    lines = [
        "**状态：还没有用真实权重运行，本节没有 CLIP 或 CoOp 的准确率。** 已经运行的：",
        "",
        "- **演示**（`bash scripts/run_all.sh --demo`）：合成图像、随机权重的 3 层小模型 `random:tiny`，走完整个流程（零样本、"
        "CoOp、两种块修改、七个基线、图与报告），只说明流程能跑通、报告能从记录生成。",
        "- **真实尺寸、随机权重**（真实的 Caltech101 图像与我们的划分、RN50 的结构、随机权重 `random:RN50`，种子 1）："
        f"4 shot 的一整次运行（从空缓存开始{_cost(realsize)}），以及较早的 1、2 shot 运行。它们只测量代价"
        "（附录 C），随机权重的 top-1 不报告。",
        "",
        "用真实权重与图像运行 `bash scripts/run_all.sh` 后，`scripts/report.py` 用运行记录生成的表、图与分析替换本节。",
        "",
        "**作业要求的图。** 横轴为每类的标注图像数 0、1、2、4；0 处紫色五角星是零样本 CLIP；蓝色实线连接 CoOp 在每个 "
        "shot 数下 3 个种子的平均，每个种子一个空心蓝点；竖线是 95% 区间（星：测试图像的抽样；CoOp：测试图像与种子）；有基线的记录时另画一张比较图。下面是演示记录画出的：",
        "",
        f"![演示：合成图像、随机权重，不是结果]({DEMO_FIGURE})",
        "",
        "图 7.1（演示，不是结果）：纵轴不是 CLIP/CoOp 的准确率；横轴等距，不按比例。",
        "",
        "表 7.1：可以先对照的已发表数字（同一骨干 RN50、CoOp 的划分，**不是本项目的结果**）。CoOp 论文 [2] 的 "
        "Caltech101 数字只以曲线发表，不从图上读数；下表来自 Tip-Adapter 的运行记录。",
        "",
    ]
    try:
        ours = sha256_file(str(SPLIT))  # our split: the note counts how many of CoOp's test images are ours
    except OSError:
        ours = None
    lines += published.markdown(None, split_sha=ours)
    return "\n".join(lines)
