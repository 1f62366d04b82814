"""The report's comparison tables: CoOp against the baselines and the published numbers, the
zero-shot prompt wordings, and the per-class changes -- each difference with its paired 95% interval
(:mod:`coop.report.comparisons`)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..runs.results import any_random, by_shots, shot_stats
from . import published
from .analysis import CLASS_RULE_ZH, class_head, split_classes
from .comparisons import MIN_CLASSES, compare, compare_classes, compare_group, mcnemar
from .stats import verdict
from .tables import f2

VERDICT_ZH = {"higher": "高", "lower": "低", "no difference": "没有可检测到的差异"}
VERDICT_COOP = {"higher": "CoOp 高", "lower": "CoOp 低", "no difference": "没有可检测到的差异"}


def ci_cell(res: Optional[Dict[str, Any]], words: Dict[str, str] = VERDICT_ZH) -> str:
    """``+2.30 [1.10, 3.50] 高`` -- the paired difference, its 95% interval and the verdict."""
    if res is None:
        return "—"
    lo, hi = res["ci"]
    return f"{res['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] {words[verdict(res)]}"


def _hyper(recs: List[Dict[str, Any]]) -> str:
    cells = []
    for r in sorted(recs, key=lambda r: r["seed"]):
        h = r.get("hyperparameters") or {}
        if "C" in h:
            cells.append(f"s{r['seed']}: C={h['C']:.4g}".replace("e+0", "e").replace("e-0", "e-"))
        elif "alpha" in h:
            cells.append(f"s{r['seed']}: α={h['alpha']:.2f}, β={h['beta']:.2f}")
    return "；".join(cells) or "—"


def baselines_section(loaded: Dict[str, Any]) -> List[str]:
    base, others = loaded["coop"].get("CoOp") or [], loaded.get("baselines") or {}
    out: List[str] = []
    if not others:
        out += ["（没有基线方法的结果：`bash scripts/run_all.sh` 默认在 CoOp 之后运行它们，`--baselines none` 跳过。）", ""]
    else:
        out += ["每个基线与 CoOp 用同一 (shots, seed) 的 few-shot 图像、同样的测试特征；“CoOp − 方法”是同一种子配对的"
                "差值及其 95% 置信区间（配对自助法与按种子的 t 区间的并集，见 7.9 节），超参数在少样本验证集上选出（见 docs/baselines.md）。", "",
                "<!-- table:baselines -->",
                "| 方法 | shots | 种子数 | 平均 ± 标准差 (%) | CoOp − 方法 [95% CI] | 选出的超参数 |",
                "|---|---:|---:|---:|---|---|"]
        cb = by_shots(base)
        for method, recs in others.items():
            rb = by_shots(recs)
            for k, st in shot_stats(recs).items():
                res = compare(list(cb.get(k, {}).values()), list(rb[k].values())) if k in cb else None
                out.append(f"| {method} | {k} | {st['n']} | {f2(st['mean'])} ± {f2(st['std'])} | {ci_cell(res, VERDICT_COOP)} | "
                           f"{_hyper(list(rb[k].values()))} |")
        out.append("")
    out += ["已发表的数字（在 CoOp 的划分上，**不是本项目的结果**）：", "", "<!-- table:published -->"]
    zs = loaded.get("zeroshot")
    recs = ([zs] if zs else []) + list(base)
    shas = {(r.get("split") or {}).get("sha256") for r in recs}
    return out + published.markdown(float(zs["accuracy"]) if zs else None,
                                    split_sha=shas.pop() if len(shas) == 1 else None,
                                    random_weights=any_random(loaded), demo=any(bool(r.get("demo")) for r in recs))


def prompts_section(loaded: Dict[str, Any]) -> List[str]:
    prompts = loaded.get("zeroshot_prompts") or {}
    if len(prompts) < 2:
        return ["（只有一种提示的零样本结果；`bash scripts/run_all.sh` 会同时运行单一模板与 7 个模板的集成。）"]
    ref_name = "single" if "single" in prompts else sorted(prompts)[0]
    ref = prompts[ref_name]
    out = ["同一测试集、同样的图像特征，只换零样本分类器的提示措辞；差值为相对单一模板的配对差及其 95% 置信区间；"
           "“高/低”以区间为准，McNemar p 仅供参照，二者在边界附近可能不一致。", "",
           "<!-- table:prompts -->", "| 提示 | 模板数 | 准确率 (%) | 相对单一模板 [95% CI] | McNemar p |",
           "|---|---:|---:|---|---:|"]
    for name, rec in sorted(prompts.items(), key=lambda t: t[0] != ref_name):
        cell = "—" if name == ref_name else ci_cell(compare([dict(rec, seed=0)], [dict(ref, seed=0)]))
        test = None if name == ref_name else mcnemar(rec, ref)
        p_cell = "—" if test is None else f"{test['p_value']:.3g}"
        shown = " / ".join(f"`{p}`" for p in (rec.get("prompts") or [])[:2]) + (" …" if len(rec.get("prompts") or []) > 2 else "")
        out.append(f"| {name}：{shown} | {len(rec.get('prompts') or [])} | {f2(float(rec['accuracy']))} | {cell} | "
                   f"{p_cell} |")
    return out


def per_class_section(loaded: Dict[str, Any]) -> List[str]:
    zs, recs = loaded["zeroshot"], loaded["coop"].get("CoOp") or []
    if not zs or not recs:
        return ["（需要 zeroshot.json 和 CoOp 的记录才能比较各类别。）"]
    kmax = max(int(r["shots"]) for r in recs)
    runs = list(by_shots(recs)[kmax].values())
    rows = compare_classes(runs, [zs])
    if not rows:
        return ["（记录里没有逐图预测，无法逐类检验。）"]
    up, down, rest = split_classes(rows)
    out = [f"CoOp（{kmax} shot，{len(runs)} 个种子）相对零样本 CLIP（{CLASS_RULE_ZH}）：{class_head(rows)}。"
           f"{len(rows)} 个类各检验一次，即使没有任何真实变化，平均也至多约 {len(rows) * 0.05:.1f} 个类会被误判为“高”或“低”"
           "（期望值；未做多重比较校正）。"]
    if not up and not down:
        return out
    out += ["", "<!-- table:per-class -->", "| 类别 | 测试图像数 | 零样本 (%) | CoOp（种子平均，%） | 变化 [95% CI] |",
            "|---|---:|---:|---:|---|"]
    z = zs["per_class_accuracy"]
    for r in up + down:
        m = float(np.mean([float(x["per_class_accuracy"].get(r["class"], float("nan"))) for x in runs]))
        lo, hi = r["ci"]
        out.append(f"| {r['class']} | {r['n_test']} | {f2(float(z.get(r['class'], float('nan'))))} | {f2(m)} | "
                   f"{r['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] {VERDICT_ZH[r['verdict']]} |")
    return out + ["", f"表中只列出判为“高/低”的类（区间整体在 0 一侧且符号检验 p < 0.05；先列高，再列低，各按变化大小排序）；其余 {rest} 个类没有可检测到的差异，"
                   "即使其变化的数值大，也可能只是少数几张图。"]


def rare_name_classes(classnames: Sequence[str]) -> List[str]:
    """Section 9.1's group: the classes with a word of their name that CLIP's BPE vocabulary has no
    single token for (e.g. dalmatian -> dalmati + an), i.e. words rare in CLIP's pre-training text."""
    import clip

    tok = clip.clip._tokenizer  # the instance clip.tokenize uses, as coop.methods.train does
    return [c for c in classnames if any(len(tok.encode(w)) > 1 for w in c.replace("_", " ").split())]


