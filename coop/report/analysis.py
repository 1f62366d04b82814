"""The report's analysis and conclusion, as Chinese sentences computed from the result files.

Every sentence that compares two numbers is decided by a stated test, never by a fixed threshold:
a paired bootstrap over the same test images and seeds (:mod:`coop.report.comparisons`,
:mod:`coop.report.stats`), written as higher, lower, or "no difference we can detect" with its 95%
interval. Runs are paired by (shots, seed). Per-class changes are tested class by class with the
class's test count stated; the words nearest to the learned context get a sentence only about what
recurs across seeds; the per-class tests are written once, in section 7.5
(:func:`coop.report.sections.per_class_section`), and only referred to here. Every comparison
states over how many seed pairs it was made (:func:`coop.report.fmt.describe`). Nothing here is typed in; tests feed result sets of different shapes (a clear
gain, a clear loss, a small gain with a large spread, a plateau) and check the sentences.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

from ..runs.results import by_shots, shot_stats
from .comparisons import compare, noninferiority
from .fmt import describe
from .references import cite
from .stats import verdict

TOP = 3

METHOD_NOTE_EN = (
    "Differences are tested with a paired bootstrap over the same test images, resampling the images and, "
    "with two or more seed pairs, the seeds (their part rescaled by sqrt(k/(k-1)): the bootstrap variance of a mean of k "
    "values uses the ddof=0 variance) (10,000 replicates for the method comparisons, 2,000 per class; "
    "95% percentile interval; Efron & Tibshirani, An Introduction to the Bootstrap, 1993). A single pair of "
    "runs (the prompt wordings) also gets McNemar's exact test (McNemar, Psychometrika 12(2):153-157, 1947; "
    "Dietterich, \"Approximate Statistical Tests for Comparing Supervised Classification Learning Algorithms\", "
    "Neural Computation 10(7), 1998). Every comparison states over how many seed pairs it was made.")
METHOD_NOTE_ZH = (
    f"差异的检验采用配对自助法（Efron 与 Tibshirani 1993 {cite('efron')}）：两种方法在同一批测试图像上逐图配对，对测试图像重采样，"
    "有两对及以上种子时也对种子重采样（方法之间的比较 10,000 次，逐类比较每类 2,000 次；95% 百分位置信区间）。"
    "对 k 个种子重采样时，均值的自助法方差是 ddof=0 的方差除以 k，为无偏估计 s²/k 的 (k-1)/k 倍，所以种子部分乘以 √(k/(k-1))。"
    f"单对运行（7.4 节的提示措辞）只对测试图像重采样，并另给出 McNemar 精确检验（McNemar 1947 {cite('mcnemar')}）的 p 值"
    f"（Dietterich 1998 {cite('dietterich')}）。各比较分别在双侧 5% 显著性水平（95% 置信区间）上检验，未做多重比较校正：比较越多，纯属偶然的“高/低”越可能出现。"
    "每个比较都注明它基于几对种子（两边同一种子的运行各成一对；零样本只有一次运行，与 CoOp 的每个种子各配一次）。")


def _shots(k: int) -> str:
    return f"{k} shot"


def _say(res: Optional[Dict[str, Any]]) -> str:
    return describe(res, "zh") if res else "无法检验（记录里没有可配对的逐图预测）"


def _spread(st: Dict[str, Any]) -> str:
    if st["n"] == 1:
        return "1 个种子"
    return f"{st['n']} 个种子，标准差 {st['std']:.2f}，范围 {min(st['accuracies']):.2f}–{max(st['accuracies']):.2f}%"


def versus_zeroshot(zs: Dict[str, Any], recs: List[Dict[str, Any]]) -> Dict[int, Optional[Dict[str, Any]]]:
    return {k: compare(list(runs.values()), [zs]) for k, runs in sorted(by_shots(recs).items())}


def gain_sentences(zs: Dict[str, Any], recs: List[Dict[str, Any]]) -> List[str]:
    stats, tests, byk = shot_stats(recs), versus_zeroshot(zs, recs), by_shots(recs)
    parts = [f"{_shots(k)} 时 CoOp 为 {st['mean']:.2f}%（{_spread(st)}），相对零样本{_say(tests[k])}"
             for k, st in stats.items()]
    out = [f"与零样本 CLIP（{float(zs['accuracy']):.2f}%）相比：" + "；".join(parts) + "。"]
    ks = list(stats)
    if len(ks) > 1:
        steps = [f"{a}→{b} shot {_say(compare(list(byk[b].values()), list(byk[a].values())))}"
                 for a, b in zip(ks, ks[1:])]
        out.append("随 shot 数增加（同一种子配对）：" + "；".join(steps) + "。")
    lower = [k for k in ks if tests[k] and verdict(tests[k]) == "lower"]
    if lower:
        n_ctx = sorted({str((r.get("config") or {}).get("n_ctx", "?")) for r in recs})
        out.append(f"在 {'、'.join(map(str, lower))} shot 时 CoOp 低于零样本（95% 区间整体在 0 以下）。两个可能的解释"
                   f"（都是假设；第 8 节给出区分它们的预测）：过拟合——每类只有这么少的训练图像时，{'/'.join(n_ctx)} 个上下文"
                   f"向量会拟合到这几张图像的偶然特征上，而手写提示不需要训练样本；训练不足——shot 少时优化步数也少"
                   f"（第 5.2 节），上下文可能还没离开随机初始化附近。")
    return out


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
    return [f"{kmax} shot 的 {len(per_seed)} 个种子中，每个上下文向量的第 1 近词没有一个在两个种子里重复出现"
            f"（7.7 节的表还列出第 2、3 近的词）。"
            + caveat]


def paired_sentences(title: str, a: List[Dict[str, Any]], b: List[Dict[str, Any]]) -> Optional[str]:
    """``title``: a per-shot comparison of a against b, paired by (shots, seed)."""
    ba, bb = by_shots(a), by_shots(b)
    parts = []
    for k in sorted(set(ba) & set(bb)):
        res = compare(list(ba[k].values()), list(bb[k].values()))
        if res is not None:
            parts.append(f"{k} shot {describe(res, 'zh')}")
    return f"{title}：" + "；".join(parts) + "。" if parts else None


def analysis(loaded: Dict[str, Any]) -> List[str]:
    """The analysis, one paragraph per item, from the loaded results."""
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    n_seeds = max([len(v) for v in by_shots(base).values()] or [0])
    seeds_note = (f"本次每个 shot 数最多有 {n_seeds} 个种子。即使种子部分已按上式校正，种子间波动大的比较，其百分位区间"
                  f"仍偏窄；所以有两对及以上种子时，下文的区间是配对自助法区间与按种子的 t 区间（各种子准确率差的均值，"
                  f"自由度 k-1）的并集：每一侧取两者中离 0 更远的端点，宁可判为“没有可检测到的差异”（逐类比较除外：它用该类图像上的"
                  f"配对自助法区间，再加逐图符号检验把关，见第 7.5 节）。"
                  if n_seeds > 1 else "")
    out: List[str] = [METHOD_NOTE_ZH + seeds_note + "下文的“高/低”都指 95% 置信区间整体在 0 的一侧；"
                      "“没有可检测到的差异”不等于两者相等。"]
    if zs and base:
        out += gain_sentences(zs, base)
        out.append("各类别相对零样本的逐类检验只在第 7.5 节给出（方法、可检验的类与结果都在那里），此处不重复。")
    if base:
        kmax = max(int(r["shots"]) for r in base)
        out += word_sentences(list(by_shots(base)[kmax].values()), kmax)
    for method in sorted(m for m in coop if m != "CoOp" and "[" not in m):
        s = paired_sentences(f"{method} 相对普通 CoOp（同一 (shots, seed) 配对）", coop[method], base)
        out += [s + noninferiority_sentence(method, coop[method], base)] if s else []
    for method, recs in baselines.items():
        s = paired_sentences(f"CoOp 相对{zh(method)}（同一 few-shot 图像、同一种子）", base, recs)
        out += [s] if s else []
    return out if len(out) > 1 else ["（没有可分析的结果。）"]


def noninferiority_sentence(method: str, mod: List[Dict[str, Any]], base: List[Dict[str, Any]]) -> str:
    """Section 9.4's test of "does not hurt accuracy": at every shot count the lower of the two 95%
    lower bounds (paired bootstrap; t over the seeds) lies above -margin. Bounds are printed with
    two decimals, so that a rounded number never seems to contradict the verdict."""
    ni = noninferiority(mod, base)
    if ni is None:
        return ""
    m = ni["margin"]
    rule = (f"按第 9.4 节事先规定的非劣效界（-{m:.2f} 个百分点；下界取配对自助法与按种子的 t 区间中较低者；"
            f"Piaggio 等 {cite('piaggio')}）：")
    if ni["lower"]:
        rule += "各 shot 数的下界为 " + "、".join(f"{k} shot {v:+.2f}" for k, v in ni["lower"].items()) + "，"
    if ni["untested"]:
        return rule + (f"{'、'.join(map(str, ni['untested']))} shot 无法判断（缺少一方的运行、逐图预测，或可配对的种子"
                       f"少于 2 对），因此不能说 {method} 非劣于 CoOp。")
    if ni["noninferior"]:
        return rule + f"都高于 -{m:.2f}，可以说 {method} 非劣于 CoOp（以 95% 置信区间判断，损失不超过 {m:.2f} 个百分点）。"
    return rule + f"并非都高于 -{m:.2f}，因此不能说 {method} 非劣于 CoOp。"


METHOD_ZH = {"Linear probe CLIP": "线性探测 CLIP", "Zero-shot CLIP": "零样本 CLIP"}


def zh(method: str) -> str:
    """A method's name as Chinese prose writes it after Chinese text (tables keep the records' names):
    a Latin name gets a space before it."""
    name = METHOD_ZH.get(method, method)
    return (" " if name[:1].isascii() else "") + name


def _what(zs: Dict[str, Any]) -> str:
    model = (zs.get("model") or {}).get("name", "CLIP")
    split = str((zs.get("split") or {}).get("file") or "").split("/")[-1]
    data = "演示用的合成数据" if zs.get("demo") else f" Caltech101（划分 {split}）"
    return f"{model} 在{data}上"


def conclusion(loaded: Dict[str, Any]) -> str:
    """One paragraph: what the numbers say, decided by the same tests as the analysis."""
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    stats = shot_stats(base)
    if not (zs and stats):
        return "（需要零样本与 CoOp 的结果才能下结论。）"
    text = ""
    if zs.get("random_weights") or any(r.get("random_weights") for r in base):
        text = ("注意：这些数字来自随机权重的模型" + ("和合成数据" if zs.get("demo") else "") +
                "，不是 CLIP 或 CoOp 的准确率；下面的句子只演示结论如何从结果文件生成。")
    tests = versus_zeroshot(zs, base)
    means = "、".join(f"{k} shot {st['mean']:.2f}%" for k, st in stats.items())
    text += (f"{_what(zs)}，零样本 CLIP 为 {float(zs['accuracy']):.2f}%；CoOp 的平均准确率为 {means}"
             f"（各 shot 数之间的差异见第 7.9 节的检验）。")
    text += "学到的上下文相对手写提示（同一测试图像上的配对差）：" + "；".join(
        f"{k} shot 时{_say(t)}" for k, t in tests.items()) + "。"
    if any(t and verdict(t) == "lower" for t in tests.values()):
        text += "低于手写提示的情形可能的原因见第 8 节（属于假设）。"
    kmax = max(stats)
    for method, recs in baselines.items():
        res = compare(list(by_shots(base).get(kmax, {}).values()), list(by_shots(recs).get(kmax, {}).values()))
        if res is not None:
            text += f"在 {kmax} shot 时，CoOp 与{zh(method)} 相比{describe(res, 'zh')}。"
    for method in sorted(m for m in coop if m != "CoOp" and "[" not in m):
        text += noninferiority_sentence(method, coop[method], base)
    return text
