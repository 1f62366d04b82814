"""Section 10's generated sentence: what the run records say, in one paragraph (or, before any record,
what is still to run). Every "higher/lower" is decided by the report's paired test
(:func:`coop.report.comparisons.compare`), as in section 7; no interval is repeated here.

    lines = conclusion(load_results("results"))   # Markdown for between the conclusion markers
"""
from __future__ import annotations

from typing import Any, Dict, List

from ..runs.results import any_random, by_shots, shot_stats
from .analysis import zh
from .comparisons import compare
from .fmt import verdict_words
from .health import all_at_chance
from .stats import verdict

BEGIN, END = "<!-- conclusion:begin -->", "<!-- conclusion:end -->"
ABSTRACT_BEGIN, ABSTRACT_END = "<!-- abstract-status:begin -->", "<!-- abstract-status:end -->"
ABSTRACT_STATUS = ("本稿还没有用真实权重运行，没有 CLIP 或 CoOp 的准确率：第 7 节列出已经运行的内容（演示与真实尺寸的代价测量）"
                   "和可以对照的已发表数字，第 8 节是运行之前写下的预测与检验办法。")
ABSTRACT_RESULTS = ("第 7 节的数字、图与逐项的统计判断由代码从运行记录算出（避免手抄出错），并说明它们依据的是哪些运行；"
                    "第 8 节把它们与运行之前写下的预期对照。")
STATUS = ("**结果：** 尚未用真实权重运行，还没有准确率可下结论（第 7 节）。已经完成的是上面的实现与它们对官方代码的精确性检验、"
          "演示，以及真实尺寸的代价测量（附录 C）。")


def _best_baseline(loaded: Dict[str, Any], k: int) -> str:
    """", 4 shot 时平均最高的基线是 X（y%）" from the baselines' records at ``k`` shots, if any."""
    means = {m: st[k]["mean"] for m, recs in (loaded.get("baselines") or {}).items()
             if k in (st := shot_stats(recs))}
    if not means:
        return ""
    best = max(means, key=means.get)
    return f"；{k} shot 时平均最高的基线是{zh(best)}（{means[best]:.2f}%，与 CoOp 的比较见第 7 节）"


def abstract_status(loaded: Dict[str, Any]) -> str:
    """The abstract's last sentence: what section 7 holds (the status before any record)."""
    return ABSTRACT_RESULTS if loaded.get("zeroshot") and (loaded.get("coop") or {}).get("CoOp") else ABSTRACT_STATUS


def conclusion(loaded: Dict[str, Any]) -> List[str]:
    """One paragraph: zero-shot, CoOp's seed means per shot count and each one's verdict against zero-shot."""
    zs, base = loaded.get("zeroshot"), (loaded.get("coop") or {}).get("CoOp") or []
    if not (zs and base):
        return [STATUS]
    stats = shot_stats(base)
    parts = []
    for k, runs in sorted(by_shots(base).items()):
        res = compare(list(runs.values()), [zs])
        said = (f"，{'与' if verdict(res) == 'no difference' else '比'}零样本{verdict_words(res, pairs=False)}"
                if res else "")
        parts.append(f"{k} shot {stats[k]['mean']:.2f}%{said}")
    rw = any_random(loaded)
    head = ("**结果（随机权重：以下数字不是准确率，只说明这句结论如何生成）：**" if rw else "**结果：**")
    return [f"{head} 零样本 CLIP 为 {float(zs['accuracy']):.2f}%；学到的上下文（CoOp，{len(by_shots(base)[max(stats)])} 个种子"
            f"的平均）在 {'；'.join(parts)}{_best_baseline(loaded, max(stats))}。"
            + ("但 CoOp 及其变体的所有运行，训练损失都停在 ln C 附近：看不出它们从标注图像学到了超出均匀猜测的东西，这些数字描述的是噪声（第 7.9 节）。"
               if all_at_chance(loaded.get("coop") or {}) else "")]
