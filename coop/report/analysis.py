"""The report's generated analysis (section 7.9) and take-away (7.10), as Chinese sentences computed
from the result files.

Every sentence that compares two numbers is decided by the report's test, never by a fixed threshold:
a paired bootstrap over the same test images and seeds widened to the seeds' t interval
(:mod:`coop.report.comparisons`, :mod:`coop.report.stats`; the method is stated once, in the report's
appendix B). Each verdict and interval is printed once, in its table; 7.9 interprets them -- the observed
difference against zero-shot (with the share of zero-shot's errors it fixed, or how large a difference
the seeds and test images could detect), the shot trend, the order of the methods at the largest shot
count, a reading of over-fitting against under-training, what the bonus's modification changed and
which bound decides its non-inferiority test -- and 7.10 gives the main numbers and what they mean in a
few bullets (:mod:`coop.report.interpret` holds the readings). Nothing is typed in; tests feed result
sets of different shapes and check the sentences.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

from .guard import guarded
from .health import STUCK_TAKEAWAY, all_at_chance, health_sentences
from ..runs.results import any_random, by_shots, modified_methods, shot_stats
from . import published
from .comparisons import compare, noninferiority_tests
from .interpret import (METHOD_ZH, REMEDY_ZH, SOURCE, baseline_bullet, bonus_evidence, fit_sentence, half_width, joined,
                        ks, lower_from, pairs_once, ranking_sentences, trend_bullet, trend_sentence, wider, zeroshot_words, zh)
from .noninferiority_zh import NOT_HARM, guard_sentence, noninferiority_sentence, power_sentence, undetected_fail
from .numbering import Numbering
from .stats import verdict

NEAR_CEILING = 80.0  # a zero-shot accuracy from which the text speaks of little room left
__all__ = ["analysis", "takeaways", "METHOD_ZH", "zh", "NEAR_CEILING"]


def versus_zeroshot(zs: Dict[str, Any], recs: List[Dict[str, Any]]) -> Dict[int, Optional[Dict[str, Any]]]:
    return {k: compare(list(runs.values()), [zs]) for k, runs in sorted(by_shots(recs).items())}


def _by_verdict(tests: Dict[int, Optional[Dict[str, Any]]]) -> Dict[str, List[int]]:
    groups: Dict[str, List[int]] = {}
    for k, t in tests.items():
        groups.setdefault(verdict(t) if t else "untestable", []).append(k)
    return groups


def _shares(zs_acc: float, tests: Dict[int, Optional[Dict[str, Any]]], keys: List[int]) -> List[float]:
    """The share (%) of zero-shot's errors a gain fixed, per shot count."""
    return [100 * tests[k]["diff"] / (100 - zs_acc) for k in keys] if zs_acc < 100 else []


