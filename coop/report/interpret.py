"""Readings of the result records for the generated analysis (section 7.9) and take-away (7.10).

The tables of section 7 hold every interval and verdict; this module turns them into what they mean:
the zero-shot accuracy with its interval over the test images (Wilson), how CoOp's mean moves with the
shot count and whether the paired test sees each step, the order of the methods at the largest shot
count (and when it contradicts the published order), a reading of last-epoch training accuracy against
test accuracy, what a block modification changed, and which of the two interval bounds -- the paired
bootstrap over the test images or Student's t over the seeds -- decides a comparison (and so what would
tighten it). Every "higher/lower" is the paired test's (:func:`coop.report.comparisons.compare`);
nothing here uses a fixed threshold, and no number is typed in.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..runs.results import by_shots, shot_stats
from . import published
from .comparisons import compare, correctness, pairs
from .fmt import METHOD_ZH, _zh, interval, num, pairs_zh, zh  # noqa: F401  (METHOD_ZH, zh: re-exported)
from .readings import fit_discordant, pooled_fit, wilson, zeroshot_interval  # noqa: F401  (re-exported)
from .stats import sign_test_p, verdict

# (name, what it resamples, what is the main uncertainty when it is the wider or the lower one of the two)
SOURCE = {"bootstrap": ("配对自助法", "对测试图像与种子一起重采样", "测试图像的抽样"),
          "t": ("按种子的 t 区间", "只看种子之间的波动", "种子之间的波动")}
REMEDY_ZH = {"bootstrap": "更多测试图像",
             "t": "更多种子（`--seeds`）"}
# Published order at 1-4 shots (CoOp's paper, Zhou et al. IJCV 2022, and Tip-Adapter's, Zhang et al. ECCV 2022):
# the linear probe lies below these methods. A record set where it is above them by the test contradicts it.
PUBLISHED_BELOW = {"Linear probe CLIP": ("CoOp", "Tip-Adapter-F")}


def ks(keys: Sequence[int]) -> str:
    return "、".join(str(k) for k in keys)


def joined(values: Sequence[float], sign: bool = True) -> str:
    return "、".join(num(v, sign) for v in values)


def zeroshot_words(zs: Dict[str, Any]) -> str:
    """"零样本 CLIP 为 80.50%（2,000 张测试图像上的 95% Wilson 区间 [78.70, 82.19]，...）"."""
    acc, got = float(zs["accuracy"]), zeroshot_interval(zs)
    if not got:
        return f"零样本 CLIP 为 {acc:.2f}%"
    n, lo, hi = got
    return (f"零样本 CLIP 为 {acc:.2f}%（{n:,} 张测试图像上的 95% Wilson 区间 [{lo:.2f}, {hi:.2f}]：二项分布的得分区间，"
            "只计测试图像的抽样；零样本是一次确定性的运行，没有种子间的波动）")


def lower_from(res: Dict[str, Any]) -> str:
    """Which interval gives the union's lower bound: "t" (over the seeds) or "bootstrap" (over the test images)."""
    t = res.get("seed_t_ci")
    return "t" if t is not None and t[0] < res["ci_bootstrap"][0] else "bootstrap"


def wider(res: Dict[str, Any]) -> str:
    """Which of the two intervals is wider: what mostly sets how large a difference can be detected."""
    t, b = res.get("seed_t_ci"), res["ci_bootstrap"]
    return "t" if t is not None and t[1] - t[0] >= b[1] - b[0] else "bootstrap"


def half_width(res: Dict[str, Any]) -> float:
    return (res["ci"][1] - res["ci"][0]) / 2


def pairs_once(tests: Dict[int, Optional[Dict[str, Any]]]) -> str:
    """Over how many seed pairs: said once when every shot count has the same, else per shot count."""
    said = {k: pairs_zh(t) for k, t in tests.items() if t}
    if len(set(said.values())) <= 1:
        return next(iter(said.values()), "")
    return "；".join(f"{k} shot {p}" for k, p in said.items())


