"""Section 8's check of its own expectations against the run records.

Section 8 says, before any run, how far CoOp should be from zero-shot CLIP on Caltech101 (:data:`EXPECTED`,
CoOp − zero-shot in points at 1 and 4 shots) and names two explanations should it fall short
(over-fitting, under-training). :func:`expectations` answers it from the records: where each observed
difference falls against its range and what its 95% interval allows, and which explanation the
last-epoch training accuracy points to (:func:`coop.report.interpret.fit_reading`, the reading of
section 7.9). Every number comes from the records; before any record the block says when the
expectations were written.

    lines = expectations(load_results("results"))   # Markdown for between the expectations markers
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..runs.results import LONGER, any_random, by_shots, longer_name, variant_of
from .comparisons import compare, noninferiority_tests
from .fmt import interval, num, pairs_zh
from .interpret import fit_reading, ks
from .health import all_at_chance
from .readings import fit_paired, pooled_fit
from .stats import sign_test_p, verdict

BEGIN, END = "<!-- expectations:begin -->", "<!-- expectations:end -->"
# CoOp − zero-shot CLIP in points, as section 8 states it before any run (its text is checked against these).
EXPECTED: Dict[int, Tuple[float, float]] = {1: (-1.0, 3.0), 2: (0.0, 4.0), 4: (2.0, 5.0)}
STATUS = "以上的预期与两种解释都写于任何运行之前，有了结果也不改动。"
FIT_SHORT = {"over": "像是过拟合", "under": "与训练不足相容（由下面的加长训练检验判断）", "neither": "看不出过拟合或训练不足",
             "test_above": "测试高于训练图像，看不出过拟合"}


def expected_words(k: int) -> str:
    """"与零样本之差在 −1 到 +3 个百分点之间" / "比零样本高 2–5 个百分点": the range of :data:`EXPECTED` in words."""
    lo, hi = EXPECTED[k]
    if lo == -hi:
        return f"与零样本相差在 ±{hi:g} 个百分点之内"
    return f"比零样本高 {lo:g}–{hi:g} 个百分点" if lo >= 0 else f"与零样本之差在 {lo:+g} 到 {hi:+g} 个百分点之间".replace("-", "−")


def _against(diff: float, ci: Tuple[float, float], lo: float, hi: float) -> str:
    """Where an observed difference and its interval fall against the expected range [lo, hi]."""
    where = "在预期之内" if lo <= diff <= hi else "高于预期" if diff > hi else "低于预期"
    if ci[0] > hi:
        allows = "区间整体在预期范围之上：比预期好"
    elif ci[1] < lo:
        allows = "区间整体在预期范围之下：与预期不符，见下面的两种解释"
    elif ci[0] <= lo and ci[1] >= hi:
        allows = "区间覆盖整个预期范围：这些数据还分不出预期范围内外"
    else:
        allows = "区间与预期范围重叠：与预期相容"
    return f"观测值{where}" + ("" if lo <= diff <= hi else "（按第 8 节的规则记为“不符”）") + f"；{allows}"


def zeroshot_line(zs: Dict[str, Any]) -> str:
    """Our zero-shot accuracy beside the published one (Tip-Adapter's run of CLIP RN50, CoOp's split)."""
    from .published import TABLE
    from .readings import zeroshot_interval

    ref = next(iter(v[0] for m, v in TABLE.items() if m.startswith("Zero-shot")), None)
    if ref is None:
        return ""
    acc, got = float(zs["accuracy"]), zeroshot_interval(zs)
    ci = f"（95% Wilson 区间 [{got[1]:.2f}, {got[2]:.2f}]）" if got else ""
    return (f"- 零样本 CLIP：本项目 {acc:.2f}%{ci}，已发表的 {ref:.2f}%（Tip-Adapter 的运行记录，CoOp 的划分）：差 "
            f"{num(acc - ref, True)} 个百分点；划分与精度不同（第 6 节、附录 A），只宜粗略对照。")


def weakest_line(zs: Dict[str, Any], n: int = 10) -> str:
    """Section 4's forecast that zero-shot errs on rare names: how many of its ``n`` weakest classes have a
    name BPE splits (section 9.1's group), against that group's share of all classes -- a description."""
    from .sections import rare_name_classes

    per = sorted((float(a), c) for c, a in (zs.get("per_class_accuracy") or {}).items())
    if len(per) < 2 * n:
        return ""
    split = set(rare_name_classes([c for _, c in per]))
    weak = [c for _, c in per[:n]]
    hit = [c for c in weak if c in split]
    return (f"- 第 4 节的预期（名字少见的类更容易错）：零样本最弱的 {n} 类中有 {len(hit)} 类的名字含被 BPE 切开的词"
            + (f"（{'、'.join(hit)}）" if hit else "") + f"，这样的类在全部 {len(per)} 类中占 {len(split)} 类"
            f"（{100 * len(split) / len(per):.0f}%）；只是描述，类内测试图像少，不作检验。")


def shot_lines(zs: Dict[str, Any], base: List[Dict[str, Any]]) -> List[str]:
    """One bullet per shot count of :data:`EXPECTED` that the records have and can pair."""
    out = []
    runs = by_shots(base)
    for k, (lo, hi) in sorted(EXPECTED.items()):
        res = compare(list(runs[k].values()), [zs]) if k in runs else None
        if res is None:
            continue
        out.append(f"- {k} shot：预期 CoOp {expected_words(k)}；观测 CoOp − 零样本 {num(res['diff'], True)} 个百分点"
                   f"（95% 置信区间 {interval(res['ci'])}，{pairs_zh(res)}），{_against(res['diff'], res['ci'], lo, hi)}。")
    return out


def fit_line(base: List[Dict[str, Any]], ran_longer: bool) -> str:
    """Which explanation the accuracy on the training images points to, per shot count (a reading, not a test)."""
    _, groups = fit_reading(base)
    if not groups:
        return ""
    said = "，".join(f"{ks(v)} shot {FIT_SHORT[g]}" for g, v in groups.items())
    return (f"- 过拟合还是训练不足：训练图像上与测试图像上的准确率（第 7.9 节的读数，不是检验）：{said}。"
            + ("" if ran_longer else "这些记录里没有加长训练的运行（`run_all.sh --no-longer`），区分两者的检验没有做。"))


LONGER_SAID = {"higher": "多训练检测到提升，支持“训练不足”",
               "no difference": "多训练没有检测到提升：这些记录不支持“训练不足”，但区间之内的提升也排除不了",
               "lower": "多训练反而检测到下降，指向过拟合：训练越久，上下文越偏离手写提示的泛化"}


def longer_line(loaded: Dict[str, Any], base: List[Dict[str, Any]]) -> str:
    """Section 8's check of under-training, from the sweep's coop_longer/ runs: the same images and seeds
    with twice the epochs, paired with the default runs."""
    longer = [r for rs in (loaded.get("coop") or {}).values() for r in rs if variant_of(r) == LONGER]
    if not longer:
        return ""
    k = min(int(r["shots"]) for r in longer)
    mine = [r for r in longer if int(r["shots"]) == k]
    theirs = list(by_shots(base).get(k, {}).values())
    res = compare(mine, theirs) if theirs else None
    e_long = int(mine[0]["config"]["epochs"])
    e_base = sorted({int((r.get("config") or {}).get("epochs") or 0) for r in theirs})
    head = (f"- 加长训练的检验：{k} shot 训练 {e_long} 个 epoch（表 7.1 的 {longer_name(e_long)}）相对同一 shot 数的其余运行"
            f"（{'/'.join(map(str, e_base))} 个 epoch）")
    if res is None:
        return head + "，无法配对检验（缺少默认的运行或逐图预测）。"
    seen = (pooled_fit(mine), pooled_fit(theirs))  # on their own training images: did the longer run fit them better?
    fitted = _fitted(seen, fit_paired(mine, theirs)) if all(seen) else ""
    under = k in fit_reading(theirs)[1].get("under", [])  # the reading above said "consistent with under-training"
    said = LONGER_SAID[verdict(res)] + ("（上一条的读数只是相容，以这个检验为准）" if under and verdict(res) != "higher" else "")
    if all_at_chance({"longer": mine, "default": theirs}):  # neither fitted anything: the check cannot tell
        said = ("但两组运行的训练损失都停在 ln C 附近（第 7.9 节）：模型连训练图像都没有拟合，加长一倍分不开训练不足与其他原因"
                "（学习率、logit 缩放、权重或数据），这个检验在这里没有结论")
    return (head + f"，同一图像与种子配对：差 {num(res['diff'], True)} 个百分点（95% 置信区间 {interval(res['ci'])}，"
            f"{pairs_zh(res)}），{fitted}{said}。")


def _fitted(seen, paired) -> str:
    """How the longer runs fit their own training images against the default runs: the accuracies, and with
    per-image answers the paired sign test that alone may call one lower (a few images are noise)."""
    text = f"在自己的训练图像上（测试视图）加长 {seen[0][0]:.2f}%、默认 {seen[1][0]:.2f}%"
    if paired is None:
        return text + "（没有逐图的记录，不作检验）；"
    p = sign_test_p(*paired)
    counts = f"只有加长答对 {paired[0]} 张、只有默认答对 {paired[1]} 张，精确符号检验 p = {p:.3g}"
    if p >= 0.05:
        return text + f"，分不出（{counts}）；"
    if paired[0] < paired[1]:
        return text + (f"，加长反而更低（{counts}）：多训练连训练图像都没有拟合得更好，既不像训练不足也不像过拟合，"
                       "解读前需要检查学习率与训练步数；")
    return text + f"，加长拟合得更好（{counts}）；"


def later_lines(loaded: Dict[str, Any], zs: Dict[str, Any], base: List[Dict[str, Any]],
                tests: Optional[Dict[str, Any]] = None) -> List[str]:
    """Predictions 2 and 4 of section 8, closed where the records allow: which section checks them and, for
    the block modifications, the non-inferiority verdict (the reasons are said where it is decided)."""
    from .forecast import CLASSES, below_median, forecast_sentence

    out = []
    kmax = max(int(r["shots"]) for r in base)
    judged = below_median(zs)
    if judged and forecast_sentence(zs, list(by_shots(base)[kmax].values()), kmax):
        named, below, median = judged
        floor = min(float(a) for a in zs["per_class_accuracy"].values())
        if len(named) < len(CLASSES) or median == floor:  # classes missing, or half the classes tie at the bottom
            why = (f"记录里只有 {len(named)} 个（{'、'.join(named)}）" if len(named) < len(CLASSES) else
                   f"至少一半的类并列最低（{floor:.1f}%），“较弱的一半”没有意义")
            out.append(f"- 预测 2（零样本容易错的类）：无法检验，{why}；逐类的数字在第 7.5 节。")
        else:
            held = "成立" if len(below) == len(named) else "不成立"
            out.append(f"- 预测 2（零样本容易错的类）：{len(named)} 个中 {len(below)} 个在零样本准确率较弱的一半（中位数 {median:.1f}%）"
                       f"（{'、'.join(below) or '没有'}），预测{held}；逐类的数字在第 7.5 节（单个类、测试图少，只作对照，不作检验）。")
    said = []
    for m, ni in sorted((tests if tests is not None else noninferiority_tests(loaded)).items()):
        if ni is not None:
            said.append(f"{m} {'可以说' if ni['noninferior'] else '不能说'}非劣于 CoOp")
    if said:
        out.append("- 预测 4（块修改）：" + "，".join(said) + "（判断与原因在第 7.9 节；含切分词的类名的检验在第 7.8 节）。")
    return out


def steps_of(rec: Dict[str, Any]) -> Optional[int]:
    """The SGD steps a record's training took: epochs x batches per epoch over its few-shot images (the
    incomplete last batch dropped when a full one exists, as the training loop does); None if unknown."""
    from ..methods.train_config import steps_per_epoch

    cfg = rec.get("config") or {}
    n, epochs, batch = len(rec.get("fewshot_train") or []), cfg.get("epochs"), cfg.get("batch_size")
    if not (n and epochs and batch):
        return None
    return int(epochs) * steps_per_epoch(n, int(batch))


def settings_line(base: List[Dict[str, Any]]) -> str:
    """When the records did not train with CoOp's epochs (section 5.2's budget), say so with the steps they
    took: the expectations and the explanations above assume CoOp's."""
    from ..methods.train_config import coop_epochs

    other = {}
    for k, runs in sorted(by_shots(base).items()):
        got = sorted({int((r.get("config") or {}).get("epochs") or coop_epochs(k)) for r in runs.values()})
        if got != [coop_epochs(k)]:
            steps = sorted({s for s in (steps_of(r) for r in runs.values()) if s})
            other[k] = (got, steps)
    if not other:
        return ""
    said = "、".join(f"{k} shot {'/'.join(map(str, v))} 个 epoch" + (f"、共 {'/'.join(map(str, s))} 步" if s else "")
                    + f"（CoOp 默认 {coop_epochs(k)} 个 epoch）" for k, (v, s) in other.items())
    return (f"- 注意：这些记录的训练预算不是第 5.2 节的默认：{said}。上面的预期与两种解释都按默认的预算写成"
            "（第 5.2 节的步数与 1 shot 对 4 shot 的比例在这里不成立）。")


def expectations(loaded: Dict[str, Any], tests: Optional[Dict[str, Any]] = None) -> List[str]:
    """Section 8's "against the records" lines, or :data:`STATUS` when there is nothing to check (``tests``:
    the rendering's :func:`coop.report.comparisons.noninferiority_tests`, computed here when not given)."""
    zs, base = loaded.get("zeroshot"), (loaded.get("coop") or {}).get("CoOp") or []
    if not (zs and base):
        return [STATUS]
    lines = [x for x in [zeroshot_line(zs), weakest_line(zs)] if x] + shot_lines(zs, base)
    longer = longer_line(loaded, base)
    fit = fit_line(base, bool(longer))
    lines += [x for x in (fit, longer) if x]
    lines += later_lines(loaded, zs, base, tests)
    budget = settings_line(base)
    lines += [budget] if budget and lines else []
    if not lines:
        return [STATUS]
    head = ("**与记录对照**（随机权重：下面的数字不是准确率，预期也只对真实的 CLIP 与 Caltech101 成立；这里只演示对照如何生成）。"
            if any_random(loaded) else "**与记录对照**（这些预期写于任何运行之前；区间与判断的方法见附录 B）。")
    return [head, ""] + lines
