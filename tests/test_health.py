"""coop.report.health: the checks the generated analysis makes before it interprets anything -- training
loss still at chance, collapsed predictions, runs identical to zero-shot CLIP."""
from __future__ import annotations

import math

import pytest

from coop.report.health import (STUCK_TAKEAWAY, all_at_chance, at_chance, health_sentences, same_as_zeroshot,
                                top_share)

NAMES = ["ant", "bass", "chair", "dog"]


def run(loss_last, pred, method="CoOp", seed=1):
    return {"method": method, "seed": seed, "n_classes": len(NAMES), "classnames": NAMES,
            "history": {"loss": [math.log(4), loss_last]} if loss_last is not None else {},
            "test_predictions": {"index": list(range(len(pred))), "label": [i % 4 for i in range(len(pred))], "pred": pred}}


def test_a_loss_still_at_ln_c_is_at_chance():
    assert at_chance(run(0.99 * math.log(4), [0])) is True
    assert at_chance(run(0.5 * math.log(4), [0])) is False
    assert at_chance(run(None, [0])) is None and at_chance({"history": {"loss": [1.0]}}) is None  # no C


def test_top_share_and_same_as_zeroshot_count_predictions():
    assert top_share(run(1.0, [1, 1, 1, 0])) == ("bass", 0.75) and top_share({"test_predictions": {}}) is None
    zs = run(None, [0, 1, 2, 3], "Zero-shot CLIP")
    assert same_as_zeroshot([run(1.0, [0, 1, 2, 3]), run(1.0, [0, 1, 2, 2], seed=2)], zs) == 1
    assert same_as_zeroshot([run(1.0, [0, 1, 2, 3])], {"test_predictions": {}}) == 0


def test_the_sentences_warn_for_each_symptom_and_say_when_none_was_found():
    zs = run(None, [0, 1, 2, 3, 0, 1, 2, 3], "Zero-shot CLIP")
    healthy = {"CoOp": [run(0.3, [0, 1, 2, 3, 0, 1, 2, 2], seed=s) for s in (1, 2, 3)]}
    said = health_sentences(zs, healthy, {})
    assert said == ["训练是否学到了东西：每次运行的训练损失都降到 ln C 以下，没有预测塌缩，也没有与零样本逐图相同的运行。"]
    assert not all_at_chance(healthy)
    stuck = {"CoOp": [run(1.39, [1] * 8, seed=s) for s in (1, 2)] + [run(0.3, [0, 1, 2, 3, 0, 1, 2, 2], seed=3)]}
    text = "\n".join(health_sentences(zs, stuck, {"Tip-Adapter": [run(None, zs["test_predictions"]["pred"], "Tip-Adapter")]}))
    assert "附近的运行：CoOp 2/3 次。看不出这些运行从标注图像学到了超出均匀猜测的东西，涉及它们的比较不宜解读。" in text
    assert "CoOp（2/3 次，最多 100.0% 的测试图像判为 bass）" in text and "零样本 CLIP（" not in text
    assert "逐图预测与零样本 CLIP 完全相同的运行：Tip-Adapter 1/1 次。" in text
    every = {"CoOp": [run(1.39, [1] * 8, seed=s) for s in (1, 2)]}
    assert "所有运行都是这样" in "\n".join(health_sentences(zs, every, {})) and all_at_chance(every)
    assert health_sentences(None, {"CoOp": [run(None, [0])]}, {}) == []  # nothing to check: nothing said


def test_zero_shot_collapse_is_looked_for_under_every_prompt_set():
    zs = run(None, [0, 1, 2, 3, 0, 1, 2, 3], "Zero-shot CLIP")
    healthy = {"CoOp": [run(0.3, [0, 1, 2, 3, 0, 1, 2, 2])]}
    ensemble = run(None, [2, 2, 2, 2, 2, 1, 2, 3], "Zero-shot CLIP")
    text = "\n".join(health_sentences(zs, healthy, {}, {"single": zs, "ensemble": ensemble}))
    assert "零样本 CLIP（提示集成）（1/1 次，最多 75.0% 的测试图像判为 chair）" in text
    assert "单一模板" not in text  # the single template is ``zs`` itself: not named twice
    assert health_sentences(zs, healthy, {}, {"single": zs, "ensemble": zs}) == health_sentences(zs, healthy, {})