def trend_sentence(recs: List[Dict[str, Any]]) -> str:
    """Is CoOp's mean monotonic in the shot count? The observed step between consecutive shot counts
    (same seeds paired), its interval (in no table, so given here) and whether the test detects it."""
    stats, byk = shot_stats(recs), by_shots(recs)
    kk = list(stats)
    if len(kk) < 2:
        return ""
    steps = [(a, b, compare(list(byk[b].values()), list(byk[a].values()))) for a, b in zip(kk, kk[1:])]
    moves = [r["diff"] if r else stats[b]["mean"] - stats[a]["mean"] for a, b, r in steps]
    chain = " → ".join(f"{stats[k]['mean']:.2f}%" for k in kk)
    shape = ("随 shot 数单调上升" if all(m > 0 for m in moves) else "随 shot 数单调下降" if all(m < 0 for m in moves)
             else "不单调")
    words = {"higher": "检测到上升", "lower": "检测到下降", "no difference": "检测不到"}
    said = [f"{a}→{b} shot {num(r['diff'], True)} 个百分点（95% 置信区间 {interval(r['ci'])}，{pairs_zh(r)}），"
            f"{words[verdict(r)]}" if r else f"{a}→{b} shot 无法配对检验" for a, b, r in steps]
    out = (f"shot 数的趋势：CoOp 的种子平均 {'、'.join(f'{k}' for k in kk)} shot 依次为 {chain}，观测上{shape}。"
           f"相邻 shot 数的配对差（同一种子；这些区间不在表里）：" + "；".join(said) + "。")
    drops = [(a, b, r) for (a, b, r), m in zip(steps, moves) if m < 0 and r]
    for a, b, r in drops:
        if verdict(r) == "lower":
            out += (f"从 {a} 到 {b} shot 的下降被检验检测到：多给标注图像反而更差，与 CoOp 论文随 shot 数上升的曲线相反，"
                    f"值得检查（{b} shot 的学习率与步数、抽到的 few-shot 图像、代码错误）。")
        else:
            out += f"这些记录既不能说 {b} shot 比 {a} shot 差，也不能说更好。"
    ups = [(a, b) for (a, b, r) in steps if r and verdict(r) == "higher"]
    if not drops and len(ups) == len(steps):
        out += "每一步的提升都检测得到：多给标注图像，学到的上下文就更好。"
    elif not drops and ups:
        out += f"方向与 CoOp 论文的曲线一致，检测得到的只有 {'、'.join(f'{a}→{b}' for a, b in ups)} shot 这一步。"
    elif not drops:
        out += "方向与 CoOp 论文的曲线一致，但每一步都小到这些种子检测不到。"
    return out


FIT_SAID = {"over": "训练图像明显高于测试（测试准确率在训练图像准确率的 95% Wilson 区间以下），像是过拟合：上下文拟合了这几张训练图像的偶然特征",
            "under": "训练图像与测试相近（测试在训练图像准确率的 95% Wilson 区间之内），在同样的训练图像上上下文也没有显著胜过手写提示：这与训练不足相容，由第 8 节的加长训练检验判断",
            "neither": "训练图像与测试相近（测试在训练图像准确率的 95% Wilson 区间之内），而在同样的训练图像上上下文显著胜过手写提示：看不出过拟合或训练不足",
            "test_above": "测试高于训练图像（在训练图像准确率的 95% Wilson 区间以上），看不出过拟合"}


