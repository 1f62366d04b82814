"""The bonus's non-inferiority test in words (section 7.9): the pre-stated rule, the pooled lower bound and
each shot count's (:func:`noninferiority_sentence`), how likely the test was to pass with the runs at hand
and which bound decides where it fails (:func:`power_sentence`), and -- said once for every modification
-- what "cannot say non-inferior" does not mean (:data:`NOT_HARM`). The test is
:func:`coop.report.comparisons.noninferiority`; the chances are :func:`coop.report.stats.noninferiority_power`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .fmt import spaced
from .guard import chosen_counts, guarded_name
from .comparisons import noninferiority
from .references import cite
from .interpret import REMEDY_ZH, SOURCE, lower_from
from .stats import noninferiority_power


NOT_HARM = ("没有检测到损失的地方，“不能说非劣”只说明这些数据排除不了超过界的损失，不等于有害；"
            "更多种子或测试图像会收紧下界（附录 B）。")


def undetected_fail(mod: List[Dict[str, Any]], base: List[Dict[str, Any]], ni: Optional[Dict[str, Any]] = None) -> bool:
    """The test fails on its pooled bound with no shot count showing a loss (what :data:`NOT_HARM` explains);
    ``ni``: the test's result when the caller has it (it bootstraps), else computed."""
    ni = ni if ni is not None else noninferiority(mod, base)
    return bool(ni) and not ni["noninferior"] and not ni["losses"] and not ni["beyond"] and not ni["untested"]


def power_sentence(mod: List[Dict[str, Any]], base: List[Dict[str, Any]], again: bool = False,
                   ni: Optional[Dict[str, Any]] = None) -> str:
    """How likely the test is to pass with the runs at hand if the true difference were 0 and the pairs'
    differences spread as observed (``again``: a later modification's, the reasoning already said); where
    it fails on the pooled bound alone, which bound decides (the bootstrap over the test images or the t
    over the pairs) and what would tighten it."""
    ni = ni if ni is not None else noninferiority(mod, base)
    if ni is None or ni["pooled_lower"] is None:
        return ""
    m, pooled, text = ni["margin"], ni["pooled"], ""
    per = pooled.get("per_seed") or []
    if len(per) >= 2:
        sd, n = float(np.std(per, ddof=1)), len(per)
        p = noninferiority_power(sd, n, m)
        text += (f"同样算出，它通过的概率约为 {100 * p:.0f}%（种子平均的样本标准差 {sd:.2f} 个百分点）。" if again else
                 f"若真实差为 0、{n} 个种子的平均像观测的一样分散（样本标准差 {sd:.2f} 个百分点），这个检验通过的概率约为 "
                 f"{100 * p:.0f}%（只算 t 下界；自助法的下界也要过界，" +
                 ("这里它已低于界，实际的机会低得多）。" if pooled["ci_bootstrap"][0] <= -m else "实际略低）。"))
    if ni["pooled_lower"] <= -m and not ni["losses"] and not ni["beyond"] and not ni["untested"]:
        s, n_img = lower_from(pooled), int(pooled.get("n_images") or 0)
        why = {"bootstrap": f"测试图像（{n_img:,} 张）不够多，要收紧它需要{REMEDY_ZH['bootstrap']}",
               "t": f"运行之间的差异太大，要收紧它需要{REMEDY_ZH['t']}"}
        if pooled["ci_bootstrap"][0] <= -m and pooled["seed_t_ci"][0] <= -m:
            why[s] = (f"测试图像（{n_img:,} 张）不够多、运行之间的差异也太大（两个下界都低于界），"
                      f"要收紧需要{REMEDY_ZH['bootstrap']}和{REMEDY_ZH['t']}")
        text += (f"合并的下界 {ni['pooled_lower']:+.2f} 来自{SOURCE[s][0]}（{SOURCE[s][1]}；另一个下界为 "
                 f"{pooled['seed_t_ci' if s == 'bootstrap' else 'ci_bootstrap'][0]:+.2f}），所以这里“不能说非劣”可能是{why[s]}"
                 "（也可能确有超过界的损失）。")
    return text


