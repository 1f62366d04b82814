"""The report's generated analysis (section 7.9) and take-away (7.10), as Chinese sentences computed
from the result files.

Every sentence that compares two numbers is decided by the report's test, never by a fixed threshold:
a paired bootstrap over the same test images and seeds widened to the seeds' t interval
(:mod:`coop.report.comparisons`, :mod:`coop.report.stats`; the method is stated once, in the report's
appendix B), written as higher, lower, or "no difference we can detect". A verdict's interval is
printed once, in its table; the sentences give the verdict, its size in words and the seed pairs
behind it. When CoOp is above zero-shot the text says by how much of zero-shot's remaining errors, what
room Caltech101 leaves, and why a learned context can help (an explanation, not a tested claim); it says
how large a difference the seeds at hand can detect, and how likely the bonus's non-inferiority test is
to conclude with them. Nothing is typed in; tests feed result sets of different shapes and check the
sentences.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..runs.results import any_random, by_shots, shot_stats
from .comparisons import NI_MARGIN, compare, noninferiority
from .fmt import describe, verdict_words
from .numbering import Numbering
from .references import cite
from .stats import noninferiority_power, verdict

NEAR_CEILING = 80.0  # a zero-shot accuracy from which the text speaks of little room left


def _say(res: Optional[Dict[str, Any]]) -> str:
    return verdict_words(res) if res else "无法检验（记录里没有可配对的逐图预测）"


def _spread(st: Dict[str, Any]) -> str:
    if st["n"] == 1:
        return "1 个种子"
    return f"{st['n']} 个种子，标准差 {st['std']:.2f}，范围 {min(st['accuracies']):.2f}–{max(st['accuracies']):.2f}%"


def versus_zeroshot(zs: Dict[str, Any], recs: List[Dict[str, Any]]) -> Dict[int, Optional[Dict[str, Any]]]:
    return {k: compare(list(runs.values()), [zs]) for k, runs in sorted(by_shots(recs).items())}


def _errors_fixed(zs_acc: float, res: Dict[str, Any]) -> str:
    """", 即零样本 14.08% 的错误中约 16% 被纠正" for a gain (the headroom it used)."""
    err = 100.0 - zs_acc
    if err <= 0 or verdict(res) != "higher":
        return ""
    return f"，即零样本 {err:.2f}% 的错误中约 {100 * res['diff'] / err:.0f}% 被纠正"


def gain_sentences(zs: Dict[str, Any], recs: List[Dict[str, Any]], num: Optional[Numbering] = None,
                   random_weights: bool = False) -> List[str]:
    """CoOp against zero-shot at each shot count in words, the room left, why it can help, the steps."""
    stats, tests, byk = shot_stats(recs), versus_zeroshot(zs, recs), by_shots(recs)
    zs_acc = float(zs["accuracy"])
    table = num.ref("accuracy", "表 7.1") if num else "表 7.1"
    parts = []
    for k, st in stats.items():
        t = tests[k]
        said = _say(t) if t is None or verdict(t) == "no difference" else \
            f"比零样本{verdict_words(t)}" + ("" if random_weights else _errors_fixed(zs_acc, t))
        parts.append(f"{k} shot 时 CoOp 平均 {st['mean']:.2f}%（{_spread(st)}），{said}")
    out = [f"与零样本 CLIP（{zs_acc:.2f}%）相比（同一测试图像上的配对差，区间见{table}）：" + "；".join(parts) + "。"]
    higher = [k for k in stats if tests[k] and verdict(tests[k]) == "higher"]
    if not random_weights:
        room = f"可提升的空间：零样本已有 {zs_acc:.2f}%，错误只剩 {100 - zs_acc:.2f} 个百分点，任何方法的提升都不会超过它。"
        if zs_acc >= NEAR_CEILING:
            pub = num.ref("published", "") if num else ""
            room += ("Caltech101 的类别多是常见物体、图像大多居中，CLIP 的零样本已接近上限，few-shot 方法的提升以几个百分点计"
                     + (f"（{pub}：已发表的 RN50 运行中零样本 85.92%，16 shot 的 Tip-Adapter-F 也只到 92.86%）" if pub else "")
                     + "；同样大小的提升在这里比在零样本较低的数据集上更难得。")
        out.append(room)
    if higher and not random_weights:
        out.append(f"为什么学到的上下文能帮上忙（解释，不是检验过的结论）：手写的 \"a photo of a\" 对所有数据集都一样；CoOp 用这些"
                   "标注图像的交叉熵直接调整 16 个上下文向量，每个类的文本特征 w_c——也就是分类器的权重（第 4 节）——于是朝本数据集"
                   "图像特征的方向移动。图像塔冻结，CoOp 只是把冻结的 CLIP“问”得更好，没有学到新的视觉特征，所以提升受限于零样本"
                   "特征已经能分开的程度。")
    ks = list(stats)
    if len(ks) > 1:
        steps = [f"{a}→{b} shot " + (describe(r) if (r := compare(list(byk[b].values()), list(byk[a].values()))) else _say(None))
                 for a, b in zip(ks, ks[1:])]
        out.append("随 shot 数增加（同一种子配对）：" + "；".join(steps) + "。")
    lower = [k for k in ks if tests[k] and verdict(tests[k]) == "lower"]
    if lower:
        n_ctx = sorted({str((r.get("config") or {}).get("n_ctx", "?")) for r in recs})
        out.append(f"在 {'、'.join(map(str, lower))} shot 时 CoOp 低于零样本（95% 区间整体在 0 以下）。两个可能的解释"
                   f"（都是假设；第 8 节给出区分它们的预测）：过拟合——每类只有这么少的训练图像时，{'/'.join(n_ctx)} 个上下文"
                   f"向量会拟合到这几张图像的偶然特征上，而手写提示不需要训练样本；训练不足——shot 少时优化步数也少"
                   f"（第 5.2 节），上下文可能还没离开随机初始化附近。")
    out.append(detectable_sentence(tests))
    return out


def detectable_sentence(tests: Dict[int, Optional[Dict[str, Any]]]) -> str:
    """How large a difference the seeds at hand can detect: the half-widths of the deciding intervals,
    and whether the seeds' spread or the test images' sampling set them."""
    got = {k: t for k, t in tests.items() if t}
    if not got:
        return ""
    halves = {k: (t["ci"][1] - t["ci"][0]) / 2 for k, t in got.items()}
    n = max(len(t.get("seeds") or []) for t in got.values())
    by_seeds = [k for k, t in got.items() if t.get("seed_t_ci") and
                t["seed_t_ci"][1] - t["seed_t_ci"][0] >= t["ci_bootstrap"][1] - t["ci_bootstrap"][0]]
    what = ("主要由种子之间的波动决定（按种子的 t 区间更宽）" if len(by_seeds) == len(got) else
            "主要由测试图像的抽样决定（配对自助法区间更宽）" if not by_seeds else
            f"在 {'、'.join(map(str, by_seeds))} shot 时由种子之间的波动决定，其余由测试图像的抽样决定")
    lo, hi = min(halves.values()), max(halves.values())
    size = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f}"
    seeds = f"{n} 个种子" if n > 1 else "1 个种子（没有按种子的 t 区间，种子间的波动没有计入）"
    text = (f"能检测多大的差异：以这次的 {seeds}，CoOp 相对零样本的 95% 区间半宽为 {size} 个百分点，{what}；"
            "比这小的真实差异多半会写成“没有可检测到的差异”。")
    if n > 1:
        from scipy.stats import t as student_t

        crit = float(student_t.ppf(0.975, n - 1))
        text += (f"{n} 个种子时 t 分位数为 {crit:.2f}，是正态分位数 1.96 的 {crit / 1.96:.1f} 倍，"
                 "更多种子（`--seeds`）会让区间明显变窄。")
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
    return [f"{kmax} shot 的 {len(per_seed)} 个种子中，每个上下文向量的第 1 近词没有一个在两个种子里重复出现"
            f"（第 7.7 节的表还列出第 2、3 近的词）。"
            + caveat]


def paired_sentences(title: str, a: List[Dict[str, Any]], b: List[Dict[str, Any]]) -> Optional[str]:
    """``title``: a per-shot comparison of a against b, paired by (shots, seed), in words (the intervals
    are in the table the title names)."""
    ba, bb = by_shots(a), by_shots(b)
    parts = []
    for k in sorted(set(ba) & set(bb)):
        res = compare(list(ba[k].values()), list(bb[k].values()))
        if res is not None:
            parts.append(f"{k} shot {verdict_words(res)}")
    return f"{title}：" + "；".join(parts) + "。" if parts else None


def analysis(loaded: Dict[str, Any], num: Optional[Numbering] = None) -> List[str]:
    """The analysis, one paragraph per item, from the loaded results (``num``: the section's figure and
    table numbers, for the references to the tables that hold the intervals)."""
    num = num or Numbering("7")
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    rw = any_random(loaded)
    out: List[str] = ["“高/低”都指 95% 置信区间整体在 0 的一侧（检验方法见附录 B）；“没有可检测到的差异”不等于两者相等。"]
    if rw:
        out[0] = "这些数字来自随机权重，不是准确率；下面的句子只演示分析如何从结果文件生成。" + out[0]
    if zs and base:
        out += gain_sentences(zs, base, num, rw)
    if base:
        kmax = max(int(r["shots"]) for r in base)
        out += word_sentences(list(by_shots(base)[kmax].values()), kmax)
    for method in sorted(m for m in coop if m != "CoOp" and "[" not in m):
        s = paired_sentences(f"{method} 相对普通 CoOp（同一 (shots, seed) 配对；区间见{num.ref('block_mods', '第 7.8 节')}）",
                             coop[method], base)
        out += [s + noninferiority_sentence(method, coop[method], base) + power_sentence(coop[method], base)] if s else []
    for method, recs in baselines.items():
        s = paired_sentences(f"CoOp 相对{zh(method)}（同一 few-shot 图像、同一种子；区间见{num.ref('baselines', '第 7.3 节')}）",
                             base, recs)
        out += [s] if s else []
    return out if len(out) > 1 else ["（没有可分析的结果。）"]


def power_sentence(mod: List[Dict[str, Any]], base: List[Dict[str, Any]]) -> str:
    """How likely the non-inferiority test is to conclude with the seeds at hand, if the true difference
    were 0 and the seeds' differences spread as observed (the shot count with the largest spread)."""
    ni = noninferiority(mod, base)
    if ni is None:
        return ""
    spread = {k: (float(np.std(t["per_seed"], ddof=1)), len(t["per_seed"])) for k, t in ni["tests"].items()
              if len(t.get("per_seed") or []) >= 2}
    if not spread:
        return ""
    k, (sd, n) = max(spread.items(), key=lambda kv: kv[1][0])
    p = noninferiority_power(sd, n, ni["margin"])
    text = (f"这个检验在 {n} 对种子时通过的机会有多大：以 {k} shot 时种子间差值的标准差 {sd:.2f} 个百分点计，若真实差为 0，"
            f"按种子的 t 下界高于 -{ni['margin']:.2f} 的概率约为 {100 * p:.0f}%（还要求配对自助法的下界也高于它，实际更低）。")
    if not ni["noninferior"]:
        text += "所以“不能说非劣”首先说明种子太少，而不是修改有害；是否损害准确率，以上面逐个 shot 数的配对差和区间为主要证据。"
    return text


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


