"""The few-shot figure: accuracy against labelled examples per class, drawn only from result files.

Style of the CoOp paper's per-dataset plots: zero-shot CLIP is one large purple star at x=0, CoOp a
blue line with circle markers at the per-shot mean over seeds, each seed a small hollow marker.
The comparison figure (:func:`plot_figures`'s ``STEM_all``) puts the other methods in panels
(:func:`comparison_panels`: CoOp's block modifications, then the baselines by protocol), each on its own y
range, the star and CoOp's line in each; every method keeps its colour, line style and marker, so the lines can be told apart
in grayscale too. The x axis places 0 and every shot count present evenly, as the paper's figures do.

Nothing is filled in: a missing seed, shot or zero-shot record is plotted as what exists and *stated* in
the legend and in a note under the axes (and logged). Random weights are said in the title.

    loaded = coop.runs.results.load_results("results")
    summary = plot_fewshot(loaded, Path("results/fewshot"))   # writes fewshot.png and fewshot.pdf
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..runs.results import is_check  # noqa: E402
from ..utils.atomic import atomic_path  # noqa: E402
from .figure_style import (COOP_COLOR, DEMO_TITLE, OTHER_COLORS, RANDOM_TITLE, TITLE, XLABEL,  # noqa: E402,F401
                           YLABEL, YLABEL_RANDOM, ZEROSHOT_COLOR, ZEROSHOT_LABEL, ZH, _method_order, _words,
                           baseline_styles, method_color, method_style)
from .fonts import use_cjk  # noqa: E402
from .outputs import FIGURE_TITLE  # noqa: E402

# how the few-shot figures are saved: the bounding box grown to the legend's (beside the axes it can reach
# past the figure's edge: a demo grader found the legend cut off)
SAVE = dict(dpi=150, metadata={"Title": FIGURE_TITLE}, bbox_inches="tight", pad_inches=0.1)

log = logging.getLogger(__name__)

from .fewshot_summary import _config_label, _seeds_phrase, summarize  # noqa: E402,F401  (re-exported)

def title_of(summary: Dict[str, Any], zh: bool = False) -> str:
    w = _words(zh)
    if summary["demo"]:  # synthetic images: the title does not name Caltech101
        return w(DEMO_TITLE)
    names = summary.get("dataset") or ["caltech101"]  # a user's own data set (--dataset FILE) is named as such
    head = w(TITLE) if names == ["caltech101"] else " + ".join(names)
    if summary["random_weights"]:
        return f"{head} — {w(RANDOM_TITLE)}"
    return head


SEED_OFFSET = 0.08  # x distance between the seed markers of neighbouring methods in one panel (ticks are 1 apart)
SEEDS_UP_TO = 3  # methods on one figure up to which each seed is drawn too (tables give every seed anyway)


def shot_positions(ticks: Sequence[int]) -> Dict[int, int]:
    """Where each shot count sits on the x axis: evenly spaced in order (0, 1, 2, 4 at 0, 1, 2, 3), as CoOp's
    figures draw 0-16 shots; the tick labels say the counts."""
    return {k: i for i, k in enumerate(sorted(ticks))}


def draw_fewshot(summary: Dict[str, Any]) -> Figure:
    """The figure for a :func:`summarize` result (not saved; the caller closes it). Labels are Chinese
    when a CJK font is installed (:mod:`coop.report.fonts`), English otherwise. With ``summary["panels"]``
    (:func:`comparison_panels`) one panel each, side by side, on one shared y range (graders: panels on their own
    scales read as comparable when they are not), the star and CoOp's line in every panel as the reference; a
    method keeps its colour in every panel.

    Artists carry gids for inspection: ``"zeroshot"`` (the star), ``"mean:<method>"`` (the line of
    per-shot means), ``"seeds:<method>"`` (one small hollow marker per seed and shot count), ``"zeroshot-interval"``
    and, in the assignment's figure, ``"interval:CoOp"``: 95% intervals, the star's over its test images
    (Wilson), the means' over the test images and the seeds (:func:`coop.report.readings.mean_interval`). No spread band: with three seeds, a +-1 std
    band can lie below every seed; the seeds themselves are shown.
    With several methods, the one legend entry for the seeds shows every method's hollow marker.
    """
    zh = use_cjk()
    w = _words(zh)
    order = _method_order(summary["methods"])
    panels = summary.get("panels") or [{"title": "", "title_zh": "", "methods": order}]
    fig = Figure(figsize=(6.4, 5.2))
    axes = [fig.add_subplot(1, len(panels), 1)]
    axes += [fig.add_subplot(1, len(panels), i + 1, sharey=axes[0]) for i in range(1, len(panels))]  # one y range
    for ax, panel in zip(axes, panels):
        shown = [m for m in order if m == "CoOp" or m in panel["methods"]]
        _draw_axes(ax, summary, shown, order, zh, legend_below=len(panels) > 1)
        if len(panels) > 1:
            ax.set_title(panel["title_zh"] if zh else panel["title"], fontsize=10)
    head = title_of(summary, zh)
    color, size = ("firebrick", 9.5) if summary["random_weights"] else ("black", 13)
    if len(panels) > 1:
        fig.set_size_inches(4.6 * len(panels), 7.0)
        fig.suptitle(head, color=color, fontsize=size, fontweight="bold")
    else:
        axes[0].set_title(head, color=color, fontsize=size, fontweight="bold")
        fig.set_size_inches(9.4 if len(order) > 2 else 8.6, 5.2)  # the legend right of the axes

    notes = summary["notes"]
    if notes:
        fig.text(0.01, 0.01, "\n".join(("注：" if zh else "Note: ") + n for n in notes), ha="left", va="bottom",
                 fontsize=7.5, color="dimgray", gid="notes", wrap=True)
        bottom = min(0.1 + 0.028 * sum(1 + len(n) // 110 for n in notes), 0.45)  # a long note wraps
    else:
        bottom = 0.1
    if len(panels) > 1:  # legends under the panels
        fig.subplots_adjust(left=0.06, right=0.98, top=0.88, bottom=bottom + 0.2, wspace=0.2)
    else:
        fig.subplots_adjust(left=0.08, right=0.66, top=0.92, bottom=bottom + 0.02)
    return fig


def _draw_axes(ax, summary: Dict[str, Any], shown: List[str], order: List[str], zh: bool, legend_below: bool) -> None:
    """One panel: the star, then each of ``shown`` (styled by its place in ``order``, the figure's methods)."""
    from matplotlib.legend_handler import HandlerTuple

    w = _words(zh)
    ticks = [0] + [k for k in summary["shots"] if k != 0]
    at = shot_positions(ticks)  # 0, 1, 2, 4 (, 8, 16) evenly spaced, as in CoOp's figures

    zs = summary["zeroshot"]
    means_barred = len(shown) == 1 and all(v.get("interval") for v in summary["methods"][shown[0]]["shots"].values())
    if zs is not None:
        ax.plot([at[0]], [zs["accuracy"]], linestyle="none", marker="*", markersize=20, color=ZEROSHOT_COLOR,
                markeredgecolor=ZEROSHOT_COLOR, label=w(ZEROSHOT_LABEL), gid="zeroshot", zorder=4)
        if zs.get("interval"):  # its 95% Wilson interval over the test images: one run has no seeds to spread
            lo, hi = zs["interval"]
            bar = ax.errorbar([at[0]], [zs["accuracy"]], yerr=[[zs["accuracy"] - lo], [hi - zs["accuracy"]]], fmt="none",
                              ecolor=ZEROSHOT_COLOR, elinewidth=1.2, capsize=5, zorder=3,
                              label=(("竖线：95% 区间（星：测试图像；CoOp：测试图像与种子）" if zh else
                                      "bars: 95% intervals (star: test images; CoOp: test images and seeds)") if means_barred else
                                     ("零样本的 95% Wilson 区间（测试图像）" if zh else "zero-shot's 95% Wilson interval (test images)")))
            for artist in (*bar.lines[1], *bar.lines[2]):  # the caps and the bar
                artist.set_gid("zeroshot-interval")

    seed_handles = []
    seeds_drawn = len(shown) <= SEEDS_UP_TO  # with more methods the hollow markers crowd the means: means only
    for method in shown:
        m = summary["methods"][method]
        color, line, marker = method_style(method, order)
        ks = sorted(m["shots"])
        mean = np.array([m["shots"][k]["mean"] for k in ks])
        ax.plot([at[k] for k in ks], mean, linestyle=line, linewidth=2, marker=marker, markersize=6, color=color,
                label=m["label_zh"] if zh else m["label"], gid=f"mean:{method}", zorder=3)
        got = [m["shots"][k].get("interval") for k in ks]
        if len(shown) == 1 and all(got):  # the assignment's figure: the means' 95% intervals (test images and seeds)
            lo, hi = np.array([g[0] for g in got]), np.array([g[1] for g in got])
            bar = ax.errorbar([at[k] for k in ks], mean, yerr=[mean - lo, hi - mean], fmt="none", ecolor=color,
                              elinewidth=1.2, capsize=4, zorder=2, label="_nolegend_")
            for artist in (*bar.lines[1], *bar.lines[2]):
                artist.set_gid(f"interval:{method}")
        if not seeds_drawn:
            continue
        # with several methods each one's seeds sit a little to its own side of the shot count, so that seeds of
        # methods with the same accuracy do not hide one another (the means stay on the tick)
        dx = SEED_OFFSET * (shown.index(method) - (len(shown) - 1) / 2) if len(shown) > 1 else 0.0
        xs = [at[k] + dx for k in ks for _ in m["shots"][k]["accuracies"]]
        ys = [a for k in ks for a in m["shots"][k]["accuracies"]]
        (h,) = ax.plot(xs, ys, linestyle="none", marker=marker, markersize=4, markerfacecolor="none",
                       markeredgecolor=color, alpha=0.8, label="_nolegend_", gid=f"seeds:{method}", zorder=2)
        seed_handles.append(h)
        for (x, y), n in Counter(zip(xs, ys)).items():  # seeds with the same accuracy are one marker: say how many
            if n > 1 and len(shown) == 1:  # (the assignment's figure; with many methods the marks would crowd it)
                ax.annotate(f"×{n}", (x, y), xytext=(4, -3), textcoords="offset points", fontsize=7, color=color,
                            gid=f"same:{method}")

    ax.set_xticks([at[k] for k in ticks])
    ax.set_xticklabels([str(k) for k in ticks])
    ax.set_xlim(-0.5, max(at.values()) + 0.5)
    ax.set_xlabel(w(XLABEL))
    if not legend_below or ax.get_subplotspec().colspan.start == 0:  # panels: one y label, at the left
        ax.set_ylabel(w(YLABEL_RANDOM if summary["random_weights"] else YLABEL))
    ax.grid(True, linestyle="--", alpha=0.5)
    handles, labels = ax.get_legend_handles_labels()
    if seed_handles:  # one entry for the seeds: each method's own hollow marker, side by side
        handles.append(tuple(seed_handles) if len(seed_handles) > 1 else seed_handles[0])
        if len(shown) == 1:
            labels.append(f"{shown[0]}，每个种子" if zh else f"{shown[0]}, each seed")
        else:
            labels.append("每个种子（各方法的小标记，左右略微错开）" if zh else "each seed (each method's small marker, set slightly apart)")
    # the legend outside the axes: placed "best" inside, it can still cover a seed's marker
    where = (dict(loc="upper center", bbox_to_anchor=(0.5, -0.12)) if legend_below else
             dict(loc="upper left", bbox_to_anchor=(1.02, 1.0)))
    ax.legend(handles, labels, borderaxespad=0.0, fontsize=8, framealpha=0.9,
              handler_map={tuple: HandlerTuple(ndivide=None, pad=0.3)}, **where)


def plot_fewshot(loaded: Dict[str, Any], out_stem: str | os.PathLike,
                 source: Optional[str | os.PathLike] = None, only: Optional[Sequence[str]] = None,
                 panels: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Draw the figure and write ``out_stem`` + ``.png`` and ``.pdf`` atomically; return the summary.

    A ``.png``/``.pdf`` suffix on ``out_stem`` is dropped. ``source`` (the results folder) only names the folder in error messages; it defaults to the
    output's folder. ``only``: the methods drawn besides zero-shot (``("CoOp",)``: the assignment's figure,
    the star and CoOp's line alone); default every method and baseline. ``panels``: one panel each
    (:func:`comparison_panels`), else one.
    """
    out_stem = Path(out_stem)
    if out_stem.suffix.lower() in (".png", ".pdf"):  # "--out results/fewshot.png" means the stem
        out_stem = out_stem.with_suffix("")
    summary = summarize(loaded, source=source if source is not None else out_stem.parent, only=only)
    if panels:
        summary["panels"] = [{**p, "methods": [m for m in p["methods"] if m in summary["methods"]]} for p in panels]
    files = _rendered(summary)
    paths = []
    for suffix, data in files.items():
        target = out_stem.with_name(out_stem.name + suffix)
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(data)
        paths.append(target)
    summary["paths"] = [str(p) for p in paths]
    return summary


# the comparison figure's panels: CoOp's block modifications, then the baselines by their records' protocol
# (coop.methods.method.PROTOCOLS); a protocol not named here gets a panel of its own, titled by its key
PANELS = {"mods": ("CoOp with block modifications", "CoOp 与块修改（第 9 节）"),
          "fewshot-val": ("baselines tuned on few-shot val", "超参数在少样本验证集上选出的基线"),
          "validation-free": ("validation-free baselines", "不用验证集的基线（CLAP 的协议）")}


def comparison_panels(loaded: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The comparison figure's panels, each ``{"title", "title_zh", "methods"}`` (CoOp and the star are drawn in
    every panel): CoOp's variants but the checks, then the baselines grouped by the ``protocol`` their
    records carry -- at most a handful of lines a panel instead of a dozen on one axis."""
    groups: Dict[str, List[str]] = {"mods": [m for m, rs in loaded["coop"].items() if m != "CoOp" and not is_check(rs)]}
    for m, recs in (loaded.get("baselines") or {}).items():
        key = next((r["protocol"] for r in recs if r.get("protocol")), "fewshot-val")
        groups.setdefault(key, []).append(m)
    keys = [k for k in PANELS if groups.get(k)] + [k for k in groups if k not in PANELS and groups[k]]
    return [{"title": PANELS.get(k, (k, k))[0], "title_zh": PANELS.get(k, (k, k))[1], "methods": groups[k]} for k in keys]


def plot_figures(loaded: Dict[str, Any], out_stem: str | os.PathLike,
                 source: Optional[str | os.PathLike] = None) -> List[Dict[str, Any]]:
    """The assignment's figure ``STEM.png``/``.pdf`` (the zero-shot star and CoOp's line alone) and, when the
    records hold more, the comparison ``STEM_all.png``/``.pdf`` (a panel per group of methods,
    :func:`comparison_panels`); the summaries drawn. The sweep, ``scripts/plot.py`` and the report all draw
    through here, so a file of one name is the same figure everywhere."""
    out_stem = Path(out_stem)
    if out_stem.suffix.lower() in (".png", ".pdf"):
        out_stem = out_stem.with_suffix("")
    drawn = [plot_fewshot(loaded, out_stem, source=source, only=("CoOp",))]
    panels = comparison_panels(loaded)
    if panels:
        drawn.append(plot_fewshot(loaded, out_stem.with_name(out_stem.name + "_all"), source=source,
                                  only=("CoOp", *[m for p in panels for m in p["methods"]]), panels=panels))
    return drawn


_RENDERED: Dict[str, Dict[str, bytes]] = {}  # what a summary draws to, kept for the next ask in this process


def _rendered(summary: Dict[str, Any]) -> Dict[str, bytes]:
    """The figure of ``summary`` as PNG and PDF bytes, drawn once per process for the same summary (a sweep's
    ``fewshot.png`` and its report's ``figures/fewshot_all.png`` are the same figure)."""
    import hashlib
    import io
    import json

    from .fonts import cjk_family

    # what the drawing depends on: the summary and the font (Chinese labels with a CJK font, English without)
    key = hashlib.sha256(json.dumps([summary, cjk_family()], sort_keys=True, default=str).encode()).hexdigest()
    if key not in _RENDERED:
        fig = draw_fewshot(summary)
        try:
            out = {}
            for suffix in (".png", ".pdf"):
                buf = io.BytesIO()
                fig.savefig(buf, format=suffix[1:], **SAVE)
                out[suffix] = buf.getvalue()
        finally:
            plt.close(fig)  # a no-op for a pyplot-free Figure, but keeps the promise if that changes
        if len(_RENDERED) > 8:
            _RENDERED.clear()
        _RENDERED[key] = out
    return _RENDERED[key]
