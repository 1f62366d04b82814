"""The report's analysis and conclusion, as Chinese sentences computed from the result files.

Every claim here is a comparison of numbers read from the records (:func:`coop.runs.results.load_results`):
the gain over zero-shot at each shot count with its spread over seeds, the trend over shots, where
CoOp falls below zero-shot, the classes that gain and lose most, the words nearest to the learned
context, and the block modifications against plain CoOp, paired by (shots, seed). Nothing is typed
in; tests feed result sets of different shapes and check that the sentences follow the numbers.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Sequence

import numpy as np

from ..runs.results import by_shots, shot_stats

FLAT = 0.1  # percentage points: differences smaller than this are called "持平" (level)


def _pp(x: float) -> str:
    return f"{abs(x):.2f} 个百分点"


def compare_word(diff: float) -> str:
    """高 / 低 / 持平 for a difference in percentage points."""
    return "持平" if abs(diff) < FLAT else ("高" if diff > 0 else "低")


def trend(means: Sequence[float]) -> str:
    """How the mean accuracy moves over increasing shot counts."""
    d = np.diff(np.asarray(means, dtype=float))
    if len(d) == 0:
        return "只有一个 shot 数，无法判断趋势"
    if np.all(np.abs(d) < FLAT):
        return "基本持平（相邻 shot 数之间的变化都小于 0.1 个百分点）"
    if np.all(d >= FLAT):
        return "随 shot 数单调上升"
    if np.all(d <= -FLAT):
        return "随 shot 数单调下降"
    return "不单调"


def gain_sentences(zs: Dict[str, Any], stats: Dict[int, Dict[str, Any]]) -> List[str]:
    z = float(zs["accuracy"])
    parts = []
    for k, st in stats.items():
        diff = st["mean"] - z
        spread = (f"{st['n']} 个种子，标准差 {st['std']:.2f}，范围 {min(st['accuracies']):.2f}–"
                  f"{max(st['accuracies']):.2f}%") if st["n"] > 1 else "1 个种子"
        word = compare_word(diff)
        parts.append(f"{k} shot 时 CoOp 为 {st['mean']:.2f}%（{spread}），比零样本" +
                     ("持平" if word == "持平" else f"{word} {_pp(diff)}"))
    out = [f"与零样本 CLIP（{z:.2f}%）相比：" + "；".join(parts) + "。"]
    ks = list(stats)
    gains = [stats[k]["mean"] - z for k in ks]
    t = trend([stats[k]["mean"] for k in ks])
    if len(ks) > 1:
        sentence = f"CoOp 的平均准确率{t}"
        if t == "不单调":
            drops = [f"{a}→{b} shot 下降 {_pp(stats[b]['mean'] - stats[a]['mean'])}"
                     for a, b in zip(ks, ks[1:]) if stats[b]["mean"] - stats[a]["mean"] <= -FLAT]
            sentence += "：" + "，".join(drops)
        out.append(sentence + "。")
    below = [k for k, g in zip(ks, gains) if g <= -FLAT]
    if below:
        out.append(f"在 {'、'.join(map(str, below))} shot 时 CoOp 低于零样本：每类只有这么少的训练图像时，"
                   f"16 个上下文向量（8,192 个参数）很容易拟合到这几张图像的偶然特征上，而手写提示"
                   f"“a photo of a {{}}.” 不需要任何训练样本。")
    else:
        seeds_below = [(k, s) for k in ks for s, a in zip(stats[k]["seeds"], stats[k]["accuracies"]) if a < z]
        if seeds_below:
            out.append(f"平均值都不低于零样本，但有 {len(seeds_below)} 个单独的运行低于零样本（"
                       + "，".join(f"{k} shot 种子 {s}" for k, s in seeds_below) + "）：少样本下结果对所抽的图像很敏感。")
    return out


def class_sentences(rows: Sequence[tuple], kmax: int, top: int = 3) -> List[str]:
    """rows: (class, zero-shot %, CoOp %, change) sorted by change, largest gain first."""
    if not rows:
        return []
    up = [r for r in rows if r[3] > 0]
    down = [r for r in rows if r[3] < 0]
    out = [f"按类别看（CoOp {kmax} shot 的种子平均 vs 零样本），{len(rows)} 个类中 {len(up)} 个提升、"
           f"{len(down)} 个下降、{len(rows) - len(up) - len(down)} 个不变。"]
    if up:
        out.append("提升最多的是 " + "、".join(f"{c}（{z:.1f}%→{m:.1f}%）" for c, z, m, _ in up[:top]) + "。")
    if down:
        worst = sorted(down, key=lambda r: r[3])[:top]
        out.append("下降最多的是 " + "、".join(f"{c}（{z:.1f}%→{m:.1f}%）" for c, z, m, _ in worst) + "。")
    return out


def word_sentences(records: Sequence[Dict[str, Any]], kmax: int) -> List[str]:
    words = Counter(str(nw[0][0]).strip() for r in records for nw in r.get("nearest_words") or [] if nw)
    words.pop("", None)
    if not words:
        return []
    common = ", ".join(f"“{w}”（{n} 次）" for w, n in words.most_common(5))
    n_vec = sum(len(r.get("nearest_words") or []) for r in records)
    return [f"{kmax} shot 的 {len(records)} 次运行共 {n_vec} 个上下文向量，各自最近的词中出现最多的是 {common}。"
            f"这些词大多不构成可读的句子：学到的向量并不在词表的某个词上，最近词只是把它投影到离散词表上的一个"
            f"粗略读法（CoOp 论文第 5 节也这样提醒），不能当作模型“学到的提示语”。"]


def paired(base: List[Dict[str, Any]], mod: List[Dict[str, Any]]) -> Dict[int, List[float]]:
    """Per shot count: the differences mod - base of the seeds both have."""
    b, m = by_shots(base), by_shots(mod)
    return {k: [float(m[k][s]["accuracy"]) - float(b[k][s]["accuracy"]) for s in sorted(m[k]) if s in b.get(k, {})]
            for k in sorted(m) if k in b}


def block_mod_sentences(coop: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    out = []
    for method in sorted(m for m in coop if m != "CoOp"):
        diffs = {k: d for k, d in paired(coop.get("CoOp") or [], coop[method]).items() if d}
        if not diffs:
            continue
        all_d = [x for d in diffs.values() for x in d]
        mean = float(np.mean(all_d))
        per_k = "；".join(f"{k} shot 平均 {np.mean(d):+.2f}（{sum(x > 0 for x in d)}/{len(d)} 个种子更高）"
                          for k, d in diffs.items())
        word = {"高": "优于", "低": "不如", "持平": "相当于"}[compare_word(mean)]
        verdict = (f"{method} 总体{word}普通 CoOp（同一 (shots, seed) 配对，平均差 {mean:+.2f} 个百分点"
                   f"，{len(all_d)} 对）")
        out.append(f"{verdict}：{per_k}。")
    return out


def analysis(loaded: Dict[str, Any]) -> List[str]:
    """The analysis, one paragraph per item, from the loaded results."""
    from .tables import per_class_changes

    zs, coop = loaded["zeroshot"], loaded["coop"]
    base = coop.get("CoOp") or []
    stats = shot_stats(base)
    out: List[str] = []
    if zs and stats:
        out += gain_sentences(zs, stats)
    if zs and base:
        kmax = max(stats)
        out += class_sentences(per_class_changes(zs, list(by_shots(base)[kmax].values())), kmax)
    if base:
        kmax = max(stats)
        out += word_sentences(list(by_shots(base)[kmax].values()), kmax)
    out += block_mod_sentences(coop)
    return out or ["（没有可分析的结果。）"]


def conclusion(loaded: Dict[str, Any]) -> str:
    """One paragraph: what the numbers say, in order of importance."""
    zs, coop = loaded["zeroshot"], loaded["coop"]
    stats = shot_stats(coop.get("CoOp") or [])
    if not (zs and stats):
        return "（需要零样本与 CoOp 的结果才能下结论。）"
    z = float(zs["accuracy"])
    best = max(stats, key=lambda k: stats[k]["mean"])
    above = [k for k in stats if stats[k]["mean"] - z >= FLAT]
    below = [k for k in stats if stats[k]["mean"] - z <= -FLAT]
    text = (f"零样本 CLIP RN50 在我们的测试集上为 {z:.2f}%。CoOp 在 {best} shot 时最好，"
            f"为 {stats[best]['mean']:.2f}%（比零样本{compare_word(stats[best]['mean'] - z)} "
            f"{_pp(stats[best]['mean'] - z)}），平均准确率{trend([s['mean'] for s in stats.values()])}。")
    if len(above) == len(stats):
        text += "在所有 shot 数上，学到的上下文都胜过手写提示。"
    elif below:
        text += (f"在 {'、'.join(map(str, below))} shot 时它不如手写提示：样本太少时提示学习会过拟合，"
                 "这正是 CoCoOp 等后续工作要解决的问题。")
    mods = block_mod_sentences(coop)
    if mods:
        text += "加分项的块修改：" + " ".join(mods)
    return text