def noninferiority_sentence(method: str, mod: List[Dict[str, Any]], base: List[Dict[str, Any]], again: bool = False,
                            ni: Optional[Dict[str, Any]] = None) -> str:
    """Section 9.4's test of "does not hurt accuracy": the lower of the two 95% lower bounds (paired
    bootstrap; t over the seeds) of the difference, each seed's averaged over the shot counts, lies above
    -margin, and no shot count alone shows a loss or an observed loss beyond the margin. Bounds are printed
    with two decimals, so that a rounded number never seems to contradict the verdict."""
    ni = ni if ni is not None else noninferiority(mod, base)
    if ni is None:
        return ""
    m = ni["margin"]
    rule = ("按同一个非劣效检验：" if again else f"按第 9.4 节事先规定的非劣效检验（Piaggio 等 {cite('piaggio')}；各种子先在各 shot 数上平均，界 -{m:.2f} 个百分点）：")
    if ni["untested"]:
        return rule + (f"{'、'.join(map(str, ni['untested']))} shot 无法判断（缺少一方的运行、逐图预测，或可配对的种子"
                       f"少于 2 对），因此不能说 {spaced(method)}非劣于 CoOp。")
    if ni["pooled_lower"] is None:
        return rule + f"各 shot 数共同的种子少于 2 个，无法判断，因此不能说 {spaced(method)}非劣于 CoOp。"
    pooled = ni["pooled"]
    rule += (f"{len(pooled['seeds'])} 个种子（各自在 {len(pooled['shots'])} 个 shot 数上平均）的下界为 {ni['pooled_lower']:+.2f}"
             f"（各 shot 数单独为 " + "、".join(f"{k} shot {v:+.2f}" for k, v in ni["lower"].items()) + "），")
    if ni["losses"]:
        return rule + f"而 {'、'.join(map(str, ni['losses']))} shot 单独检测到损失，因此不能说 {spaced(method)}非劣于 CoOp。"
    if ni["beyond"]:
        worst = "、".join(f"{k} shot {ni['tests'][k]['diff']:+.2f}" for k in ni["beyond"])
        return rule + f"而观测的平均差 {worst} 已超过界，因此不能说 {spaced(method)}非劣于 CoOp。"
    if ni["noninferior"]:
        return rule + (f"高于 -{m:.2f}，且没有一个 shot 数检测到损失，可以说 {spaced(method)}非劣于 CoOp"
                       f"（以 95% 置信区间判断，平均损失不超过 {m:.2f} 个百分点）。")
    return rule + f"不高于 -{m:.2f}，因此不能说 {spaced(method)}非劣于 CoOp。"


def guard_sentence(method: str, g: List[Dict[str, Any]]) -> str:
    """How often section 9.1's optional guard let the modification answer, per shot count (``g``: the guarded
    method's records, :func:`coop.report.guard.guarded`); section 9.4's test is the modification's own."""
    counts = chosen_counts(g)
    if not counts:
        return f"{method} 的记录不能加附录 B 的把关（原因写在表下）。"
    rule = "另外，按附录 B 可选的验证集把关"
    used, runs = sum(m for m, _ in counts.values()), sum(n for _, n in counts.values())
    if not used:
        return (f"{rule}，{spaced(guarded_name(method))}在全部 {runs} 对 (shots, seed) 上都退回了 CoOp 的运行：验证集没有一次显著支持修改，"
                "把关后的方法就是 CoOp。")
    return (f"{rule}，{spaced(guarded_name(method))}用了修改的运行："
            + "、".join(f"{k} shot {m}/{n} 个种子" for k, (m, n) in counts.items())
            + f"（共 {used}/{runs}），其余退回 CoOp 的运行；把关后的方法的配对差见第 7.8 节的表。")
