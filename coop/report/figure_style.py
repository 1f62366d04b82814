"""The few-shot figures' fixed words (English, and Chinese when a CJK font is installed) and each line's
style: CoOp blue with circles, zero-shot a purple star, each baseline the style of its entry in
:mod:`coop.methods.table`, other CoOp variants the next free colour -- stable between runs."""
from __future__ import annotations

from typing import Dict, List, Tuple

TITLE = "Caltech101"
RANDOM_TITLE = "random weights: not CLIP/CoOp accuracies"
DEMO_TITLE = "DEMO on synthetic images, random weights: not CLIP/CoOp accuracies"
XLABEL = "Number of labeled training examples per class"
YLABEL = "Accuracy (%)"
YLABEL_RANDOM = "Test top-1 (%) of random weights: not CLIP's or CoOp's accuracy"
ZEROSHOT_LABEL = "Zero-shot CLIP"
# The same words in Chinese, used when a CJK font is installed (coop.report.fonts); English otherwise.
ZH = {TITLE: "Caltech101", RANDOM_TITLE: "随机权重：不是 CLIP/CoOp 的准确率",
      DEMO_TITLE: "演示：合成图像、随机权重，不是 CLIP/CoOp 的准确率",
      XLABEL: "每类的标注训练图像数（shot）", YLABEL: "测试集 top-1 (%)", YLABEL_RANDOM: "随机权重模型的测试集 top-1 (%)：不是 CLIP/CoOp 的准确率", ZEROSHOT_LABEL: "零样本 CLIP"}
ZEROSHOT_COLOR = "purple"
COOP_COLOR = "tab:blue"
# Colours for block-modification variants: neither blue (CoOp) nor purple (zero-shot).
OTHER_COLORS = ("tab:pink", "tab:gray", "goldenrod", "tab:orange", "tab:brown", "tab:olive", "tab:cyan")
# The baselines: (colour, line style, marker), distinct in grayscale by line style and marker.
def baseline_styles() -> Dict[str, Tuple[str, str, str]]:
    """Each method of coop.methods.table by its name: its figure style, in the table's order."""
    from ..methods.table import methods

    return {m.name: m.style for m in methods().values()}


def _method_order(methods) -> List[str]:
    """CoOp first, then its variants alphabetically, then the baselines (stable colours between runs)."""
    base = list(baseline_styles())
    return sorted(methods, key=lambda m: (m in base, m != "CoOp", base.index(m) if m in base else 0, m))


def method_color(method: str, order: List[str]) -> str:
    return method_style(method, order)[0]


def method_style(method: str, order: List[str]) -> tuple:
    """(colour, line style, marker) of a method's line."""
    if method == "CoOp":
        return COOP_COLOR, "-", "o"
    styles = baseline_styles()
    if method in styles:
        return styles[method]
    others = [m for m in order if m != "CoOp" and m not in styles]
    taken = {style[0] for style in styles.values()}  # a CoOp variant never wears a baseline's colour
    free = [c for c in OTHER_COLORS if c not in taken] or list(OTHER_COLORS)
    return free[others.index(method) % len(free)], "--", "v"  # dashed: a variant on top of CoOp's line stays visible


def _words(zh: bool):
    """The figure's fixed words in Chinese (``zh``) or English."""
    return (lambda en: ZH.get(en, en)) if zh else (lambda en: en)