def test_the_takeaways_warn_first_when_no_run_learned(tmp_path):
    from test_analysis import loaded

    from coop.report.analysis import analysis, takeaways

    res = loaded({1: [200, 190], 2: [250, 240]})
    assert STUCK_TAKEAWAY not in "\n".join(takeaways(res))
    for rs in res["coop"].values():
        for r in rs:
            r["history"] = {"loss": [5.0, 0.99 * math.log(r.get("n_classes") or len(r["classnames"]))]}
    bullets = takeaways(res)
    assert bullets[0] == "- " + STUCK_TAKEAWAY and len(bullets) <= 5
    assert "所有运行都是这样" in "\n".join(analysis(res))


def test_a_class_all_right_because_it_is_predicted_for_most_images_is_said_so():
    from coop.report.sections import zeroshot_weakest

    zs = run(None, [1, 1, 1, 1, 1, 1, 1, 2], "Zero-shot CLIP")  # labels 0 1 2 3 0 1 2 3: bass all right, by collapse
    zs["per_class_accuracy"] = {"ant": 0.0, "bass": 100.0, "chair": 50.0, "dog": 0.0}
    assert "；bass 拿走了 87.5% 的预测，它全对只因被预测得多，见第 7.9 节" in zeroshot_weakest(zs)
    zs["test_predictions"]["pred"] = [0, 1, 2, 3, 0, 1, 2, 2]  # spread: no such remark
    assert "拿走了" not in zeroshot_weakest(zs)


def test_when_no_run_learned_the_conclusion_and_section_8_say_so(tmp_path):
    """The demo's graders: every loss at ln C, yet section 10 gave the numbers plainly and section 8's longer-
    training check read 'no support for under-training'. Both now say the runs learned nothing."""
    import copy

    from test_analysis import loaded

    from coop.report import expectations as E
    from coop.report.conclusion import conclusion
    from coop.runs.results import LONGER

    res = loaded({1: [200, 190], 2: [250, 240]})
    longer = []
    for r in [r for r in res["coop"]["CoOp"] if r["shots"] == 1]:
        x = copy.deepcopy(r)
        x["config"] = {**(r.get("config") or {}), "variant": LONGER, "epochs": 100}
        x["method"] = "CoOp [epochs=100]"
        longer.append(x)
    res["coop"]["CoOp [epochs=100]"] = longer
    assert "超出均匀猜测的东西" not in conclusion(res)[0]
    assert "这个检验在这里没有结论" not in E.longer_line(res, res["coop"]["CoOp"])
    for rs in res["coop"].values():
        for r in rs:
            r["history"] = {"loss": [5.0, 0.99 * math.log(len(r["classnames"]))]}
    assert "但 CoOp 及其变体的所有运行，训练损失都停在 ln C 附近：看不出它们从标注图像学到了超出均匀猜测的东西" in conclusion(res)[0]
    assert "这个检验在这里没有结论" in E.longer_line(res, res["coop"]["CoOp"])


def test_section_8_closes_the_predictions_the_records_can_close():
    from test_analysis import loaded

    from coop.report import expectations as E

    res = loaded({1: [200, 190], 2: [250, 240]}, mods={"CoOp+lora": {1: [200, 190], 2: [250, 240]}})
    lines = E.later_lines(res, res["zeroshot"], res["coop"]["CoOp"])
    assert "- 预测 4（块修改）：CoOp+lora 可以说非劣于 CoOp（判断与原因在第 7.9 节；含切分词的类名的检验在第 7.8 节）。" in lines
    assert not any("预测 4" in x for x in E.later_lines(loaded({1: [200, 190]}), res["zeroshot"], res["coop"]["CoOp"]))


def test_without_zero_shot_the_all_clear_claims_nothing_about_it():
    healthy = {"CoOp": [run(0.3, [0, 1, 2, 3, 0, 1, 2, 2], seed=s) for s in (1, 2)]}
    assert health_sentences(None, healthy, {}) == ["训练是否学到了东西：每次运行的训练损失都降到 ln C 以下，没有预测塌缩。"]


def test_zero_shot_at_chance_is_said():
    from coop.report.health import chance_level

    zs = run(None, [0, 1, 2, 3, 0, 1, 2, 3], "Zero-shot CLIP")  # 8 of 8 right
    zs["accuracy"] = 100.0
    assert not chance_level(zs)
    zs["test_predictions"]["pred"] = [1, 0, 3, 2, 0, 0, 1, 1]  # 2 of 8 right: 25% = 1/C
    zs["accuracy"] = 25.0
    assert chance_level(zs)
    said = "\n".join(health_sentences(zs, {"CoOp": [run(0.3, [0, 1, 2, 3, 0, 1, 2, 2])]}, {}))
    assert "零样本 CLIP 的 25.00% 与随机猜测（1/C = 25.00%）分不出" in said


