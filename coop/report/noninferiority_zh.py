"""The bonus's non-inferiority test in words (section 7.9): the pre-stated rule and each shot count's lower
bound (:func:`noninferiority_sentence`), which of the two bounds decides where it fails and how likely the
test was to pass with the seeds at hand (:func:`power_sentence`), and -- said once for every modification
-- what "cannot say non-inferior" does not mean (:data:`NOT_HARM`). The test is
:func:`coop.report.comparisons.noninferiority`; the chances are :func:`coop.report.stats.noninferiority_power`.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from .fmt import spaced
from .guard import chosen_counts, guarded_name
from .comparisons import noninferiority
from .interpret import REMEDY_ZH, SOURCE, joined, ks, lower_from
from .references import cite
from .stats import noninferiority_power, verdict


NOT_HARM = ("没有检测到损失的地方，“不能说非劣”只说明这些数据排除不了超过界的损失，不等于有害；"
            "更多种子或测试图像会收紧下界（附录 B）。")


def undetected_fail(mod: List[Dict[str, Any]], base: List[Dict[str, Any]]) -> bool:
    """Some shot count fails non-inferiority without a detected loss (what :data:`NOT_HARM` explains)."""
    ni = noninferiority(mod, base)
    return bool(ni) and any(v <= -ni["margin"] and verdict(ni["tests"][k]) != "lower" for k, v in ni["lower"].items())


def power_sentence(mod: List[Dict[str, Any]], base: List[Dict[str, Any]], again: bool = False) -> str:
    """Which bound decides at each shot count where the non-inferiority test fails (the bootstrap over the
    test images or the t over the seeds) and what would tighten it; how likely the test is to pass with
    the seeds at hand if the true difference were 0 and the seeds' differences spread as observed
    (``again``: a later modification's, the reasoning already said)."""
    ni = noninferiority(mod, base)
    if ni is None:
        return ""
    m, text = ni["margin"], ""
    failing = {k: v for k, v in ni["lower"].items() if v <= -m}
    src: Dict[str, List[int]] = {}
    for k in failing:
        src.setdefault(lower_from(ni["tests"][k]), []).append(k)
    other = {"bootstrap": ("t", "seed_t_ci", "按种子的 t 下界"), "t": ("bootstrap", "ci_bootstrap", "配对自助法的下界")}
    if failing:
        text += "决定结论的是哪个下界：" + "；".join(
            f"{ks(kk)} shot 的 {joined([failing[k] for k in kk])} 来自{SOURCE[s][0]}（{SOURCE[s][1]}；{other[s][2]}为 "
            f"{joined([ni['tests'][k][other[s][1]][0] for k in kk])}）" for s, kk in src.items()) + "。"
    sds = {k: (float(np.std(t["per_seed"], ddof=1)), len(t["per_seed"])) for k, t in ni["tests"].items()
           if len(t.get("per_seed") or []) >= 2}
    if sds:
        k, (sd, n) = max(sds.items(), key=lambda kv: kv[1][0])
        p = noninferiority_power(sd, n, m)
        text += (f"同样算出，它通过的概率约为 {100 * p:.0f}%（{k} shot 时种子间差值的样本标准差 {sd:.2f} 个百分点）。" if again else
                 f"这个检验在 {n} 对种子时通过的机会有多大：以 {k} shot 时种子间差值的样本标准差 {sd:.2f} 个百分点（各 shot 数中最大的；只有 {n} 对种子，它本身也很不确定）代入，若真实差为 0，"
                 f"一个 shot 数上按种子的 t 下界高于 -{m:.2f} 的概率约为 {100 * p:.0f}%（还要求配对自助法的下界也高于它、每个 shot 数都通过，实际更低）。")
    if failing:
        lost = [k for k in failing if verdict(ni["tests"][k]) == "lower"]
        n_img = max(int(ni["tests"][k].get("n_images") or 0) for k in failing)
        why = {"bootstrap": f"测试图像（{n_img:,} 张）不够多，要收紧它需要{REMEDY_ZH['bootstrap']}",
               "t": f"种子不够多，要收紧它需要{REMEDY_ZH['t']}"}
        why["both"] = f"测试图像（{n_img:,} 张）与种子都不够多（两个下界都低于界），要收紧需要{REMEDY_ZH['bootstrap']}和{REMEDY_ZH['t']}"
        causes: Dict[str, List[int]] = {}
        for k in failing:
            if k not in lost:
                t = ni["tests"][k]
                both = t["ci_bootstrap"][0] <= -m and t.get("seed_t_ci") is not None and t["seed_t_ci"][0] <= -m
                causes.setdefault("both" if both else lower_from(t), []).append(k)
        said = [f"在 {ks(kk)} shot 可能是{why[s]}" for s, kk in causes.items()]
        said += [f"在 {ks(lost)} shot 是因为检测到了损失（区间整体在 0 以下）"] if lost else []
        text += "所以这里“不能说非劣”，" + "；".join(said) + ("（也可能确有超过界的损失）" if set(failing) - set(lost) else "") + "。"
    return text


def noninferiority_sentence(method: str, mod: List[Dict[str, Any]], base: List[Dict[str, Any]], again: bool = False) -> str:
    """Section 9.4's test of "does not hurt accuracy": at every shot count the lower of the two 95%
    lower bounds (paired bootstrap; t over the seeds) lies above -margin. Bounds are printed with
    two decimals, so that a rounded number never seems to contradict the verdict."""
    ni = noninferiority(mod, base)
    if ni is None:
        return ""
    m = ni["margin"]
    rule = ("按同一个非劣效界：" if again else f"按第 9.4 节事先规定的非劣效界（-{m:.2f} 个百分点；下界取配对自助法与按种子的 t 区间中较低者；"
            f"Piaggio 等 {cite('piaggio')}）：")
    if ni["lower"]:
        rule += "各 shot 数的下界为 " + "、".join(f"{k} shot {v:+.2f}" for k, v in ni["lower"].items()) + "，"
    if ni["untested"]:
        return rule + (f"{'、'.join(map(str, ni['untested']))} shot 无法判断（缺少一方的运行、逐图预测，或可配对的种子"
                       f"少于 2 对），因此不能说 {spaced(method)}非劣于 CoOp。")
    if ni["noninferior"]:
        return rule + f"都高于 -{m:.2f}，可以说 {spaced(method)}非劣于 CoOp（以 95% 置信区间判断，损失不超过 {m:.2f} 个百分点）。"
    return rule + f"并非都高于 -{m:.2f}，因此不能说 {spaced(method)}非劣于 CoOp。"


def guard_sentence(method: str, g: List[Dict[str, Any]]) -> str:
    """How often section 9.1's optional guard let the modification answer, per shot count (``g``: the guarded
    method's records, :func:`coop.report.guard.guarded`); section 9.4's test is the modification's own."""
    counts = chosen_counts(g)
    if not counts:
        return f"{method} 的记录不能加第 9.1 节的把关（原因写在表下）。"
    rule = "另外，按第 9.1 节可选的验证集把关（修改在少样本验证集上显著更好才用它：单侧精确符号检验 p < 0.05）"
    used, runs = sum(m for m, _ in counts.values()), sum(n for _, n in counts.values())
    if not used:
        return (f"{rule}，{spaced(guarded_name(method))}在全部 {runs} 对 (shots, seed) 上都退回了 CoOp 的运行：验证集没有一次显著支持修改，"
                "把关后的方法就是 CoOp。")
    return (f"{rule}，{spaced(guarded_name(method))}用了修改的运行："
            + "、".join(f"{k} shot {m}/{n} 个种子" for k, (m, n) in counts.items())
            + f"（共 {used}/{runs}），其余退回 CoOp 的运行；把关后的方法的配对差见第 7.8 节的表。")
