"""The training curves figure (section 7.6): each CoOp-family run's loss and training accuracy per epoch,
one row per method, with ln C -- a uniform guess's loss, which a run that learned nothing stays at
(:mod:`coop.report.health`) -- drawn in each loss panel."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

from ..runs.results import any_random
from ..utils.atomic import atomic_path
from .fonts import label
from .health import n_classes
from .tables import _all_records, _method_order


def curve_rows(loaded: Dict[str, Any]) -> str:
    """The methods :func:`draw_curves` draws a row for, top to bottom ("CoOp、CoOp+adapter")."""
    return "、".join(m for m in _method_order(loaded["coop"]) if any(r.get("history") for r in loaded["coop"][m]))


def curves_figure(loaded: Dict[str, Any]):
    """Training loss (with ln C, a uniform guess's loss) and training accuracy per epoch, one line per run,
    one row per method, whole-number epoch ticks; None when no record has a history."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    methods = [m for m in _method_order(loaded["coop"]) if any(r.get("history") for r in loaded["coop"][m])]
    if not methods:
        return None
    shots = sorted({int(r["shots"]) for m in methods for r in loaded["coop"][m]})
    colors = {k: c for k, c in zip(shots, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                                             "tab:brown", "tab:pink", "tab:gray"] * 4)}
    styles = ["-", "--", ":", "-."]
    fig = Figure(figsize=(13, 3.4 * len(methods) + 0.6), layout="constrained")  # room for the suptitle and side legends
    axes = fig.subplots(len(methods), 2, squeeze=False)
    for row, method in zip(axes, methods):
        for r in loaded["coop"][method]:
            h = r.get("history") or {}
            if not h.get("epoch"):
                continue
            ls = styles[int(r["seed"]) % len(styles)]
            name = label(f"{r['shots']} shot，种子 {r['seed']}", f"{r['shots']} shots, seed {r['seed']}")
            row[0].plot(h["epoch"], h["loss"], ls, color=colors[int(r["shots"])], label=name, linewidth=1.2)
            row[1].plot(h["epoch"], h["train_acc"], ls, color=colors[int(r["shots"])], label=name, linewidth=1.2)
        row[0].set_title(label(f"{method}：训练损失（交叉熵）", f"{method}: training loss"))
        row[1].set_title(label(f"{method}：训练准确率 (%)，随机裁剪上", f"{method}: training accuracy (%)"))
        n_cls = max((n_classes(r) for r in loaded["coop"][method]), default=0)
        marks = []
        if any(_warmed_up(r) for r in loaded["coop"][method]):  # CoOp's first epoch: a constant lr of 1e-5
            for ax in row:
                span = ax.axvspan(0.5, 1.5, color="0.88", zorder=0, gid="warm-up",
                                  label=label("第 1 个 epoch：预热（学习率 1e-5）", "epoch 1: warm-up (lr 1e-5)"))
            marks.append(span)
        if n_cls >= 2:  # a uniform guess's cross-entropy: a loss that stays there learned nothing (coop.report.health)
            marks.append(row[0].axhline(math.log(n_cls), color="gray", linestyle=":", linewidth=1.0, gid="ln-C",
                                        label=label(f"ln C = {math.log(n_cls):.2f}（均匀猜测）", f"ln C = {math.log(n_cls):.2f} (uniform guess)")))
        if marks:
            row[0].legend(handles=marks, fontsize=7.5, loc="upper right")
        for ax in row:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.grid(alpha=0.3)
        # the legend beside the row, not over its curves (a seed's line style, a shot count's colour)
        row[1].legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    title = label("训练曲线（评估最后一个 epoch）", "Training curves (last epoch is evaluated)")
    if any(r.get("demo") for r in _all_records(loaded)):
        title = label("演示：合成图像、随机权重——不是 CLIP/CoOp 的训练曲线",
                      "DEMO on synthetic images with random weights: NOT CLIP/CoOp training curves")
    elif any_random(loaded):
        title = label("随机权重：不是 CLIP/CoOp 的训练曲线", "Random weights: NOT CLIP/CoOp training curves")
    fig.suptitle(title, fontsize=12, color="red" if any_random(loaded) else "black")
    return fig


def _warmed_up(rec: Dict[str, Any]) -> bool:
    """The run's first epoch had a lower learning rate than its second (CoOp's constant warm-up)."""
    lr = (rec.get("history") or {}).get("lr") or []
    return len(lr) >= 2 and float(lr[0]) < float(lr[1])


def draw_curves(loaded: Dict[str, Any], path: Path) -> bool:
    """Draw :func:`curves_figure` to ``path``; False (and nothing drawn) when no record has a history."""
    fig = curves_figure(loaded)
    if fig is None:
        return False
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return True
