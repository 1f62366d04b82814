"""The report's generated analysis follows the numbers (issue 13): result sets of different shapes,
built as records here (made-up numbers, no model), and the sentences checked against them."""
from __future__ import annotations

import pytest

from coop.report.analysis import analysis, compare_word, conclusion, trend

CLASSES = ["ant", "bass", "chair"]


def rec(shots, seed, acc, method="CoOp", per_class=None, words=("photo",)):
    return {"kind": "coop", "method": method, "shots": shots, "seed": seed, "accuracy": acc,
            "per_class_accuracy": per_class or {c: acc for c in CLASSES},
            "nearest_words": [[[w, 0.5]] for w in words]}


def loaded(zero, curve, mods=None):
    """curve: {shots: [acc per seed 1..n]}; mods: {method: {shots: [acc per seed]}}."""
    coop = {"CoOp": [rec(k, s, a) for k, accs in curve.items() for s, a in enumerate(accs, 1)]}
    for m, c in (mods or {}).items():
        coop[m] = [rec(k, s, a, method=m) for k, accs in c.items() for s, a in enumerate(accs, 1)]
    zs = {"kind": "zeroshot", "accuracy": zero, "per_class_accuracy": {c: zero for c in CLASSES}}
    return {"zeroshot": zs, "coop": coop}


def text(res):
    return "\n".join(analysis(res)) + "\n" + conclusion(res)


def test_below_zero_shot_at_one_shot_is_said():
    t = text(loaded(86.0, {1: [84.0, 85.0, 83.0], 2: [87.0, 87.5, 88.0], 4: [89.0, 89.5, 90.0]}))
    assert "1 shot 时 CoOp 为 84.00%" in t and "比零样本低 2.00 个百分点" in t
    assert "在 1 shot 时 CoOp 低于零样本" in t and "随 shot 数单调上升" in t
    assert "4 shot 时最好" in t and "89.50%" in t and "在 1 shot 时它不如手写提示" in t


def test_all_above_and_growing():
    t = text(loaded(80.0, {1: [82.0, 82.0], 2: [84.0, 84.0], 4: [86.0, 86.0]}))
    assert "比零样本高 2.00 个百分点" in t and "比零样本高 6.00 个百分点" in t
    assert "低于零样本" not in t and "在所有 shot 数上，学到的上下文都胜过手写提示" in t


def test_flat_curve():
    t = text(loaded(80.0, {1: [85.0], 2: [85.05], 4: [85.02]}))
    assert "基本持平" in t and "单调" not in t


def test_non_monotone_curve_names_the_drop():
    t = text(loaded(80.0, {1: [85.0], 2: [83.0], 4: [88.0]}))
    assert "不单调" in t and "1→2 shot 下降 2.00 个百分点" in t


def test_one_seed_below_zero_shot_is_mentioned_when_the_mean_is_above():
    t = text(loaded(85.0, {1: [84.0, 88.0, 89.0]}))
    assert "1 个单独的运行低于零样本（1 shot 种子 1）" in t


@pytest.mark.parametrize("mod_curve,word,sign", [({1: [86.0, 87.0], 2: [88.0, 89.0]}, "优于", "+1.00"),
                                                 ({1: [84.0, 85.0], 2: [86.0, 87.0]}, "不如", "-1.00"),
                                                 ({1: [85.0, 86.0], 2: [87.0, 88.0]}, "相当", "+0.00")])
def test_block_mod_compared_with_plain_coop_by_pairs(mod_curve, word, sign):
    t = text(loaded(80.0, {1: [85.0, 86.0], 2: [87.0, 88.0]}, mods={"CoOp+adapter": mod_curve}))
    assert f"CoOp+adapter 总体{word}" in t and f"平均差 {sign} 个百分点" in t and "4 对" in t


def test_classes_that_gain_and_lose():
    res = loaded(80.0, {1: [85.0]})
    res["coop"]["CoOp"][0]["per_class_accuracy"] = {"ant": 90.0, "bass": 70.0, "chair": 80.0}
    t = text(res)
    assert "3 个类中 1 个提升、1 个下降、1 个不变" in t
    assert "提升最多的是 ant（80.0%→90.0%）" in t and "下降最多的是 bass（80.0%→70.0%）" in t


def test_nearest_words_come_with_the_caveat():
    t = text(loaded(80.0, {1: [85.0, 86.0]}))
    assert "“photo”（2 次）" in t and "投影" in t


def test_words_for_small_differences():
    assert compare_word(0.05) == "持平" and compare_word(0.2) == "高" and compare_word(-0.2) == "低"
    assert trend([1.0]).startswith("只有一个")
