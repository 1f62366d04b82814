"""The report's comparison sections: CoOp against the baselines and the published numbers, the
zero-shot prompt wordings, the per-class changes (said once, in section 7.5) and section 9.1's group
test -- each difference with its paired 95% interval (:mod:`coop.report.comparisons`), written in
:mod:`coop.report.fmt`'s one format."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..runs.results import any_random, by_shots, modified_methods, shot_stats
from . import published
from .comparisons import MIN_CLASSES, compare, compare_classes, compare_group, identical_runs
from .forecast import forecast_sentence, mistaken
from .fmt import VERDICT_VS_COOP, VERDICT_ZH, _zh, ci_column, f2, interval, num as fmt_num, pairs_zh
from .health import COLLAPSE_SHARE, enough, top_share
from .numbering import Numbering
from .class_stats import sign_test_min_n
from .search_notes import HYPER_NAMES, SEARCH_KEYS, search_notes
from .stats import sign_test_p, verdict


# section 9.1's rule for its hypothesis, read off the class-level interval of the difference
HYPOTHESIS_ZH = {"higher": "：按第 9.1 节的规则，支持假设", "lower": "：按第 9.1 节的规则，否定假设",
                 "no difference": "：按第 9.1 节的规则，分不出（既不支持也不否定）"}
_NOT_HYPER = {"val_accuracy", *SEARCH_KEYS}  # the values chosen are shown, not what the search recorded about them


def _hyper(recs: List[Dict[str, Any]]) -> str:
    """Each seed's chosen hyper-parameters (C of the linear probe, α and β of Tip-Adapter, whatever another
    method records), as a table cell; once when every seed has the same ones."""
    cells = []
    for r in sorted(recs, key=lambda r: r["seed"]):
        h = r.get("hyperparameters") or {}
        shown = [f"{HYPER_NAMES.get(k, k)}={v:.4g}".replace("e+0", "e").replace("e-0", "e-") if k == "C" else
                 f"{HYPER_NAMES.get(k, k)}={v:.2f}" if isinstance(v, float) else f"{HYPER_NAMES.get(k, k)}={v}" for k, v in h.items()
                 if k not in _NOT_HYPER and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if shown:
            cells.append((r["seed"], ", ".join(shown)))
    if len(cells) > 1 and len({c for _, c in cells}) == 1:  # every seed chose the same: said once
        return f"{len(cells)} 个种子相同：{cells[0][1]}"
    return "；".join(f"s{sd}: {c}" for sd, c in cells) or "—"


def baselines_section(loaded: Dict[str, Any], num: Optional[Numbering] = None) -> List[str]:
    num = num or Numbering("7")
    base, others = loaded["coop"].get("CoOp") or [], loaded.get("baselines") or {}
    out: List[str] = []
    if not others:
        out += ["（没有基线方法的结果：`bash scripts/run_all.sh` 默认在 CoOp 之后运行它们，`--baselines none` 跳过。）", ""]
    else:
        free = [m for m, recs in others.items() if any(r.get("protocol") == "validation-free" for r in recs)]
        searched = [m for m in others if m not in free]
        how = (f"{'、'.join(_zh(m) for m in searched)} 的超参数在少样本验证集上选出（验证集比要求的小时，运行会警告并记在结果文件的 validation 字段）"
               if searched else "")
        how += ("；" if how and free else "") + (f"{'、'.join(_zh(m) for m in free)} 不用验证集，设置固定（CLAP 论文的协议）" if free else "")
        out += [f"{num.table('baselines')}：基线方法。每个基线与 CoOp 用同一 (shots, seed) 的 few-shot 图像、同样的测试特征；"
                "“方法 − CoOp”是同一种子配对的差值及其 95% 置信区间（附录 B；本报告的差值都是方法减参照），基于几对种子见表下（各行不同时写在各格的括号里）；"
                f"{how}（每个结果文件的 protocol 字段；docs/baselines.md）。", "",
                "<!-- table:baselines -->",
                "| 方法 | shots | 种子数 | 平均 ± 标准差 (%) | 方法 − CoOp [95% CI] | 超参数（选出的或固定的） |",
                "|---|---:|---:|---:|---|---|"]
        cb = by_shots(base)
        rows, tests = [], []
        for method, recs in others.items():
            rb = by_shots(recs)
            for k, st in shot_stats(recs).items():
                tests.append(compare(list(rb[k].values()), list(cb.get(k, {}).values())) if k in cb else None)
                rows.append((f"| {_zh(method)} | {k} | {st['n']} | {f2(st['mean'])} ± {f2(st['std'])} | ",
                             f" | {_hyper(list(rb[k].values()))} |"))
        cells, note = ci_column(tests, VERDICT_VS_COOP)
        out += [head + cell + tail for (head, tail), cell in zip(rows, cells)]
        out += ["", note] if note else []
        out.append("")
        out += short_validation_notes(others)
        out += search_notes(others)
        same = identical_runs(others)
        if same:  # one sentence: the pairs, then what it means once
            out += ["同一 (shots, seed) 的运行中逐图预测完全相同的方法：" + "；".join(
                f"{_zh(a)} 与 {_zh(b)} {m}/{n} 次" + (
                    "（TaskRes 选出 α = 1 时，文本特征加一个从 0 学起的残差，与以文本特征为初值的 ZS-LP 是同一个参数化、同一个训练方案）"
                    if {a, b} == {"TaskRes", "ZS-LP"} else "") for a, b, m, n in same)
                + "。在那些运行里它们不是几份独立的证据。", ""]
    out += [f"{num.table('published')}：已发表的数字（在 CoOp 的划分上，**不是本项目的结果**）。", "", "<!-- table:published -->"]
    zs = loaded.get("zeroshot")
    recs = ([zs] if zs else []) + list(base)
    shas = {(r.get("split") or {}).get("sha256") for r in recs}
    return out + published.markdown(float(zs["accuracy"]) if zs else None,
                                    split_sha=shas.pop() if len(shas) == 1 else None,
                                    random_weights=any_random(loaded), demo=any(bool(r.get("demo")) for r in recs))


def short_validation_notes(baselines: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    """One sentence per (shots, shortfall) -- naming every method it concerns -- whose hyper-parameter search ran on fewer validation images per
    class than asked (a class had too few in ``val``; the run warned and recorded it in ``validation``)."""
    groups: Dict[tuple, List[str]] = {}  # the same shortfall said once, naming every method it concerns
    for method, recs in baselines.items():
        for k, runs in sorted(by_shots(recs).items()):
            short = [r for _, r in sorted(runs.items()) if (r.get("validation") or {}).get("short_classes")]
            if not short:
                continue
            v = short[0]["validation"]
            seeds = "、".join(str(r["seed"]) for r in short)
            key = (k, seeds, v["per_class"], v["images"], v["requested_per_class"], len(v["short_classes"]))
            groups.setdefault(key, []).append(method)
    out = []
    for (k, seeds, per_class, images, requested, n_short), methods in sorted(groups.items(), key=lambda t: t[0][0]):
        out += [f"注意：{'、'.join(map(_zh, methods))} {k} shot（种子 {seeds}）的超参数只在每类 {per_class} 张、共 {images} 张验证图像上"
                f"搜索，少于要求的每类 {requested} 张：{n_short} 个类的验证图像不足"
                f"（运行时已警告，名单在结果文件的 validation 字段）。", ""]
    return out


CLASS_RULE_ZH = ("每类单独检验：区间来自该类图像上的配对自助法（2,000 次重采样），“高/低”还要求逐图的精确符号检验"
                 "（每张图的差先在种子间平均）p < 0.05")


def split_classes(rows: List[Dict[str, Any]]):
    """(higher, lower, untestable, count of the rest): the classes whose interval lies wholly on one side
    of 0 (largest change first), those too small for the sign test, and how many have no difference we
    can detect."""
    up = sorted((r for r in rows if r["verdict"] == "higher"), key=lambda r: -r["diff"])
    down = sorted((r for r in rows if r["verdict"] == "lower"), key=lambda r: r["diff"])
    small = [r for r in rows if r["verdict"] == "untestable"]
    return up, down, small, len(rows) - len(up) - len(down) - len(small)


def class_head(rows: List[Dict[str, Any]]) -> str:
    """"100 个类中 3 个高、1 个低（95% 区间整体在 0 的一侧），其余 96 个分不出高低"."""
    up, down, small, rest = split_classes(rows)
    n_min = sign_test_min_n()
    untested = f"，{len(small)} 个类测试图像少于 {n_min} 张、无法检验" if small else ""
    if not up and not down:
        if not rest:
            return f"{len(rows)} 个类都无法检验（测试图像都少于 {n_min} 张）"
        return f"{len(rows)} 个类中 {rest} 个分不出高低{untested}"
    return (f"{len(rows)} 个类中 {len(up)} 个高、{len(down)} 个低（95% 区间整体在 0 的一侧）"
            + (f"，{rest} 个分不出高低" if rest else "") + untested)


def per_class_section(loaded: Dict[str, Any], num: Optional[Numbering] = None) -> List[str]:
    """Section 7.5, the one place the per-class tests are written (7.9 refers to it)."""
    num = num or Numbering("7")
    zs, recs = loaded["zeroshot"], loaded["coop"].get("CoOp") or []
    if not zs or not recs:
        return ["（需要 zeroshot.json 和 CoOp 的记录才能比较各类别。）"]
    kmax = max(int(r["shots"]) for r in recs)
    runs = list(by_shots(recs)[kmax].values())
    rows = compare_classes(runs, [zs])
    if not rows:
        return ["（记录里没有逐图预测，无法逐类检验。）"]
    said = forecast_sentence(zs, runs, kmax)
    return ([said, ""] if said else []) + [zeroshot_weakest(zs), "", confusions(zs, runs, kmax), ""] + _per_class(rows, runs, zs, kmax, num)


def top_confusions(recs: Sequence[Dict[str, Any]], n: int = 5) -> List[Tuple[str, str, int]]:
    """The ``n`` most frequent (true class, predicted class) errors over the records' test predictions
    (summed over the records; ties by name)."""
    return [(a, b, c) for (a, b), c in sorted(mistaken(recs).items(), key=lambda x: (-x[1], x[0]))[:n]]


def confusions(zs: Dict[str, Any], runs: List[Dict[str, Any]], kmax: int) -> str:
    """Which classes are taken for which: zero-shot's most frequent errors and CoOp's at ``kmax`` shots."""
    said = lambda pairs: "、".join(f"{a} → {b}（{c} 张）" for a, b, c in pairs)  # noqa: E731
    zs_top, coop_top = top_confusions([zs]), top_confusions(runs)
    if not zs_top and not coop_top:
        return "（记录里没有逐图预测，无法列出混淆。）"
    return (f"最常见的混淆（真实类 → 预测类）：零样本 CLIP {said(zs_top) or '没有错误'}；CoOp {kmax} shot"
            f"（{len(runs)} 个种子合计）{said(coop_top) or '没有错误'}。")


def zeroshot_weakest(zs: Dict[str, Any], n: int = 5) -> str:
    """Zero-shot's weakest classes: where the hand-written prompt leaves the most room (its record's per-class accuracy)."""
    per = sorted((float(a), c) for c, a in (zs.get("per_class_accuracy") or {}).items())
    if not per:
        return "（零样本的记录里没有逐类准确率。）"
    perfect = [c for a, c in per if a >= 100.0]
    tied = [c for a, c in per if a == per[0][0]]
    if len(tied) >= n:  # a tie at the bottom: all of it, not an alphabetical cut
        worst = f"{len(tied)} 类同为最低的 {per[0][0]:.1f}%（{'、'.join(tied[:10])}{' 等' if len(tied) > 10 else ''}）"
    else:
        worst = f"最低的 {min(n, len(per))} 类是 " + "、".join(f"{c}（{a:.1f}%）" for a, c in per[:n])
    named = f"：{'、'.join(perfect)}" if 0 < len(perfect) <= 10 else ""
    top = top_share(zs) if enough(zs) else None  # a class predicted for half the images is "all right" for that reason
    favoured = (f"；{top[0]} 拿走了 {100 * top[1]:.1f}% 的预测，它全对只因被预测得多，见第 7.9 节"
                if top and top[1] >= COLLAPSE_SHARE and top[0] in perfect else "")
    return (f"零样本 CLIP 各类的准确率：{worst}；{len(per)} 类中有 {len(perfect)} 类全对{named}{favoured}"
            f"（单次运行的逐类准确率，类内测试图像少，只作定位，不作检验）。")


def _per_class(rows: List[Dict[str, Any]], runs: List[Dict[str, Any]], zs: Dict[str, Any], kmax: int,
               num: Numbering) -> List[str]:
    """The per-class tests of CoOp at ``kmax`` shots against zero-shot (``rows``: coop.report.comparisons.compare_classes)."""
    up, down, small, rest = split_classes(rows)
    counts = [r["n_test"] for r in rows]
    n_min = sign_test_min_n()
    testable = len(rows) - len(small)
    text = (f"CoOp（{kmax} shot，{len(runs)} 个种子，各与零样本的同一次运行配对）相对零样本 CLIP（{CLASS_RULE_ZH}）："
            f"{class_head(rows)}。每类 {min(counts)}{'' if min(counts) == max(counts) else f'–{max(counts)}'} 张测试图像；"
            f"在 {min(counts)} 张图的类里，单个种子中一张图就是 {100 / min(counts):.0f} 个百分点。")
    if small:
        names = "、".join(r["class"] for r in small[:10]) + (f" 等 {len(small)} 个" if len(small) > 10 else "")
        n_big = max(int(r["n_test"]) for r in small)  # the largest of these classes: its smallest p bounds them all
        text += (f"测试图像少于 {n_min} 张的类无法检验：即使每张图都朝同一方向变化，精确符号检验的 p 也至少是 "
                 f"2/2^{n_big} = {sign_test_p(n_big, 0):.4f}（{n_min} 张时才可能低到 {sign_test_p(n_min, 0):.5f} < 0.05），"
                 f"所以这些类（{names}）不能判为“高”或“低”，也不算“分不出”。")
    if testable:
        text += (f"{testable} 个可检验的类各检验一次，即使没有任何真实变化，平均也至多约 {testable * 0.05:.1f} 个类会被误判为"
                 "“高”或“低”（期望值；未做多重比较校正）。")
    out = [text]
    if not up and not down:
        return out
    out += ["", f"{num.table('per_class')}：判为“高/低”的类。", "",
            "<!-- table:per-class -->", "| 类别 | 测试图像数 | 零样本 (%) | CoOp（种子平均，%） | 变化 [95% CI] |",
            "|---|---:|---:|---:|---|"]
    z = zs["per_class_accuracy"]
    for r in up + down:
        m = float(np.mean([float(x["per_class_accuracy"].get(r["class"], float("nan"))) for x in runs]))
        out.append(f"| {r['class']} | {r['n_test']} | {f2(float(z.get(r['class'], float('nan'))))} | {f2(m)} | "
                   f"{fmt_num(r['diff'], True)} {interval(r['ci'])} {VERDICT_ZH[r['verdict']]} |")
    return out + ["", f"表中只列出判为“高/低”的类（区间整体在 0 一侧且符号检验 p < 0.05；先列高，再列低，各按变化大小排序）；其余 {rest} 个"
                   "可检验的类分不出高低，即使其变化的数值大，也可能只是少数几张图。"]


def rare_name_classes(classnames: Sequence[str]) -> List[str]:
    """Section 9.1's group, the multi-token names: the classes with a word of their name that CLIP's
    BPE vocabulary has no single token for (e.g. dalmatian -> dalmati + an). BPE merges the strings
    frequent in the text it was built on, so such words are likely rarer there -- a proxy for
    rarity, not a measure of it. (The function keeps its old name; the report calls the group what
    it is.)"""
    import clip

    tok = clip.clip._tokenizer  # the instance clip.tokenize uses, as coop.methods.train does
    return [c for c in classnames if any(len(tok.encode(w)) > 1 for w in c.replace("_", " ").split())]


multi_token_classes = rare_name_classes


def _ci(res: Dict[str, Any]) -> str:
    """"差 +1.20 个百分点 [−0.30, +2.70]": a group's paired difference and its 95% interval."""
    return f"差 {fmt_num(res['diff'], True)} 个百分点 {interval(res['ci'])}"