def gain_sentences(zs: Dict[str, Any], recs: List[Dict[str, Any]], num: Optional[Numbering] = None,
                   random_weights: bool = False) -> List[str]:
    """CoOp against zero-shot, interpreted: the observed difference at each shot count, the share of
    zero-shot's errors fixed (when above) or the size the test could detect (when not), the room left,
    why it can help, and the rival explanations of a loss."""
    tests, zs_acc = versus_zeroshot(zs, recs), float(zs["accuracy"])
    table = num.ref("accuracy", "表 7.1") if num else "表 7.1"
    g = _by_verdict(tests)
    parts = []
    if g.get("higher"):
        up = g["higher"]
        share = _shares(zs_acc, tests, up)
        parts.append(f"{ks(up)} shot 时 CoOp 高于零样本，观测差{'分别' if len(up) > 1 else ''}为 "
                     f"{joined([tests[k]['diff'] for k in up])} 个百分点"
                     + ("" if random_weights or not share else
                        f"，即零样本 {100 - zs_acc:.2f}% 的错误中约 {'、'.join(f'{x:.0f}%' for x in share)} 被纠正"))
    if g.get("lower"):
        parts.append(f"{ks(g['lower'])} shot 时 CoOp 低于零样本，观测差 {joined([tests[k]['diff'] for k in g['lower']])} 个百分点")
    if g.get("no difference"):
        same = g["no difference"]
        parts.append(f"{ks(same)} shot 时观测差 {joined([tests[k]['diff'] for k in same])} 个百分点，检验分不出它与 0："
                     f"以这些种子和测试图像，95% 区间宽度的一半约为 {joined([half_width(tests[k]) for k in same], False)} 个百分点，"
                     "比它小的真实差异多半检测不到")
    if g.get("untestable"):
        parts.append(f"{ks(g['untestable'])} shot 无法检验（记录里没有可配对的逐图预测）")
    out = [f"{zeroshot_words(zs)}。CoOp 相对它（同一测试图像上的配对差，{pairs_once(tests)}；区间与判断见{table}）："
           + "；".join(parts) + "。"]
    if not random_weights:
        room = f"可提升的空间：零样本已有 {zs_acc:.2f}%，错误只剩 {100 - zs_acc:.2f} 个百分点，任何方法的提升都不会超过它。"
        if zs_acc >= NEAR_CEILING:
            pub = num.ref("published", "") if num else ""
            zs_pub, top = published.TABLE[published.ZS_ROW][-1], max(v[-1] for v in published.TABLE.values())
            room += ("Caltech101 的类别多是常见物体、图像大多居中，CLIP 的零样本已接近上限，few-shot 方法的提升以几个百分点计"
                     + (f"（{pub}：已发表的 RN50 运行中零样本 {zs_pub:.2f}%，{published.SHOTS[-1]} shot 最好的方法也只到 {top:.2f}%）"
                        if pub else "") + "；同样大小的提升在这里比在零样本较低的数据集上更难得。")
        out.append(room)
    if g.get("higher") and not random_weights:
        out.append("为什么学到的上下文能帮上忙（解释，不是检验过的结论）：手写的 \"a photo of a\" 对所有数据集都一样；CoOp 用这些"
                   "标注图像的交叉熵直接调整 16 个上下文向量，每个类的文本特征 w_c——也就是分类器的权重（第 4 节）——于是朝本数据集"
                   "图像特征的方向移动。图像塔冻结，CoOp 只是把冻结的 CLIP“问”得更好，没有学到新的视觉特征，所以提升受限于零样本"
                   "特征已经能分开的程度。")
    if g.get("lower"):
        n_ctx = sorted({str((r.get("config") or {}).get("n_ctx", "?")) for r in recs})
        out.append(f"在 {ks(g['lower'])} shot 时 CoOp 低于零样本。两个可能的解释"
                   f"（都是假设；下面训练准确率的读数是一个迹象，第 8 节给出区分它们的实验）：过拟合——每类只有这么少的训练图像时，"
                   f"{'/'.join(n_ctx)} 个上下文向量会拟合到这几张图像的偶然特征上，而手写提示不需要训练样本；训练不足——shot 少时"
                   f"优化步数也少（第 5.2 节），上下文可能还没离开随机初始化附近。")
    out.append(detectable_sentence(tests))
    return [s for s in out if s]


def detectable_sentence(tests: Dict[int, Optional[Dict[str, Any]]]) -> str:
    """What sets the width of the CoOp-vs-zero-shot intervals -- the seeds' spread (t over the seeds) or
    the test images' sampling (the paired bootstrap) -- and so what would let a smaller difference show."""
    got = {k: t for k, t in tests.items() if t}
    if not got:
        return ""
    n = max(len(t.get("seeds") or []) for t in got.values())
    by = {"t": [k for k, t in got.items() if wider(t) == "t"], "bootstrap": [k for k, t in got.items() if wider(t) == "bootstrap"]}
    what = "；".join(f"{'各 shot 数' if len(v) == len(got) else ks(v) + ' shot '}时以{SOURCE[s][0]}为准（它{SOURCE[s][1]}，"
                    f"比另一个区间宽：{SOURCE[s][2]}是主要的不确定性），要检测更小的差异需要{REMEDY_ZH[s]}"
                    for s, v in by.items() if v)
    n_img = max(int(t.get("n_images") or 0) for t in got.values())
    seeds = f"{n} 个种子" if n > 1 else "1 个种子（没有按种子的 t 区间，种子间的波动没有计入）"
    text = f"区间的宽度由什么决定：以这次的 {seeds}和 {n_img:,} 张测试图像，CoOp 相对零样本的 95% 区间：{what}。"
    if by["t"]:
        text += "按种子的 t 区间随种子数与 t 分位数一起变窄。"
    if by["bootstrap"]:
        text += "自助法区间约按测试图像数的平方根变窄。"
    if n > 1 and by["t"]:
        from scipy.stats import t as student_t

        crit = float(student_t.ppf(0.975, n - 1))
        text += f"{n} 个种子时 t 分位数为 {crit:.2f}，是正态分位数 1.96 的 {crit / 1.96:.1f} 倍。"
    return text