def test_prediction_2_is_judged_against_the_median_class():
    from coop.report.forecast import below_median

    per = {"bass": 10.0, "water_lilly": 20.0, "crayfish": 30.0, "lobster": 90.0, "dog": 50.0, "cat": 60.0, "car": 70.0}
    named, weak, median = below_median({"per_class_accuracy": per})
    assert named == ["bass", "water_lilly", "crayfish", "lobster"] and weak == ["bass", "water_lilly", "crayfish"]
    assert median == 50.0 and below_median({"per_class_accuracy": {"dog": 1.0}}) is None
    ties = {"water_lilly": 0.0, "a": 0.0, "b": 0.0, "c": 100.0, "d": 100.0, "bass": 100.0}  # a tie at the bottom is weak,
    assert below_median({"per_class_accuracy": ties})[1] == ["water_lilly"]             # a tie at 100% is not


def test_the_steps_a_record_trained_are_counted_as_the_training_loop_counts_them():
    from coop.report.expectations import steps_of

    rec = {"config": {"epochs": 10, "batch_size": 32}, "fewshot_train": list(range(40))}
    assert steps_of(rec) == 10  # 40 images: one full batch of 32, the last 8 dropped
    assert steps_of(dict(rec, fewshot_train=list(range(100)))) == 30 and steps_of(dict(rec, fewshot_train=list(range(20)))) == 10
    assert steps_of({"config": {}}) is None


def test_section_8_judges_prediction_2_in_words():
    from test_analysis import loaded

    from coop.report import expectations as E

    res = loaded({1: [200, 190]})
    per = {"bass": 10.0, "water_lilly": 90.0, "crayfish": 20.0, "lobster": 30.0, "dog": 50.0, "cat": 60.0, "car": 70.0}
    zs = dict(res["zeroshot"], per_class_accuracy=per)
    said = [x for x in E.later_lines(res, zs, res["coop"]["CoOp"]) if x.startswith("- 预测 2")]
    assert said and "4 个中 3 个在零样本准确率较弱的一半（中位数 50.0%）（bass、crayfish、lobster），预测不成立" in said[0]
    zs["per_class_accuracy"] = dict(per, water_lilly=15.0)
    said = [x for x in E.later_lines(res, zs, res["coop"]["CoOp"]) if x.startswith("- 预测 2")]
    assert "4 个中 4 个" in said[0] and "预测成立" in said[0]


def test_prediction_2_is_untestable_when_classes_are_missing_or_tied_at_the_bottom():
    from test_analysis import loaded

    from coop.report import expectations as E

    res = loaded({1: [200, 190]})
    few = dict(res["zeroshot"], per_class_accuracy={"bass": 10.0, "water_lilly": 90.0, "dog": 50.0, "cat": 60.0})
    said = [x for x in E.later_lines(res, few, res["coop"]["CoOp"]) if x.startswith("- 预测 2")]
    assert said == ["- 预测 2（零样本容易错的类）：无法检验，记录里只有 2 个（bass、water_lilly）；逐类的数字在第 7.5 节。"]
    per = {"bass": 0.0, "water_lilly": 0.0, "crayfish": 0.0, "lobster": 0.0, "dog": 0.0, "cat": 0.0, "car": 50.0}
    tied = dict(res["zeroshot"], per_class_accuracy=per)
    said = [x for x in E.later_lines(res, tied, res["coop"]["CoOp"]) if x.startswith("- 预测 2")]
    assert said and "无法检验，至少一半的类并列最低（0.0%）" in said[0]


def test_a_range_missed_is_labelled_as_the_rule_says_and_noise_gets_no_remedy():
    from test_analysis import loaded

    from coop.report import expectations as E
    from coop.report.analysis import analysis

    assert "（按第 8 节的规则记为“不符”）" in E._against(5.0, (1.0, 9.0), -2.0, 2.0)
    assert "不符" not in E._against(1.0, (-1.0, 3.0), -2.0, 2.0)
    res = loaded({1: [200, 190, 210]}, mods={"CoOp+lora": {1: [190, 200, 200]}})
    assert "区间的宽度由什么决定" in "\n".join(analysis(res))
    for rs in res["coop"].values():
        for r in rs:
            r["history"] = {"loss": [5.0, 0.99 * math.log(len(r["classnames"]))]}
    text = "\n".join(analysis(res))
    assert "区间的宽度由什么决定" not in text and "这个检验通过的概率" not in text and "不等于有害" not in text


