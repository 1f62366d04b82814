"""Did training learn anything? Checks the generated analysis makes before it interprets a number.

A trend, a ranking or a non-inferiority verdict read from runs that learned nothing describes noise. Three
symptoms are looked for in the records, each a plain count, said before the interpretation (section 7.9):

- **loss at chance**: a run whose last-epoch training loss is still about ln C -- the cross-entropy of a
  uniform guess over C classes (with CLIP's weights, s = 100, a classifier that learned its few images ends
  far below it);
- **collapse**: a run (or zero-shot CLIP under any of its prompt sets) that gives one class to at least half of the test images (with at
  least two test images per class);
- **same as zero-shot**: a method whose per-image test predictions equal zero-shot CLIP's in some runs --
  there it added nothing to the hand-written prompt (e.g. Tip-Adapter choosing a tiny weight alpha for its cache).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

from .readings import zeroshot_interval

CHANCE_SHARE = 0.95  # a last-epoch loss at or above this share of ln C counts as "at chance"
COLLAPSE_SHARE = 0.5  # one predicted class on at least this share of the test images counts as collapse
PROMPTS_ZH = {"single": "单一模板", "ensemble": "提示集成"}  # zero-shot's prompt sets (``--templates``) in the report's words


def n_classes(rec: Dict[str, Any]) -> int:
    """How many classes a record scored (its ``n_classes``, else its class names; 0 if neither)."""
    return int(rec.get("n_classes") or len(rec.get("classnames") or []))


def at_chance(rec: Dict[str, Any]) -> Optional[bool]:
    """Whether a trained run's last-epoch loss is still about ln C; None without a loss history or C."""
    loss = ((rec.get("history") or {}).get("loss") or [None])[-1]
    n = n_classes(rec)
    if loss is None or not n or n < 2:
        return None
    return float(loss) >= CHANCE_SHARE * math.log(n)


def top_share(rec: Dict[str, Any]) -> Optional[Tuple[str, float]]:
    """The class predicted most often on the test images and its share of them; None without predictions."""
    pred = (rec.get("test_predictions") or {}).get("pred")
    if not pred:
        return None
    c, n = Counter(int(p) for p in pred).most_common(1)[0]
    names = rec.get("classnames") or []
    return (names[c] if c < len(names) else str(c)), n / len(pred)


def enough(rec: Dict[str, Any]) -> bool:
    """At least two test images per class: fewer, and one class's share says nothing about collapse."""
    n = n_classes(rec)
    return bool(n) and len((rec.get("test_predictions") or {}).get("pred") or []) >= 2 * n


def same_as_zeroshot(runs: List[Dict[str, Any]], zs: Dict[str, Any]) -> int:
    """How many of ``runs`` give every test image the class zero-shot CLIP gives it."""
    ref = (zs.get("test_predictions") or {})
    if not ref.get("pred"):
        return 0
    key = dict(zip(ref["index"], ref["pred"]))
    n = 0
    for r in runs:
        p = r.get("test_predictions") or {}
        n += bool(p.get("pred")) and len(p["pred"]) == len(key) and all(key.get(i) == q for i, q in zip(p["index"], p["pred"]))
    return n


def chance_level(zs: Dict[str, Any]) -> bool:
    """Zero-shot CLIP's accuracy cannot be told from a uniform guess: its Wilson interval holds 1/C."""
    n = n_classes(zs)
    got = zeroshot_interval(zs) if n and n >= 2 and zs.get("accuracy") is not None else None
    return bool(got) and got[1] <= 100.0 / n <= got[2]


def all_at_chance(coop: Dict[str, List[Dict[str, Any]]]) -> bool:
    """Every trained run with a loss history ended at chance (and there is at least one)."""
    seen = [at_chance(r) for rs in coop.values() for r in rs]
    seen = [s for s in seen if s is not None]
    return bool(seen) and all(seen)


STUCK_TAKEAWAY = ("看不出 CoOp 学到了东西：CoOp 及其变体的所有运行，训练损失都停在 ln C 附近（第 7.9 节），关于它们的几条描述的是噪声，"
                  "不宜解读；基线是另一回事，各自看它们的区间。")


def health_sentences(zs: Optional[Dict[str, Any]], coop: Dict[str, List[Dict[str, Any]]],
                     baselines: Dict[str, List[Dict[str, Any]]],
                     prompts: Optional[Dict[str, Dict[str, Any]]] = None) -> List[str]:
    """The checks in words: a warning per symptom found (and what it means for the rest), or one line
    saying none was found. ``prompts``: zero-shot CLIP's records under other prompt sets (e.g. the ensemble),
    checked for collapse beside ``zs``."""
    out: List[str] = []
    trained = {m: [r for r in rs if at_chance(r) is not None] for m, rs in coop.items()}
    stuck = {m: sum(bool(at_chance(r)) for r in rs) for m, rs in trained.items() if rs}
    if any(stuck.values()):
        said = "、".join(f"{m} {n}/{len(trained[m])} 次" for m, n in stuck.items() if n)
        every = all(n == len(trained[m]) for m, n in stuck.items())
        out.append(f"训练损失停在 ln C（对 C 个类均匀猜测的交叉熵）附近的运行：{said}。看不出这些运行从标注图像学到了超出均匀猜测的东西"
                   + ("；CoOp 及其变体的所有运行都是这样，下面关于它们的趋势、排序与非劣效判断描述的是噪声，不宜解读，"
                      "先查训练步数、学习率、logit 缩放与文本侧（基线不在此列，各自看它们的区间）。" if every else
                      "，涉及它们的比较不宜解读。"))
    if zs and chance_level(zs):
        n = n_classes(zs)
        out.append(f"零样本 CLIP 的 {float(zs['accuracy']):.2f}% 与随机猜测（1/C = {100 / n:.2f}%）分不出（它的 95% Wilson 区间含 1/C）："
                   "文本特征没有把类分开，下面的提升都从随机猜测的水平算起。")
    collapsed = []
    zeros = [("零样本 CLIP", [zs] if zs else [])] + [(f"零样本 CLIP（{PROMPTS_ZH.get(t, t)}）", [r]) for t, r in (prompts or {}).items()
                                                   if r is not zs and r.get("test_predictions") != (zs or {}).get("test_predictions")]
    for name, rs in zeros + list(coop.items()) + list(baselines.items()):
        hits = [(r, s) for r in rs for s in [top_share(r)] if s and s[1] >= COLLAPSE_SHARE and enough(r)]
        if hits:
            cls, share = max((s for _, s in hits), key=lambda s: s[1])
            collapsed.append(f"{name}（{len(hits)}/{len(rs)} 次，最多 {100 * share:.1f}% 的测试图像判为 {cls}）")
    if collapsed:
        out.append("预测塌缩（一个类拿走至少一半的测试图像）：" + "；".join(collapsed)
                   + "。塌缩时，被偏爱的那个类的准确率高只是因为它被预测得多，逐类的“全对”不说明什么。")
    if zs:
        same = [(m, n, len(rs)) for m, rs in list(coop.items()) + list(baselines.items()) for n in [same_as_zeroshot(rs, zs)] if n]
        if same:
            out.append("逐图预测与零样本 CLIP 完全相同的运行：" + "、".join(f"{m} {n}/{k} 次" for m, n, k in same)
                       + "。在这些运行里，方法没有改变手写提示的任何一个答案，它们与零样本的“分不出”不是独立的证据。")
    if not out and any(trained.values()):
        out.append("训练是否学到了东西：每次运行的训练损失都降到 ln C 以下，没有预测塌缩"
                   + ("，也没有与零样本逐图相同的运行。" if zs else "。"))
    return out