def block_mod_evidence(loaded: Dict[str, Any]) -> List[str]:
    """Section 9.1's hypothesis, tested where the records allow: each modification against plain CoOp
    on the classes with multi-token names pooled, on the other classes, and the contrast of the two
    (paired, with classes as the resampled unit); and how far training moved the modification from
    the identity."""
    coop = loaded["coop"]
    base = by_shots(coop.get("CoOp") or [])
    out: List[str] = []
    for method in modified_methods(coop):
        recs = by_shots(coop[method])
        common = sorted(set(recs) & set(base))
        if not common:
            continue
        k = common[-1]
        mine, theirs = list(recs[k].values()), list(base[k].values())
        names = next((list(r["classnames"]) for r in mine if r.get("classnames")), [])
        group = rare_name_classes(names)
        res = compare_group(mine, theirs, group) if group else None
        if not names:
            out.append("第 9.1 节的假设无法在这里检验：记录里没有类名。")
        elif not group:
            out.append("第 9.1 节的假设无法在这里检验：没有一个类名含被 BPE 切开的词（CLIP 词表里没有单个词元的词）。")
        elif res is None:
            out.append(f"第 9.1 节的假设无法在这里检验：含切分词的类名的类（{len(group)} 个）或其余类"
                       f"在测试集里少于 {MIN_CLASSES} 个可配对的类，无法以类为单位重采样。")
        else:
            g, o, c = res["group"], res["others"], res["contrast"]
            pairs = pairs_zh({"seeds": sorted(set(r["seed"] for r in mine) & set(r["seed"] for r in theirs))})
            out.append(f"第 9.1 节的假设，{method} 相对普通 CoOp（最大的 shot 数 {k}，同一种子配对，{pairs}；检验以类为单位，"
                       f"在组内对类重采样，2,000 次，再与按种子的 t 区间取并集；方括号内为 95% 置信区间）：含切分词的类名"
                       f"（名字里有 CLIP 词表没有单个词元的词）的 {g['n_classes']} 个类（{g['n_images']:,} 张测试图）"
                       f"{VERDICT_ZH[verdict(g)]}，{_ci(g)}；其余 {o['n_classes']} 个类（{o['n_images']:,} 张）"
                       f"{VERDICT_ZH[verdict(o)]}，{_ci(o)}；两者之差（假设预测为正）{VERDICT_ZH[verdict(c)]}，{_ci(c)}"
                       f"{HYPOTHESIS_ZH[verdict(c)]}。"
                       "这是对假设的部分检验：它不区分“被切成多个词元”与类名的其他性质，而已经全对的类无法再提高。")
        sizes = [r.get("block_mod_size") for r in mine if r.get("block_mod_size")]
        if sizes:
            mean = np.mean(np.array(sizes, dtype=float), axis=0)
            what = (" ‖g·up‖（门控乘上投影 up 的权重与偏置的 Frobenius 范数）" if "adapter" in method
                    else " ‖BA‖（LoRA 更新的 Frobenius 范数）")
            out.append(f"{method} 训练后各块的{what}（{k} shot，{len(sizes)} 个种子的平均，第 1–{len(mean)} 块；"
                       f"0 即普通 CoOp；描述，不作检验）：" + "、".join(f"{v:.3f}" for v in mean) + "。")
    return list(dict.fromkeys(out))  # "cannot be tested here" is said once, however many modifications ran