def test_the_training_curves_mark_ln_c_and_count_whole_epochs():
    from test_analysis import loaded

    from coop.report.curves import curves_figure

    res = loaded({1: [200, 190]})
    assert curves_figure(res) is None  # no history: no figure
    for r in res["coop"]["CoOp"]:
        r["history"] = {"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "train_acc": [30.0, 40.0, 50.0], "lr": [1e-5, 2e-3, 1e-3]}
    fig = curves_figure(res)
    (chance,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "ln-C"]
    assert chance.get_ydata()[0] == pytest.approx(math.log(len(res["coop"]["CoOp"][0]["classnames"])))
    ticks = fig.axes[0].xaxis.get_major_locator().tick_values(1, 3)
    assert all(float(x).is_integer() for x in ticks)
    res["coop"]["CoOp"][1]["history"] = dict(res["coop"]["CoOp"][0]["history"], loss=[3.0, 2.5, 2.2])
    fig = curves_figure(res)  # a line per shot count: the seeds' mean, their range shaded
    (mean,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "mean:1"]
    assert list(mean.get_ydata()) == pytest.approx([2.5, 2.0, 1.7])
    (band,) = [c for c in fig.axes[0].collections if c.get_gid() == "range:1"]
    ys = band.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(1.2) and max(ys) == pytest.approx(3.0)


def test_a_baseline_search_that_tied_or_chose_the_grid_edge_is_named():
    from coop.report.search_notes import search_notes

    def rec(method, shots, seed, hyper):
        return {"method": method, "shots": shots, "seed": seed, "hyperparameters": hyper}

    tip = [rec("Tip-Adapter", 1, s, {"alpha": 0.1, "beta": 0.1, "tied": 60 * s, "edge": [], "grid_points": 120})
           for s in (1, 2)]
    tip += [rec("Tip-Adapter", 4, s, {"alpha": 4.755, "beta": 1.0, "tied": 1, "edge": ["alpha"]}) for s in (1, 2)]
    probe = [rec("Linear probe CLIP", 1, 1, {"C": 1e6, "searched": [[1e-2, 40.0], [1.0, 50.0], [1e6, 55.0], [1e6, 55.0]]})]
    two = [rec("TaskRes", 1, 1, {"alpha": 1.0, "searched": [{"alpha": 0.5, "val_accuracy": 10.0},
                                                             {"alpha": 1.0, "val_accuracy": 15.0}]})]
    text = "".join(search_notes({"Tip-Adapter": tip, "Linear probe CLIP": probe, "TaskRes": two}))
    assert "| Tip-Adapter | 1 shot 2/2（全网格 1） | α：4 shot 2/2 |" in text
    assert "| 线性探测 CLIP | — | C：1 shot 1/1 |" in text  # C = 1e6 revisited: one point, no tie
    assert "TaskRes" not in text  # a two-point grid: every choice is an edge, nothing to say; no tie either
    assert search_notes({"TaskRes": two}) == []
    flat = [rec("TaskRes", 2, 1, {"alpha": 0.2, "searched": [{"alpha": 0.2, "val_accuracy": 10.0},
                                                              {"alpha": 1.0, "val_accuracy": 10.0}]})]
    assert "| TaskRes | 2 shot 1/1（全网格 1） | — |" in "".join(search_notes({"TaskRes": flat}))


def test_the_hyper_parameter_cell_shows_what_was_chosen_not_the_searchs_bookkeeping():
    from coop.methods import tip_adapter as tip
    from coop.report.sections import _hyper

    import torch

    g = torch.Generator().manual_seed(0)
    f, keys = torch.randn(8, 16, generator=g), torch.randn(12, 16, generator=g)
    found = tip.search_alpha_beta(f, torch.arange(8) % 4, torch.randn(4, 16, generator=g), keys,
                                  torch.nn.functional.one_hot(torch.arange(12) % 4, 4).float(), search_step=(4, 3))
    cell = _hyper([{"seed": 1, "hyperparameters": tip._hyper(found)}])
    assert cell.count("=") == 2 and not any(k in cell for k in ("tied", "edge", "grid_points", "val_accuracy"))