def takeaways(loaded: Dict[str, Any]) -> List[str]:
    """Section 7.10: what the numbers say, in a few bullets, decided by the same tests as the analysis
    (no interval repeated: they are in the tables)."""
    zs, coop, baselines = loaded["zeroshot"], loaded["coop"], loaded.get("baselines") or {}
    base = coop.get("CoOp") or []
    stats = shot_stats(base)
    if not (zs and stats):
        return ["（需要零样本与 CoOp 的结果才能下结论。）"]
    out = []
    if any_random(loaded):
        out.append("- 注意：这些数字来自随机权重的模型" + ("和合成数据" if zs.get("demo") else "") +
                   "，不是 CLIP 或 CoOp 的准确率；下面几条只演示结论如何从结果文件生成。")
    tests = versus_zeroshot(zs, base)
    means = "、".join(f"{k} shot {st['mean']:.2f}%" for k, st in stats.items())
    out.append(f"- {_what(zs)}，零样本 CLIP 为 {float(zs['accuracy']):.2f}%；CoOp 的平均为 {means}。")
    groups: Dict[str, List[str]] = {}
    for k, t in tests.items():
        groups.setdefault(verdict(t) if t else "untestable", []).append(f"{k} shot" + (
            f"（{'+' if t['diff'] > 0 else '-'}{abs(t['diff']):.2f}）" if t and verdict(t) != "no difference" else ""))
    said = {"higher": "学到的上下文高于手写提示", "lower": "低于手写提示（可能的原因见第 8 节，属于假设）",
            "no difference": "与手写提示没有可检测到的差异", "untestable": "无法检验（缺少逐图预测）"}
    out.append("- 相对手写提示（配对检验，括号内为百分点）：" + "；".join(
        f"{said[g]}：{'、'.join(v)}" for g, v in groups.items()) + "。")
    kmax = max(stats)
    zs_acc = float(zs["accuracy"])
    t = tests.get(kmax)
    if t and verdict(t) == "higher" and zs_acc < 100 and not any_random(loaded):
        out.append(f"- 可提升的空间有限：零样本只剩 {100 - zs_acc:.2f} 个百分点的错误，{kmax} shot 的 CoOp 纠正了其中约 "
                   f"{100 * t['diff'] / (100 - zs_acc):.0f}%。")
    for method, recs in baselines.items():
        res = compare(list(by_shots(base).get(kmax, {}).values()), list(by_shots(recs).get(kmax, {}).values()))
        if res is not None:
            out.append(f"- {kmax} shot 时，CoOp 相对{zh(method)} {verdict_words(res)}。")
    for method in sorted(m for m in coop if m != "CoOp" and "[" not in m):
        ni = noninferiority(coop[method], base)
        if ni is not None:
            out.append(f"- {method}：" + ("可以说非劣于 CoOp（第 9.4 节的检验）。" if ni["noninferior"] else
                                         "不能说非劣于 CoOp；以第 7.9 节的配对差判断有无损害（种子太少时这个检验很难通过）。"))
    return out