def fit_reading(recs: List[Dict[str, Any]]) -> Tuple[List[str], Dict[str, List[int]]]:
    """Over-fitting or under-training, read per shot count from the runs' own training images in the test view
    (``fit_view``, pooled over the seeds; the centre crop the test images are seen through): the test mean below
    the Wilson interval of the training-image accuracy reads as over-fitting ("over"); inside it, the trained
    model against zero-shot CLIP on the same images, paired (an exact sign test on the images only one of
    them gets right; records without per-image answers: zero-shot inside the interval): not significantly
    better reads as compatible with under-training ("under"), significantly better as neither. Returns the
    rows said and the shot counts of each reading (keys of :data:`FIT_SAID`)."""
    rows, groups = [], {}
    for k, runs in sorted(by_shots(recs).items()):
        pooled = pooled_fit(runs.values())
        if not pooled:
            continue
        train, zs_train, n = pooled
        test = sum(float(r["accuracy"]) for r in runs.values()) / len(runs)
        lo, hi = wilson(train * n / 100, n)
        paired = fit_discordant(runs.values())
        row = f"{k} shot 训练图像 {train:.2f}%（{n:,} 张，各种子合并）对测试 {test:.2f}%、零样本在同样的训练图像上 {zs_train:.2f}%"
        if paired:
            p = sign_test_p(*paired)
            row += f"（只有 CoOp 答对 {paired[0]} 张、只有零样本答对 {paired[1]} 张，符号检验 p = {p:.2g}）"
            better = paired[0] > paired[1] and p < 0.05
        else:
            better = zs_train < lo
        rows.append(row)
        key = "over" if test < lo else "test_above" if test > hi else "neither" if better else "under"
        groups.setdefault(key, []).append(k)
    return rows, groups


def fit_sentence(recs: List[Dict[str, Any]]) -> str:
    """Section 7.9's sentence of :func:`fit_reading`."""
    rows, groups = fit_reading(recs)
    if not rows:
        return ""
    return ("过拟合还是训练不足（读数，不是检验）：训练后的模型在自己的训练图像上的准确率（与测试图像同样的中心裁剪，与表中的一列相同）与测试"
            "准确率相比，" + "；".join(rows) + "。" + "；".join(f"{ks(v)} shot {FIT_SAID[g]}" for g, v in groups.items())
            + ("。" if "under" in groups else "。第 8 节给出区分两者的实验。"))  # "under" already points there


def trend_bullet(base: List[Dict[str, Any]]) -> str:
    """Section 7.10's line on the shot trend: a detected drop first, then an undetected one, then the rises."""
    byk = by_shots(base)
    kk = sorted(byk)
    steps = [(a, b, r) for a, b in zip(kk, kk[1:]) if (r := compare(list(byk[b].values()), list(byk[a].values())))]
    if not steps:
        return ""
    drops = [(a, b, r) for a, b, r in steps if r["diff"] < 0]
    seen = [(a, b, r) for a, b, r in steps if verdict(r) == "higher"]
    if any(verdict(r) == "lower" for _, _, r in drops):
        a, b, r = next(x for x in drops if verdict(x[2]) == "lower")
        return f"- 更多 shot 并不总是更好：{a}→{b} shot 检测到下降（{r['diff']:.2f} 个百分点），这与论文的曲线相反，解读前需要检查。"
    if drops:
        return ("- shot 数的趋势还看不清：" + (f"{'、'.join(f'{a}→{b}' for a, b, _ in seen)} shot 的提升检测得到，但" if seen else "")
                + "观测平均不单调（" + "、".join(f"{a}→{b} shot 降 {-r['diff']:.2f} 个百分点" for a, b, r in drops)
                + "），" + ("这次下降" if seen else "这些变化") + "检验检测不到，不能说更多 shot 反而更差。")
    if len(seen) == len(steps):
        return "- 标注图像越多越好：每一步增加 shot 的提升都检测得到。"
    return ("- 观测平均随 shot 数上升，方向与 CoOp 论文一致，但" +
            (f"检测得到的只有 {'、'.join(f'{a}→{b}' for a, b, _ in seen)} shot" if seen else "每一步都小到这些种子检测不到") + "。")