def _ci(res: Dict[str, Any]) -> str:
    lo, hi = res["ci"]
    return f"{res['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def block_mod_evidence(loaded: Dict[str, Any]) -> List[str]:
    """Section 9.1's hypothesis, tested where the records allow: each modification against plain CoOp
    on the rare-name classes pooled, on the other classes, and the contrast of the two (paired, with
    classes as the resampled unit); and how far training moved the modification from the identity."""
    coop = loaded["coop"]
    base = by_shots(coop.get("CoOp") or [])
    out: List[str] = []
    for method in sorted(m for m in coop if m != "CoOp" and "[" not in m):
        recs = by_shots(coop[method])
        common = sorted(set(recs) & set(base))
        if not common:
            continue
        k = common[-1]
        mine, theirs = list(recs[k].values()), list(base[k].values())
        names = next((list(r["classnames"]) for r in mine if r.get("classnames")), [])
        group = rare_name_classes(names)
        res = compare_group(mine, theirs, group) if group else None
        if not names:
            out.append("第 9.1 节的假设无法在这里检验：记录里没有类名。")
        elif not group:
            out.append("第 9.1 节的假设无法在这里检验：没有一个类名含 CLIP 词表里没有单个词元的词。")
        elif res is None:
            out.append(f"第 9.1 节的假设无法在这里检验：类名含 CLIP 词表里没有单个词元的词的类（{len(group)} 个）或其余类"
                       f"在测试集里少于 {MIN_CLASSES} 个可配对的类，无法以类为单位重采样。")
        else:
            g, o, c = res["group"], res["others"], res["contrast"]
            out.append(f"第 9.1 节的假设，{method} 相对普通 CoOp（最大的 shot 数 {k}，同一种子配对；检验以类为单位，在组内对类"
                       f"重采样，2,000 次，再与按种子的 t 区间取并集；方括号内为 95% 置信区间）：类名含 CLIP 词表里没有单个词元的词的 "
                       f"{g['n_classes']} 个类（{g['n_images']:,} 张测试图）"
                       f"{VERDICT_ZH[verdict(g)]}，{_ci(g)}；其余 {o['n_classes']} 个类（{o['n_images']:,} 张）"
                       f"{VERDICT_ZH[verdict(o)]}，{_ci(o)}；两者之差（假设预测为正）{VERDICT_ZH[verdict(c)]}，{_ci(c)}。"
                       "这是对假设的部分检验：它不区分“罕见”与类名的其他性质，而已经全对的类无法再提高。")
        sizes = [r.get("block_mod_size") for r in mine if r.get("block_mod_size")]
        if sizes:
            mean = np.mean(np.array(sizes, dtype=float), axis=0)
            what = (" ‖g·up‖（门控乘上投影 up 的权重与偏置的 Frobenius 范数）" if "adapter" in method
                    else " ‖BA‖（LoRA 更新的 Frobenius 范数）")
            out.append(f"{method} 训练后各块的{what}（{k} shot，{len(sizes)} 个种子的平均，第 1–{len(mean)} 块；"
                       f"0 即普通 CoOp；描述，不作检验）：" + "、".join(f"{v:.3f}" for v in mean) + "。")
    return out
