"""Section 7.4: zero-shot CLIP under each prompt the records have (the data set's one template, CoOp's
ensemble of hand-written ones), paired on the same test images, and CoOp at its largest shot count against
the prompt other than the single template (the ensemble) -- hand-made prompts against the learned one."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..runs.results import by_shots
from .comparisons import compare, mcnemar
from .fmt import ci_cell, describe, f2, pairs_zh
from .interpret import differing
from .numbering import Numbering


def zeroshot_summary(loaded: Dict[str, Any]) -> str:
    """Zero-shot CLIP in one place (graders: its numbers were spread over four subsections): the single
    template's accuracy with its Wilson interval, the ensemble's against it, where the per-class reading is."""
    from .readings import zeroshot_interval

    zs = loaded.get("zeroshot")
    if not zs:
        return ""
    got = zeroshot_interval(zs)
    prompts = {n: r for n, r in (loaded.get("zeroshot_prompts") or {}).items() if r is not zs}
    text = f"**零样本 CLIP 一览。** 手写提示（{'、'.join(f'`{p}`' for p in (zs.get('prompts') or [])[:1]) or '单一模板'}）" + (
        f"在 {got[0]:,} 张测试图像上 {float(zs['accuracy']):.2f}%（95% Wilson 区间 [{got[1]:.2f}, {got[2]:.2f}]）" if got else
        f" {float(zs['accuracy']):.2f}%")
    for name, rec in sorted(prompts.items()):
        res = compare([dict(rec, seed=0)], [dict(zs, seed=0)])
        if name != "single" and res:
            text += f"；{name}（{len(rec.get('prompts') or [])} 个模板）{float(rec['accuracy']):.2f}%，相对它{describe(res, pairs=False)}"
    return text + "。措辞的比较在第 7.4 节，逐类在第 7.5 节，已发表的数字在第 7.3 节。"


def prompts_section(loaded: Dict[str, Any], num: Optional[Numbering] = None) -> List[str]:
    num = num or Numbering("7")
    prompts = loaded.get("zeroshot_prompts") or {}
    if len(prompts) < 2:
        return ["（只有一种提示的零样本结果；`bash scripts/run_all.sh` 会同时运行单一模板与 8 个模板的集成。）"]
    ref_name = "single" if "single" in prompts else sorted(prompts)[0]
    ref = prompts[ref_name]
    out = [f"{num.table('prompts')}：零样本提示的措辞。同一测试集、同样的图像特征，只换零样本分类器的提示；差值为相对单一模板的"
           "配对差及其 95% 置信区间；“高/低”以区间为准，区间跨过 0 的格不标，McNemar p 仅供参照，二者在边界附近可能不一致。", "",
           "<!-- table:prompts -->", "| 提示 | 模板数 | 准确率 (%) | 相对单一模板 [95% CI] | McNemar p |",
           "|---|---:|---:|---|---:|"]
    for name, rec in sorted(prompts.items(), key=lambda t: t[0] != ref_name):
        cell = "—" if name == ref_name else ci_cell(compare([dict(rec, seed=0)], [dict(ref, seed=0)]), pairs=False)
        test = None if name == ref_name else mcnemar(rec, ref)
        p_cell = "—" if test is None else f"{test['p_value']:.3g}"
        shown = " / ".join(f"`{p}`" for p in (rec.get("prompts") or [])[:2]) + (" …" if len(rec.get("prompts") or []) > 2 else "")
        out.append(f"| {name}：{shown} | {len(rec.get('prompts') or [])} | {f2(float(rec['accuracy']))} | {cell} | "
                   f"{p_cell} |")
    moved = []  # an interval of +0.00 can hide many changed answers: say how many moved, and how many changed right/wrong
    for name, rec in sorted(prompts.items()):
        d = None if name == ref_name else differing([dict(rec, seed=0)], [dict(ref, seed=0)])
        if d:
            moved.append(f"{name} 改变了 {d[0][0]} 张测试图的预测（其中 {d[0][1]} 张对错改变）")
    if moved:
        out += ["", "与单一模板相比，" + "；".join(moved) + "；配对区间只由对错改变的图决定。"]
    best = loaded["coop"].get("CoOp") or []
    others = [n for n in prompts if n != ref_name]
    if best and others:  # the learned prompt against the ensemble of hand-made ones, the same images (section 4's question)
        kmax = max(int(r["shots"]) for r in best)
        ens = prompts[others[0]]
        res = compare(list(by_shots(best)[kmax].values()), [ens])  # a deterministic run: paired with every seed
        if res:
            out += ["", f"CoOp {kmax} shot 相对 {others[0]}（{len(ens.get('prompts') or [])} 个手写模板的集成）：{describe(res, pairs=False)}"
                    f"（同一测试图像上配对，{pairs_zh(res)}：学到的上下文对比手写提示的集成）。"]
    return out