def baseline_bullet(base: List[Dict[str, Any]], baselines: Dict[str, List[Dict[str, Any]]]) -> str:
    """Section 7.10's line on the best baseline at the largest shot count, by its mean, against CoOp by the test."""
    kmax = max(int(r["shots"]) for r in base)
    means = {m: st[kmax]["mean"] for m, recs in baselines.items() if kmax in (st := shot_stats(recs))}
    if not means:
        return ""
    best = max(means, key=means.get)
    r = compare(list(by_shots(base)[kmax].values()), list(by_shots(baselines[best])[kmax].values()))
    said = {"lower": "，区间整体显示它高于 CoOp", "higher": "，但 CoOp 仍然高于它", "no difference": "，检验分不出它与 CoOp"}
    text = (f"- {kmax} shot 时最好的基线是{zh(best)}（{means[best]:.2f}%，CoOp {shot_stats(base)[kmax]['mean']:.2f}%）"
            + (said[verdict(r)] if r else "（无法配对检验）"))
    if r and verdict(r) == "lower" and "CoOp" in PUBLISHED_BELOW.get(best, ()):
        text += "——与已发表的顺序相反，解读前需要检查（第 7.9 节）"
    return text + "。"


def ranking_sentences(base: List[Dict[str, Any]], baselines: Dict[str, List[Dict[str, Any]]], table: str,
                      random_weights: bool) -> List[str]:
    """The order of the methods at CoOp's largest shot count, by the paired test, in one sentence; then, only
    when the records show it, a baseline above CoOp against the published order or by more than any gap
    the published runs show at that shot count."""
    if not base or not baselines:
        return []
    kmax, cb = max(int(r["shots"]) for r in base), by_shots(base)
    res = {m: compare(list(cb[kmax].values()), list(by_shots(recs).get(kmax, {}).values())) for m, recs in baselines.items()}
    got = {m: r for m, r in res.items() if r}
    if not got:
        return []
    above = [m for m, r in got.items() if verdict(r) == "lower"]
    below = [m for m, r in got.items() if verdict(r) == "higher"]
    level = [m for m, r in got.items() if verdict(r) == "no difference"]
    one = len({pairs_zh(r) for r in got.values()}) == 1
    name = (lambda m: _zh(m)) if one else (lambda m: f"{_zh(m)}（{pairs_zh(got[m])}）")
    parts = [f"{'、'.join(map(name, above))} 高于 CoOp（观测高出 {joined([-got[m]['diff'] for m in above], False)} 个百分点）"
             if above else "没有基线高于 CoOp"]
    parts += [f"{'、'.join(map(name, level))} 与 CoOp 分不出"] if level else []
    parts += [f"{'、'.join(map(name, below))} 低于 CoOp（观测低 {joined([got[m]['diff'] for m in below], False)} 个百分点）"] if below else []
    means = {m: shot_stats(baselines[m])[kmax]["mean"] for m in got}
    best = max(means, key=means.get)
    out = [f"{kmax} shot 时各方法的位置（配对检验，{pairs_zh(next(iter(got.values()))) if one else '种子对数见括号'}；区间见{table}）："
           + "，".join(parts) + f"。观测平均最高的基线是{zh(best)}（{means[best]:.2f}%）。"]
    for low, highs in PUBLISHED_BELOW.items():
        if low not in baselines:
            continue
        over = []
        for high in highs:
            hb = cb if high == "CoOp" else by_shots(baselines.get(high) or [])
            lb = by_shots(baselines[low])
            hit = [(k, r) for k in sorted(set(hb) & set(lb)) if (r := compare(list(lb[k].values()), list(hb[k].values())))
                   and verdict(r) == "higher"]
            if hit:
                where = "区间与比较表相同" if high == "CoOp" else "这些区间不在表里"
                rest = [k for k in sorted(set(hb) & set(lb)) if k not in {k for k, _ in hit}]
                over.append(f"在 {ks([k for k, _ in hit])} shot 时高于 {high}（观测高出 {joined([r['diff'] for _, r in hit], False)} 个百分点，"
                            f"95% 置信区间 {'、'.join(interval(r['ci']) for _, r in hit)}；{where}"
                            + (f"；{ks(rest)} shot 检测不到" if rest else "") + "）")
        if over:
            out.append(f"{_zh(low)} " + "，".join(over) + "：这与已发表的顺序相反——CoOp 与 Tip-Adapter 的论文在 1–4 shot 都报告 CoOp "
                       "与 Tip-Adapter-F 高于线性探测。解读之前需要检查：更多种子、学习率与训练步数（第 5.2 节）、代码错误。"
                       + ("（随机权重下文本塔也是随机的，基于提示的方法本来就可能不如线性探测；用真实权重时这一句才需要当真。）"
                          if random_weights else ""))
    if kmax in published.SHOTS and not random_weights:  # published gaps say nothing about random weights
        i = published.SHOTS.index(kmax)
        col = [row[i] for row in published.TABLE.values()]
        gap = max(col) - min(col)
        far = [m for m in above if -got[m]["ci"][1] > gap]
        if far:
            out.append(f"{'、'.join(map(_zh, far))} 在 {kmax} shot 高出 CoOp 的幅度，连区间中最小的可能值也超过已发表的 RN50 运行中同一 shot 数"
                       f"上各方法之间的最大差距（{gap:.2f} 个百分点）：这样大的差距在那里没有出现过，先检查（更多种子、学习率、代码错误）再下结论。")
    return out


