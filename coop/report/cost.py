"""Section 11, the compute cost: one table and one paragraph, rendered from the measurements' JSON.

    md = cost_markdown(realsize, bench, projection)

``realsize``: ``results/realsize.json`` (``scripts/sweep_timing.py``: a 4-shot run at its real size, per
stage, measured beside check_env's projection); ``bench``: ``results/bench.json`` (``scripts/bench.py``:
the training step naive against ours, and the peak tensor memory of a step); ``projection``: the whole
sweep's projected minutes from the same check (``{"fresh": s, "views4": s}``, made by
:func:`coop.pipeline.machine_check.project`; passed in, the report stage does not import the pipeline).
docs/speed.md and README quote the same JSON; tests/test_report_numbers.py checks all three.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..utils.paths import RESULTS

REALSIZE, BENCH = RESULTS / "realsize.json", RESULTS / "bench.json"
ADAPTERS = RESULTS / "realsize_adapters.json"  # the four baselines of CLAP's recipe at real size

_STAGES = [(r"^zero-shot \(single prompts\)$", "零样本（单一提示）"), (r"^zero-shot \(ensemble prompts\)$", "零样本（提示集成）"),
           (r"^CoOp (\d+) shots?, seed (\d+): crops encoded$", r"CoOp \1 shot，种子 \2：编码训练裁剪"),
           (r"^CoOp (\d+) shots?, seed (\d+): training$", r"CoOp \1 shot，种子 \2：训练"),
           (r"^Linear probe CLIP (\d+) shots?, seed (\d+)$", r"线性探测 CLIP \1 shot，种子 \2"),
           (r"^(Tip-Adapter(?:-F)?) (\d+) shots?, seed (\d+)$", r"\1 \2 shot，种子 \3"),
           (r"^figure \(fewshot\.png, \.pdf\)$", "图（重画）"), (r"^report \(results section\)$", "报告的结果部分（重新生成）")]
_WORK = [(r"^([\d,]+) test images encoded$", r"编码 \1 张测试图像"), (r"^([\d,]+) crops$", r"\1 个裁剪"),
         (r"^([\d,]+) steps$", r"\1 步"), (r"^its prompts; test features from the cache$", "它的提示；测试特征取自缓存"),
         (r"^its images' test views \+ (\d+) augmented views each, then the fit$", r"训练图像的测试视图 + 每张 \1 个增强视图，再拟合"),
         (r"^its images' test views, then the fit$", "训练图像的测试视图，再拟合"), (r"^(\d+) records read$", r"读 \1 个记录"),
         (r"^the records' tables, without its figures$", "记录的表（不画图）")]


def _zh(text: str, rules) -> str:
    for pattern, repl in rules:
        if re.match(pattern, text):
            return re.sub(pattern, repl, text)
    return text


def duration(s: Optional[float]) -> str:
    """The realsize table's way: "0.4 s", "33 s", "100 s", "5.5 min"."""
    if s is None:
        return "—"
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def load(path: Path) -> Dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def stage_table(realsize: Dict[str, Any]) -> List[str]:
    out = ["| 阶段 | 工作量 | 实测 | check_env 的预测 | 实测 / 预测 |", "|---|---|---:|---:|---:|"]
    before = None
    for r in realsize["rows"]:
        if r["kind"] == "drawing":  # redrawing the figure and report: seconds, in docs/speed.md's table
            continue
        ratio = f"{r['measured_s'] / r['projected_s']:.2f}" if r.get("projected_s") else "—"
        # the same views as the row above (Tip-Adapter-F after Tip-Adapter): encoded there, read from the cache here
        work = "同上一行的视图（已缓存，不再编码），再拟合" if r["work"] == before else _zh(r["work"], _WORK)
        before = r["work"]
        out.append(f"| {_zh(r['stage'], _STAGES)} | {work} | {duration(r['measured_s'])} | "
                   f"{duration(r.get('projected_s'))} | {ratio} |")
    return out


def _date(realsize: Dict[str, Any]) -> str:
    m = re.match(r"(\d{4}-\d{2}-\d{2})", realsize.get("note", ""))
    return m.group(1) if m else "?"