def word_sentences(records: Sequence[Dict[str, Any]], kmax: int) -> List[str]:
    """What the nearest words show across seeds -- and only that (no fixed claim about them)."""
    per_seed = [{str(nw[0][0]).strip() for nw in r.get("nearest_words") or [] if nw} - {""} for r in records]
    per_seed = [s for s in per_seed if s]
    if not per_seed:
        return []
    if len(per_seed) < 2:
        return [f"{kmax} shot 只有 1 个种子，无法判断上下文向量的最近词是否在种子之间重复出现。"]
    counts = Counter(w for s in per_seed for w in s)
    recurring = [(w, n) for w, n in counts.most_common() if n >= 2]
    caveat = ("（最近词只是把连续的向量投影到离散词表上的粗略读法，不是模型“学到的提示语”；常见的词元在随机向量下"
              "也可能在几个种子里重复出现，重复本身不是检验。）")
    if recurring:
        return [f"{kmax} shot 的 {len(per_seed)} 个种子中，有 {len(recurring)} 个词在至少两个种子里都是某个上下文向量的"
                f"第 1 近词：" + "、".join(f"“{w}”（{n} 个种子）" for w, n in recurring[:5]) + "。" + caveat]
    return [f"{kmax} shot 的 {len(per_seed)} 个种子中，每个上下文向量的第 1 近词没有一个在两个种子里重复出现。" + caveat]


def analysis(loaded: Dict[str, Any], num: Optional[Numbering] = None,
             tests: Optional[Dict[str, Any]] = None) -> List[str]:
    """The analysis, one paragraph per item, from the loaded results (``num``: the section's figure and
    table numbers, for the references to the tables that hold the intervals; ``tests``: the rendering's
    :func:`noninferiority_tests`, computed here when not given)."""
    num = num or Numbering("7")
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    rw = any_random(loaded)
    out: List[str] = ["“高/低”都指 95% 置信区间整体在 0 的一侧（检验方法见附录 B）；区间跨过 0 不等于两者相等。"
                      "区间与逐项的判断在各表里；下面解读它们的模式。"]
    if rw:
        out[0] = "这些数字来自随机权重，不是准确率；下面的句子只演示分析如何从结果文件生成。" + out[0]
    out += health_sentences(zs, coop, baselines, loaded.get("zeroshot_prompts"))  # before any interpretation: did training learn anything?
    stuck = all_at_chance(coop)
    if zs and base:
        # when CoOp learned nothing, more seeds or test images would only measure the noise better: not said
        out += [s for s in gain_sentences(zs, base, num, rw) if not (stuck and s.startswith("区间的宽度由什么决定"))]
    if base:
        out += [s for s in (trend_sentence(base), fit_sentence(base)) if s]
        out += ranking_sentences(base, baselines, num.ref("baselines", "第 7.3 节"), rw)
        kmax = max(int(r["shots"]) for r in base)
        out += word_sentences(list(by_shots(base)[kmax].values()), kmax)
    said = 0  # the rule, the chances' reasoning and the caveat are said once, for the first modification
    mods = modified_methods(coop)
    tests = tests if tests is not None else noninferiority_tests(loaded)
    for method in mods:
        evidence, _ = bonus_evidence(method, coop[method], base, num.ref("block_mods", "第 7.8 节"))
        if not evidence:
            continue
        # section 9.4's test is the modification's own (the bound keeps it near CoOp); the guard is an add-on
        power = "" if stuck else power_sentence(coop[method], base, again=said > 0, ni=tests[method])  # noise: no more samples
        out.append(evidence + noninferiority_sentence(method, coop[method], base, again=said > 0, ni=tests[method])
                   + power + guard_sentence(method, guarded(coop[method], base)[0]))
        said += 1
    if said and not stuck and any(undetected_fail(coop[m], base, ni=tests[m]) for m in mods):
        out.append(NOT_HARM)
    return out if len(out) > 1 else ["（没有可分析的结果。）"]


def _what(zs: Dict[str, Any]) -> str:
    model = (zs.get("model") or {}).get("name", "CLIP")
    split = str((zs.get("split") or {}).get("file") or "").split("/")[-1]
    data = "演示用的合成数据" if zs.get("demo") else f" Caltech101（划分 {split}）"
    return f"{model} 在{data}上"


