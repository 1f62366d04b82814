"""The report's tables, rendered from result records (Chinese Markdown); the training curves figure is
:mod:`coop.report.curves`.

:func:`coop.report.document.render_results` puts them together; each function here takes the output of
:func:`coop.runs.results.load_results` and reads every number from it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .guard import SUFFIX, guarded, guarded_name
from ..runs.results import by_shots, modified_methods, shot_stats
from .comparisons import compare
from .fmt import _zh, spaced, ci_cell, ci_column, f2, md_escape, rel_link, signed, timing  # noqa: F401  (ci_cell, rel_link, signed: re-exported)
from .readings import pooled_fit, zeroshot_interval
from .numbering import Numbering

log = logging.getLogger(__name__)

TOP_K = 5
CURVES_NAME = "curves.png"


# --- statistics ----------------------------------------------------------------------------------

def accuracy_summary(loaded: Dict[str, Any]) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """``{method: {shots: {"seeds", "accuracies", "mean", "std", "n"}}}`` for every CoOp method."""
    return {method: shot_stats(recs) for method, recs in loaded["coop"].items()}


def _method_order(methods) -> List[str]:
    return sorted(methods, key=lambda m: (m != "CoOp", m))


def _all_records(loaded: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [r for rs in loaded["coop"].values() for r in rs] + ([loaded["zeroshot"]] if loaded["zeroshot"] else [])


# --- the Markdown ----------------------------------------------------------------------------------

def _provenance(loaded: Dict[str, Any]) -> List[str]:
    recs = _all_records(loaded)
    models = sorted({f"{(r.get('model') or {}).get('name')} (sha256 {str((r.get('model') or {}).get('sha256'))[:12]}…)"
                     for r in recs})
    splits = sorted({f"{Path(str((r.get('split') or {}).get('file'))).name} "
                     f"(sha256 {str((r.get('split') or {}).get('sha256'))[:12]}…)" for r in recs})
    n_test = sorted({int(r["n_test"]) for r in recs})
    lines = [f"- 模型：{'; '.join(models)}" + ("  **（记录来自不同的模型！）**" if len(models) > 1 else ""),
             f"- 划分：{'; '.join(splits)}" + ("  **（记录来自不同的划分文件！）**" if len(splits) > 1 else ""),
             f"- 测试集图像数：{', '.join(map(str, n_test))}" + ("  **（各记录不一致！）**" if len(n_test) > 1 else "")]
    scales = sorted({round(float(s), 4) for s in ((r.get("model") or {}).get("logit_scale_exp") for r in recs)
                     if s is not None})
    if scales:
        random = any(r.get("random_weights") for r in recs)
        lines.append(f"- 权重中的 logit 缩放 s = exp(logit_scale)：{', '.join(f'{s:g}' for s in scales)}"
                     + ("（随机权重：这是初值 1/0.07，不是 CLIP 训练后的值；发布的 RN50 权重里 s = 100，第 2.3 节）" if random
                        else "（第 2.3 节；CLIP 训练时把它截在 100 以内）"))
    precisions = sorted({str(r.get("precision") or (r.get("config") or {}).get("precision") or "fp32") for r in recs})
    lines.append(f"- 精度：{', '.join(precisions)}" + ("  **（记录的精度不一致）**" if len(precisions) > 1 else ""))
    lines += _settings_ran(loaded)
    if any(r.get("demo") for r in recs):
        lines.append("- 这些记录标记为 demo（合成数据）。")
    return lines


def _settings_ran(loaded: Dict[str, Any]) -> List[str]:
    """What the CoOp runs and the baselines were trained with, read from their records (a demo's caps,
    a user's --epochs), so the text's defaults are never taken for what ran."""
    out = []
    coop = loaded["coop"].get("CoOp") or []
    if coop:
        epochs = sorted({(int(r["shots"]), (r.get("config") or {}).get("epochs")) for r in coop})
        c = coop[0].get("config") or {}
        views = c.get("views")
        out.append("- CoOp 的训练设置（来自记录）：" + "、".join(f"{k} shot {e} 个 epoch" for k, e in epochs)
                   + f"；学习率 {c.get('lr')}，batch {c.get('batch_size')}，M = {c.get('n_ctx')}，"
                   + ("每个 epoch 新的裁剪" if views is None else f"每张图 {views} 个缓存的裁剪（近似模式）"))
    opts = {m: (recs[0].get("settings") or {}).get("options") for m, recs in (loaded.get("baselines") or {}).items() if recs}
    shown = [f"{_zh(m)}（{', '.join(f'{k}={v}' for k, v in o.items())}）" for m, o in opts.items() if o]
    if shown:
        out.append("- 基线的设置（来自记录）：" + "；".join(shown))
    return out


def _accuracy_table(loaded: Dict[str, Any], summary, methods: Sequence[str]) -> List[str]:
    zs = loaded["zeroshot"]
    out = ["<!-- table:accuracy -->",
           "| 方法 | shots | 种子数 | 平均 ± 标准差 (%) | 各种子 (seed=准确率 %) | 相对零样本 [95% CI] | "
           "训练图像上 (%，测试视图，各种子合并；括号内为零样本) |",
           "|---|---:|---:|---:|---|---|---:|"]
    if zs:
        got = zeroshot_interval(zs)
        wil = f"一次确定性运行；95% Wilson 区间 [{f2(got[1])}, {f2(got[2])}]" if got else "—"
        out.append(f"| {_zh(zs['method'])} | 0 | — | {f2(float(zs['accuracy']))} | {wil} | — | — |")
    rows, tests = [], []
    for method in methods:
        runs = by_shots(loaded["coop"].get(method) or [])
        for k, s in summary[method].items():
            seeds = ", ".join(f"s{sd}={f2(a)}" for sd, a in zip(s["seeds"], s["accuracies"]))
            tests.append(compare(list(runs[k].values()), [zs]) if zs else None)
            pooled = pooled_fit(runs[k].values())
            rows.append((f"| {_zh(method)} | {k} | {s['n']} | {f2(s['mean'])} ± {f2(s['std'])} | {seeds} | ",
                         f" | {f'{f2(pooled[0])}（{f2(pooled[1])}）' if pooled else '—'} |"))
    cells, note = ci_column(tests)
    out += [head + cell + tail for (head, tail), cell in zip(rows, cells)]
    return out + (["", note] if note else [])


def _word(w: Any) -> str:
    """A BPE token as the table prints it: a space as ␣, a byte piece that is not whole UTF-8 (decoded as
    U+FFFD) as ‹字节›, so no broken character reaches the page."""
    w = str(w)
    if not w.strip():
        return "␣"
    return md_escape(w.replace("\ufffd", "‹字节›"))


def _nearest_words_section(loaded: Dict[str, Any], num: Optional[Numbering] = None) -> List[str]:
    num = num or Numbering("7")
    recs = [r for r in loaded["coop"].get("CoOp") or [] if r.get("nearest_words")]
    if not recs:
        return ["（记录里没有 nearest_words。）"]
    kmax = max(int(r["shots"]) for r in recs)
    top = [r for _, r in sorted(by_shots(recs)[kmax].items())]
    n_ctx = max(len(r["nearest_words"]) for r in top)
    out = [f"{num.table('nearest')}：CoOp {kmax} shot，每个上下文向量在词表嵌入（token_embedding 的行）中欧氏距离最近的词，"
           "括号内为距离（CoOp 论文解读学到的提示时用的方法；结果文件的 nearest_words 还记着第 2、3 近的词）。这些是 BPE 词元，可能只是词的片段（‹字节› 是不成字的字节片段）。"
           + ("**随机权重**：词表嵌入是随机的，最近词没有语义，只说明这张表如何生成。" if any(r.get("random_weights") for r in top) else ""),
           "",
           "<!-- table:nearest-words -->",
           "| 向量 | " + " | ".join(f"seed {r['seed']}" for r in top) + " |",
           "|---:|" + "---|" * len(top)]
    same, moved = 0, []
    for i in range(n_ctx):
        cells = []
        for r in top:
            nw, init, m = r["nearest_words"], r.get("nearest_words_init"), r.get("context_moved")
            if not (i < len(nw) and nw[i]):
                cells.append("—")
                continue
            kept = bool(init and i < len(init) and init[i] and init[i][0][0] == nw[i][0][0])
            same += kept
            moved += [float(m[i])] if m and i < len(m) else []
            cells.append(f"{_word(nw[i][0][0])} ({float(nw[i][0][1]):.3f}" + (f"，移动 {100 * float(m[i]):.0f}%" if m and i < len(m) else "")
                         + ("，同初值" if kept else "") + ")")
        out.append(f"| v{i + 1} | " + " | ".join(cells) + " |")
    if all(r.get("nearest_words_init") and r.get("context_moved") for r in top):  # records from before them: nothing said
        n = sum(len(r["nearest_words"]) for r in top)
        out += ["", f"“移动”是训练使该向量改变的长度占它初值长度的比例（{kmax} shot 各向量的中位数 {float(np.median(moved)) * 100:.0f}%）；"
                f"{n} 个向量中 {same} 个的最近词与训练前的初值相同（“同初值”）：那些行读到的是初始化，不是学到的东西。"]
    return out



def _params_note(loaded: Dict[str, Any]) -> str:
    """When the records' model is not RN50, why the trainable counts differ from sections 5.1 and 9.3."""
    models = sorted({str((r.get("model") or {}).get("name")) for rs in loaded["coop"].values() for r in rs})
    other = [m for m in models if m.split(":")[-1] != "RN50"]
    if not other:
        return ""
    return (f"可训练参数按记录的模型（{'、'.join(other)}）数出：它的文本塔宽度与层数不同于 RN50，与第 5.1、9.3 节按 RN50 "
            "数出的个数（CoOp 8,192、CoOp+adapter 112,748、CoOp+lora 106,496）不可比。")

def _block_mod_section(loaded: Dict[str, Any], summary, num: Optional[Numbering] = None) -> List[str]:
    num = num or Numbering("7")
    mods = [m for m in _method_order(summary) if m in modified_methods(summary)]  # CoOp's variants are in the first table
    if not mods:
        return []
    base = summary.get("CoOp", {})
    base_recs = by_shots(loaded["coop"].get("CoOp") or [])
    # CoOp's own rows are table 7.1's (a grader: repeated here); its cost is said under the table
    groups, summary, order, left, decided = dict(loaded["coop"]), dict(summary), [], {}, {}
    for m in mods:  # each modification, then its guarded form (section 9.1's safeguard)
        order.append(m)
        g, left[m] = guarded(loaded["coop"][m], loaded["coop"].get("CoOp") or [])
        decided[m] = g
        # a shot count where the guard fell back at every seed is CoOp's row again (difference exactly 0): not repeated
        g = [r for r in g if any(x["guard"]["modified"] for x in g if x["shots"] == r["shots"])]
        if g:
            groups[guarded_name(m)], summary[guarded_name(m)] = g, shot_stats(g)
            order.append(guarded_name(m))
    out = [f"{num.table('block_mods')}：块修改与普通 CoOp。同一 (shots, seed) 的两者用同一份 few-shot 数据与同一随机种子；"
           "“相对 CoOp”是同一种子、同一测试图像上的配对差及其 95% 置信区间（附录 B），基于几对种子见表下（各行不同时写在各格的括号里），"
           "修改本身的行回答修改做了什么、会不会伤害准确率（第 9.4 节的非劣效检验针对它）；附录 B 可选的把关见"
           + ("“（把关后）”的行与表下的依据" if any(m.endswith(SUFFIX) for m in order) else
              "表下的依据：把关在每个 shot 数都退回了 CoOp，表里没有它单独的行" if any(decided.values()) else
              "表下：这些记录不能加把关")
           + "；“CoOp 同种子”是 CoOp 在这些种子上的平均。训练时间是各种子的均值（最小–最大），"
           "在共享的机器上测得，随机器负载波动，只作粗略参考，不作检验。"
           + _params_note(loaded), "",
           "<!-- table:block-mods -->",
           "| 方法 | shots | 种子数 | 平均 ± 标准差 (%) | 各种子准确率 (%) | CoOp 同种子 (%) | 相对 CoOp [95% CI] | 可训练参数 | 训练时间 (s)：均值（最小–最大） |",
           "|---|---:|---:|---:|---|---:|---|---:|---:|"]
    rows, tests = [], []
    for method in order:
        recs = by_shots(groups.get(method) or [])
        is_guard = method.endswith(SUFFIX)
        for k, s in summary.get(method, {}).items():
            seeds = ", ".join(f"s{sd}={f2(a)}" + (f"（{'修改' if recs[k][sd]['guard']['modified'] else 'CoOp'}）"
                                                  if is_guard else "") for sd, a in zip(s["seeds"], s["accuracies"]))
            res = (compare(list(recs[k].values()), list(base_recs.get(k, {}).values()))
                   if method != "CoOp" and k in base_recs else None)
            # the seeds the verdict pairs (compare's own), else the seeds both sides have
            common = (res["seeds"] if res else
                      [sd for sd in s["seeds"] if k in base and sd in base[k]["seeds"]] if method != "CoOp" else [])
            if common:
                b = [float(base_recs[k][sd]["accuracy"]) for sd in common]
                ref = f2(float(np.mean(b))) + ("" if len(common) == len(base[k]["seeds"]) else
                                               f"（种子 {'、'.join(map(str, common))}）")
                diff = None if res else "无法检验（缺少逐图预测）"
            else:
                ref, diff = "—", "—"
            n_tr = sorted({r.get("n_trainable") for r in recs[k].values()} - {None})
            t = _train_times(recs[k].values())
            tests.append(res if diff is None else None)
            tail = (" | 同所选的运行 | — |" if is_guard else
                    f" | {', '.join(f'{x:,}' for x in n_tr) or '—'} | {timing(t)} |")
            rows.append((f"| {_zh(method)} | {k} | {s['n']} | {f2(s['mean'])} ± {f2(s['std'])} | {seeds} | {ref} | ", diff, tail))
    cells, note = ci_column(tests)
    out += [head + (cell if diff is None else diff) + tail for (head, diff, tail), cell in zip(rows, cells)]
    out += ["", note] if note else []
    own = _coop_cost(base_recs, num.ref("accuracy", "表 7.1"))
    out += ["", own] if own else []
    out += ["", GUARD_NOTE] if any(decided.values()) else []
    out += [x for m in mods if decided[m] for x in ("", guard_decisions(m, decided[m]))]
    for m, why in left.items():
        if why:
            out += ["", f"{m} 有 {len(why)} 对 (shots, seed) 不能加把关（"
                        f"{'；'.join(GUARD_WHY_ZH[w] for w in sorted(set(w for _, _, w in why)))}），把关的行不含它们。"]
    return out


def _train_times(runs) -> List[float]:
    """The runs' recorded training times (s), those that have one."""
    return [x for x in ((r.get("time_s") or {}).get("train") for r in runs) if x is not None]


def _coop_cost(base_recs: Dict[int, Dict[int, Dict[str, Any]]], table: str) -> str:
    """Plain CoOp's trainable parameters and training time per shot count, for comparison with the rows above
    (its accuracies are table 7.1's)."""
    said = []
    for k, runs in sorted(base_recs.items()):
        t = _train_times(runs.values())
        said.append(f"{k} shot {timing(t)} s" if t else f"{k} shot —")
    n_tr = sorted({r.get("n_trainable") for runs in base_recs.values() for r in runs.values()} - {None})
    if not said:
        return ""
    return (f"普通 CoOp（准确率见{table}）：可训练参数 {', '.join(f'{x:,}' for x in n_tr) or '—'}，训练时间 "
            + "、".join(said) + "。")


GUARD_NOTE = ("附录 B 的把关：每对 (shots, seed) 在少样本验证集（每类 min(shots, 4) 张，与基线搜索超参数的是同一批图）上，"
              "只有修改的运行答对、CoOp 答错的图显著多于反过来的图（单侧精确符号检验 p < 0.05）时才用修改的运行，否则用 CoOp 的运行；"
              "选择不读任何测试图像。“（把关后）”的行是把关后的方法，各种子后的括号写选了哪一个；某个 shot 数的所有种子都退回 CoOp 时，"
              "那一行就是 CoOp 的行（差恰为 0），不再列出。每次选择的依据：")


def guard_decisions(method: str, g: List[Dict[str, Any]]) -> str:
    """The numbers each (shots, seed)'s choice was made on: validation images only the modification gets right
    : only CoOp does, and the one-sided p."""
    parts = []
    for k, recs in sorted(by_shots(g).items()):
        parts.append(f"{k} shot " + "、".join(
            f"s{sd} {r['guard']['mod_only']}:{r['guard']['base_only']}" + (f"（p = {r['guard']['p']:.3f}）"
                                                                           if r["guard"]["mod_only"] > r["guard"]["base_only"] else "")
            for sd, r in sorted(recs.items())))
    fell_back = [k for k, recs in sorted(by_shots(g).items()) if not any(r["guard"]["modified"] for r in recs.values())]
    return (f"{spaced(guarded_name(method))}的依据（验证集上只有修改答对的图数 : 只有 CoOp 答对的图数，前者更多时给单侧 p）："
            + "；".join(parts) + "。" + (f"{'、'.join(map(str, fell_back))} shot 全部退回 CoOp。" if fell_back else ""))
GUARD_WHY_ZH = {"no CoOp run": "缺少同一 (shots, seed) 的 CoOp 运行",
                "no validation predictions": "记录里没有少样本验证集上的预测：旧版本写的记录，重新运行即可",
                "different validation images": "两者的少样本验证集不是同一批图"}


