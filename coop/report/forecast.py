"""Section 4's forecast of where zero-shot CLIP errs, checked against the records (section 7.5).

Section 4 names, before any run, the classes it expects the hand-written prompt to get wrong: a name with
two meanings (bass: the fish or the double bass), a misspelt name (water lilly, kept as CoOp keeps it) and
two classes that look alike (crayfish and lobster). :func:`forecast_sentence` reports, for each of them the
records have, zero-shot CLIP's accuracy with its rank among the classes and CoOp's at the largest shot
count, and for the pair how often each is taken for the other -- a description of single classes with few
test images each, not a test. The report's test checks that section 4's text names the same classes.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

AMBIGUOUS: Tuple[str, ...] = ("bass",)            # two meanings: a fish, a double bass
MISSPELT: Tuple[str, ...] = ("water_lilly",)      # the folder's spelling, kept as CoOp keeps it
ALIKE: Tuple[Tuple[str, str], ...] = (("crayfish", "lobster"),)
CLASSES: Tuple[str, ...] = (*AMBIGUOUS, *MISSPELT, *(c for pair in ALIKE for c in pair))


def mistaken(recs: Sequence[Dict[str, Any]]) -> Counter:
    """(true class, predicted class) -> test images, summed over the records' per-image predictions."""
    count: Counter = Counter()
    for r in recs:
        p, names = r.get("test_predictions") or {}, list(r.get("classnames") or [])
        for y, q in zip(p.get("label") or [], p.get("pred") or []):
            if y != q and names:
                count[(names[y], names[q])] += 1
    return count


def _test_images(rec: Dict[str, Any]) -> Counter:
    p, names = rec.get("test_predictions") or {}, list(rec.get("classnames") or [])
    return Counter(names[y] for y in p.get("label") or []) if names else Counter()


def below_median(zs: Dict[str, Any]) -> Optional[Tuple[List[str], List[str], float]]:
    """Section 8's prediction 2 as it is judged: the named classes the record has, those in the weaker half
    of all classes by zero-shot accuracy (fewer than half of the classes strictly below it: a tie at the
    bottom counts as weak, a tie at 100% does not), and the median; None when the record has none."""
    per = {c: float(a) for c, a in (zs.get("per_class_accuracy") or {}).items()}
    named = [c for c in CLASSES if c in per]
    if not named:
        return None
    weak = [c for c in named if sum(a < per[c] for a in per.values()) < len(per) / 2]
    return named, weak, float(np.median(list(per.values())))


def forecast_sentence(zs: Dict[str, Any], runs: List[Dict[str, Any]], kmax: int) -> str:
    """Section 7.5's check of section 4's forecast: each named class the records have, zero-shot's accuracy
    (its rank from the weakest) and CoOp's mean over ``runs`` (its ``kmax``-shot runs); then, per pair of
    look-alikes, zero-shot's and CoOp's confusions between the two. "" when the records have none of them."""
    per = {c: float(a) for c, a in (zs.get("per_class_accuracy") or {}).items()}
    named = [c for c in CLASSES if c in per]
    if not named:
        return ""
    n_test = _test_images(zs)
    why = {**{c: "名字有两种意思" for c in AMBIGUOUS}, **{c: "名字拼错" for c in MISSPELT},
           **{c: "外观相近" for pair in ALIKE for c in pair}}
    parts = []
    for c in named:
        rank = 1 + sum(a < per[c] for a in per.values())  # 1: the weakest
        tied = sum(a == per[c] for a in per.values()) - 1  # a rank inside a tie is said as the tie
        where = (f"与另 {tied} 类并列第 {rank} 低" if tied else f"第 {rank} 低")
        coop = [float(r["per_class_accuracy"][c]) for r in runs if c in (r.get("per_class_accuracy") or {})]
        parts.append(f"{c}（{why[c]}{f'，{n_test[c]} 张测试图' if n_test[c] else ''}）零样本 {per[c]:.1f}%，"
                     f"{len(per)} 类中{where}" + (f"，CoOp {kmax} shot {sum(coop) / len(coop):.1f}%" if coop else ""))
    out = "第 4 节预期零样本容易错的类：" + "；".join(parts) + "。"
    zs_err, coop_err = mistaken([zs]), mistaken(runs)
    for a, b in ALIKE:
        if a in per and b in per:
            out += (f"{a} 与 {b} 互相混淆：零样本 {a} → {b} {zs_err[(a, b)]} 张、{b} → {a} {zs_err[(b, a)]} 张；"
                    f"CoOp {kmax} shot（{len(runs)} 个种子合计）{coop_err[(a, b)]} 张、{coop_err[(b, a)]} 张。")
    return out + "（单个类、测试图少，只作对照，不作检验。）"