def _numbers_bullet(zs: Dict[str, Any], base: List[Dict[str, Any]], rw: bool) -> str:
    """The main numbers and what they mean against the hand-written prompt."""
    stats, tests, zs_acc = shot_stats(base), versus_zeroshot(zs, base), float(zs["accuracy"])
    g, meaning = _by_verdict(tests), []
    if g.get("higher"):
        best = max(g["higher"], key=lambda k: tests[k]["diff"])
        share = _shares(zs_acc, tests, [best])
        meaning.append(f"学到的上下文在 {ks(g['higher'])} shot 胜过手写提示" + ("" if rw else
                       f"，最多多答对 {tests[best]['diff']:.2f} 个百分点（{best} shot）" +
                       (f"，约为零样本错误的 {share[0]:.0f}%" if share else "")))
    if g.get("lower"):
        meaning.append(f"在 {ks(g['lower'])} shot 反而不如手写提示（过拟合还是训练不足尚未分开，第 8 节）")
    if g.get("no difference"):
        h = [half_width(tests[k]) for k in g["no difference"]]
        size = f"{min(h):.2f}" if max(h) - min(h) < 0.005 else f"{min(h):.2f}–{max(h):.2f}"
        meaning.append(f"在 {ks(g['no difference'])} shot 与手写提示分不出高低——这次 95% 区间宽度的一半约 {size} 个百分点，比它小的差异多半看不出")
    means = "、".join(f"{k} shot {st['mean']:.2f}%" for k, st in stats.items())
    return f"- {_what(zs)}：零样本 CLIP {zs_acc:.2f}%，CoOp {means}（种子平均）。" + "；".join(meaning) + "。"


def _bonus_bullet(coop: Dict[str, List[Dict[str, Any]]], base: List[Dict[str, Any]], tests: Dict[str, Any]) -> str:
    said = []
    for method in modified_methods(coop):
        ni = tests.get(method)  # section 9.4's test: the modification itself
        if ni is None:
            continue
        _, same = bonus_evidence(method, coop[method], base, "")
        lost = ni["losses"]
        text = ("可以说非劣于 CoOp（第 9.4 节的检验）" if ni["noninferior"] else "不能说非劣于 CoOp") + (
            f"，在 {ks(lost)} shot 检测到损失" if lost else
            f"，在 {ks(ni['beyond'])} shot 观测到超过界的平均损失" if ni["beyond"] else
            "，没有一个 shot 数检测到损失" if ni["noninferior"] else "，但没有一个 shot 数检测到损失")
        if not ni["noninferior"] and not lost and not ni["beyond"] and ni["pooled_lower"] is not None:
            short = {"bootstrap": "对测试图像与种子的重采样", "t": "种子之间的波动"}[lower_from(ni["pooled"])]
            if short.startswith("对测试") and len(set(ni["pooled"].get("per_seed") or [])) == 1:  # the seeds add nothing
                short = "对测试图像的重采样（各种子的平均差相同，重采样种子不起作用）"
            p, m = ni["pooled"], ni["margin"]
            both = p["ci_bootstrap"][0] <= -m and p["seed_t_ci"] is not None and p["seed_t_ci"][0] <= -m
            need = f"{REMEDY_ZH['bootstrap']}和{REMEDY_ZH['t']}" if both else REMEDY_ZH[lower_from(p)]  # each failing bound
            text += f"；合并的下界 {ni['pooled_lower']:+.2f} 来自{short}：结论未定，要下结论需要{need}"
        text += f"；{ks(same)} shot 时逐图预测与 CoOp 完全相同（那里修改没有起作用，不损失不说明它有用）" if same else ""
        g = guarded(coop[method], base)[0]
        if g:  # the guard, an add-on: how often it kept the modification
            used = sum(1 for r in g if r["guard"]["modified"])
            text += (f"；验证集把关在全部 {len(g)} 对 (shots, seed) 上都退回了 CoOp" if not used else
                     f"；验证集把关在 {len(g)} 对 (shots, seed) 中 {used} 对用了修改")
        said.append((method, text))
    merged: Dict[str, List[str]] = {}  # modifications the same words describe are named together, said once
    for method, text in said:
        merged.setdefault(text, []).append(method)
    return ("- 加分项：" + "。".join(f"{'、'.join(ms)}：{t}" for t, ms in merged.items()) + "。") if said else ""


def takeaways(loaded: Dict[str, Any], tests: Optional[Dict[str, Any]] = None) -> List[str]:
    """Section 7.10: the main numbers and what they mean, in at most five bullets, decided by the same
    tests as the analysis (no interval and no verdict list repeated: they are in the tables)."""
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    if not (zs and shot_stats(base)):
        return ["（需要零样本与 CoOp 的结果才能下结论。）"]
    rw = any_random(loaded)
    out = []
    stuck = STUCK_TAKEAWAY if all_at_chance(coop) else ""
    if rw:
        out.append("- 注意：这些数字来自随机权重的模型" + ("和合成数据" if zs.get("demo") else "") +
                   "，不是 CLIP 或 CoOp 的准确率；下面几条只演示结论如何从结果文件生成。" + stuck)
    elif stuck:
        out.append("- " + stuck)
    out += [_numbers_bullet(zs, base, rw), trend_bullet(base), baseline_bullet(base, baselines) if baselines else "",
            _bonus_bullet(coop, base, tests if tests is not None else noninferiority_tests(loaded))]
    return [b for b in out if b]