def cost_markdown(realsize: Dict[str, Any], bench: Dict[str, Any], projection: Dict[str, float],
                  adapters: Optional[Dict[str, Any]] = None) -> str:
    """Table C.1 and the paragraphs of appendix C, the compute cost (Chinese)."""
    rows = {r["stage"]: r for r in realsize["rows"]}
    tot = realsize["totals"]
    shares = tot["shares"]
    enc = [r for r in realsize["rows"] if r["kind"] == "encoding"]
    train = [r for r in realsize["rows"] if r["kind"] == "training"]
    all_base_s = sum(r["measured_s"] for r in realsize["rows"] if r["kind"] == "baselines")  # the ensemble counted there too
    proj = [r for r in realsize["rows"] if r.get("projected_s")]
    over = sorted(100 * (r["measured_s"] / r["projected_s"] - 1) for r in proj)
    step, text = bench["train_step"], bench["text_fwd_bwd"]
    mem = bench.get("step_tensor_memory") or {}
    crops = next((r for r in enc if "crops" in r["stage"]), enc[-1])
    zs = rows.get("zero-shot (single prompts)", enc[0])
    lines = [f"表 C.1：真实尺寸的一次 4 shot 运行，各阶段的实测时间与 `scripts/check_env.py` 在同一台机器上的预测"
             f"（{_date(realsize)}；2 核 AMD EPYC，只有 AVX2，fp32；真实的 Caltech101 图像与我们的划分、RN50 的结构、"
             "**随机权重**，种子 1，从空缓存开始；`results/realsize.json`；比值按未取整的秒数计算）。", ""] + stage_table(realsize) + [""]
    para = (f"**时间。** 这次 4 shot 运行共 {tot['measured_s'] / 60:.0f} min：图像编码占 {100 * shares['encoding']:.0f}%"
            f"（2,465 张测试图像 {duration(zs['measured_s'])}，{_zh(crops['work'], _WORK)} {duration(crops['measured_s'])}），"
            f"CoOp 的 {train[0]['work'].replace(' steps', '')} 步训练占 {100 * shares['training']:.0f}%（{duration(train[0]['measured_s'])}），"
            f"当时的三个基线与提示集成占 {100 * shares['baselines']:.0f}%（{duration(all_base_s)}，其中大部分也是编码：线性探测的训练图像测试视图、"
            "Tip-Adapter 的增强视图）。"
            "图像塔冻结，每个裁剪的特征只算一次并缓存（第 5.2 节），训练步只剩文本侧，再加上上面的两个精确加速："
            f"一个 batch 32 的训练步从朴素写法（32 张图过图像编码器、100 个提示过文本编码器再反向）的 "
            f"{step['naive']['median_s']:.2f} s 降到 {1000 * step['ours']['median_s']:.0f} ms（{step['naive']['median_s'] / step['ours']['median_s']:.1f} 倍），"
            f"其中文本侧从 {text['naive']['median_s']:.2f} s 降到 {1000 * text['ours']['median_s']:.0f} ms"
            f"（{text['naive']['median_s'] / text['ours']['median_s']:.1f} 倍；`results/bench.json`，{bench['started_at'][:10]}，"
            "另一台 2 核 Intel Xeon）。" + _adapters_sentence(adapters))
    para += (f"\n\n**内存。** 进程的峰值内存（RSS）{tot['peak_rss_mb'] / 1024:.1f} GB，特征缓存 {tot['disk_mb']['cache']:.0f} MiB。")
    if mem:
        para += (f"一个训练步在冻结的权重（{mem['weights_mb']:.0f} MiB，fp32）之外要用的张量，峰值在朴素写法下为 "
                 f"{mem['naive']['peak_mb']:,.0f} MiB，缓存特征加快速文本路径下为 {mem['ours']['peak_mb']:.0f} MiB"
                 f"（`torch.profiler` 的内存事件，CPU，random:RN50，{mem['measured_at']}，表 C.1 的 AMD 机器，`results/bench.json` 的 "
                 "step_tensor_memory 一项）。作业提到约 5.8 GB 的 GPU 显存，我们没有 GPU 可测：GPU 上还要加上 CUDA 上下文和缓存分配器预留而未用的显存，CoOp 原实现用 fp16，"
                 "激活和权重则约减半。按本项目的做法，训练步在权重之外只需不到 0.1 GB 的张量；编码裁剪（不求梯度的 RN50 前向，batch 32）"
                 "的张量峰值没有单独测量，整个运行的进程峰值是上面的 RSS。")
    para += (f"\n\n**整个扫描**（零样本 + 1/2/4 shot × 3 个种子，每个 epoch 新鲜裁剪）在这台 AVX2 机器上按 check_env 预测约 "
             f"{round(projection['fresh'] / 600) * 10} min（`--views 4` 约 {round(projection['views4'] / 600) * 10} min，近似），"
             f"不含基线、加分项与加长训练的检验；上面的 4 shot 运行比预测长 {over[0]:.0f}–{over[-1]:.0f}%（运行中有过暂停，部分时间与其他任务共用 CPU，"
             "见 `results/realsize.json` 的 note）。")
    return "\n".join(lines + [para])


def _adapters_sentence(adapters: Optional[Dict[str, Any]]) -> str:
    """The four baselines added after the real-size run (``results/realsize_adapters.json``), in one sentence."""
    if not adapters:
        return ""
    fits = "、".join(f"{r['method']} {duration(r['fit_s'])}" for r in adapters["rows"])
    return (f"后加的四个基线在同样的机器与数据上（4 shot，种子 1，{_date(adapters)}，`results/realsize_adapters.json`）"
            f"从缓存的特征训练一次各需 {fits}；它们用 CoOp 缓存的裁剪，不另外编码。")