def differing(a: Sequence[Dict[str, Any]], b: Sequence[Dict[str, Any]]) -> Optional[List[Tuple[int, int]]]:
    """Per seed pair: on how many test images the two runs predict differently, and on how many of those
    one is right and the other wrong; None without predictions."""
    counts = []
    for _, ra, rb in pairs(a, b):
        pa, pb = ra.get("test_predictions"), rb.get("test_predictions")
        if not pa or not pb:
            return None
        qa, qb, y = dict(zip(pa["index"], pa["pred"])), dict(zip(pb["index"], pb["pred"])), dict(zip(pa["index"], pa["label"]))
        moved = [i for i in set(qa) & set(qb) if int(qa[i]) != int(qb[i])]
        counts.append((len(moved), sum((int(qa[i]) == int(y[i])) != (int(qb[i]) == int(y[i])) for i in moved)))
    return counts or None


def bonus_evidence(method: str, mod: List[Dict[str, Any]], base: List[Dict[str, Any]], table: str) -> Tuple[str, List[int]]:
    """The paired difference per shot count as the main evidence of "accuracy kept", and the shot counts at
    which the modification's per-image predictions are CoOp's (it changed nothing there)."""
    bm, bb = by_shots(mod), by_shots(base)
    tests = {k: compare(list(bm[k].values()), list(bb[k].values())) for k in sorted(set(bm) & set(bb))}
    got = {k: t for k, t in tests.items() if t}
    if not got:
        return "", []
    same, right_same, moved = [], [], []
    for k in got:
        d = differing(list(bm[k].values()), list(bb[k].values()))
        if d is None:
            continue
        n, f = sum(x for x, _ in d), sum(y for _, y in d)
        (same if not n else right_same if not f else moved).append((k, n, f))
    text = (f"{method} 本身（未加把关）相对 CoOp 的配对差（同一 (shots, seed)；{pairs_once(got)}；区间见{table}）："
            + "、".join(f"{k} shot {num(t['diff'], True)}" for k, t in got.items()) + " 个百分点。")
    low = [k for k, t in got.items() if verdict(t) == "lower"]
    high = [k for k, t in got.items() if verdict(t) == "higher"]
    text += (f"{ks(low)} shot 检测到损失（区间整体在 0 以下）。" if low else "没有一个 shot 数检测到损失（区间都不整体在 0 以下）。")
    text += f"{ks(high)} shot 检测到提升。" if high else ""
    shown = sorted(same + right_same + moved)
    if shown:  # one sentence: how many test images each shot count moved, and how many of them changed right/wrong
        text += "预测与 CoOp 不同的测试图像（各对种子合计；括号内为其中对错不同的）：" + "、".join(
            f"{k} shot {n} 张（{f} 张）" for k, n, f in shown) + "。"
    if same or right_same:
        text += (f"{ks(sorted(k for k, _, _ in same + right_same))} shot 没有一张图的对错改变：修改在那里没有改变准确率，"
                 "那里的“没有损失”不说明修改有用。")
    missing = [k for k, t in tests.items() if not t] + sorted(set(bm) ^ set(bb))
    text += f"{ks(sorted(missing))} shot 无法配对比较。" if missing else ""
    return text, [k for k, _, _ in same]
