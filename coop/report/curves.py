"""The training curves figure (section 7.6): each CoOp-family method's loss and training accuracy per epoch,
one row per method, a line per shot count (the seeds' mean, their range shaded: nine lines a panel were
unreadable), with ln C -- a uniform guess's loss, which a run that learned nothing stays at
(:mod:`coop.report.health`) -- drawn in each loss panel."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import numpy as np

from ..runs.results import any_random
from ..utils.atomic import atomic_path
from .fonts import label
from .health import n_classes
from .tables import _all_records, _method_order


def curve_rows(loaded: Dict[str, Any]) -> str:
    """The methods :func:`draw_curves` draws a row for, top to bottom ("CoOp、CoOp+adapter")."""
    return "、".join(m for m in _method_order(loaded["coop"]) if any(r.get("history") for r in loaded["coop"][m]))


def curves_figure(loaded: Dict[str, Any]):
    """Training loss (with ln C, a uniform guess's loss) and training accuracy per epoch, one row per method,
    per shot count the mean over its seeds (gid ``mean:<shots>``) with their min-max shaded (``range:<shots>``),
    whole-number epoch ticks; None when no record has a history."""
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
    fig = Figure(figsize=(12, 3.2 * len(methods) + 0.6), layout="constrained")  # room for the suptitle and side legends
    axes = fig.subplots(len(methods), 2, squeeze=False)
    for row, method in zip(axes, methods):
        for (k, epochs), runs in sorted(_groups(loaded["coop"][method]).items()):
            name = label(f"{k} shot（{len(runs)} 个种子的平均" + ("，阴影：最小–最大）" if len(runs) > 1 else "）"),
                         f"{k} shots (mean of {len(runs)} seeds" + (", shaded: min-max)" if len(runs) > 1 else ")"))
            for ax, key in zip(row, ("loss", "train_acc")):
                ys = np.array([h[key] for h in runs], dtype=float)
                ax.plot(epochs, ys.mean(0), "-", color=colors[k], label=name, linewidth=1.6, gid=f"mean:{k}")
                if len(runs) > 1:
                    ax.fill_between(epochs, ys.min(0), ys.max(0), color=colors[k], alpha=0.15, linewidth=0, gid=f"range:{k}")
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
            row[0].legend(handles=marks, fontsize=9, loc="upper right")
        for ax in row:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.grid(alpha=0.3)
        # the legend beside the row, not over its curves (a shot count's colour)
        row[1].legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    title = label("训练曲线（评估最后一个 epoch）", "Training curves (last epoch is evaluated)")
    if any(r.get("demo") for r in _all_records(loaded)):
        title = label("演示：合成图像、随机权重——不是 CLIP/CoOp 的训练曲线",
                      "DEMO on synthetic images with random weights: NOT CLIP/CoOp training curves")
    elif any_random(loaded):
        title = label("随机权重：不是 CLIP/CoOp 的训练曲线", "Random weights: NOT CLIP/CoOp training curves")
    fig.suptitle(title, fontsize=12, color="red" if any_random(loaded) else "black")
    return fig


def _groups(recs) -> Dict[tuple, list]:
    """The runs' histories by (shots, epochs): the seeds of a shot count that trained the same epochs."""
    out: Dict[tuple, list] = {}
    for r in recs:
        h = r.get("history") or {}
        if h.get("epoch"):
            out.setdefault((int(r["shots"]), tuple(h["epoch"])), []).append(h)
    return out


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
