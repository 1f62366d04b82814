"""Section 8's expectations, checked against the records by coop.report.expectations (issue 38)."""
from __future__ import annotations

import pytest

from coop.report import expectations as E
from coop.report.document import write_report
from coop.runs.results import load_results
from test_report import make_results


@pytest.mark.parametrize("diff,ci,where,allows", [
    (3.0, (2.5, 4.0), "在预期之内", "重叠"),          # inside, interval inside
    (6.0, (5.5, 7.0), "高于预期", "之上"),            # interval wholly above the range
    (0.5, (-1.0, 1.5), "低于预期", "之下"),           # interval wholly below the range
    (1.0, (-8.0, 9.0), "低于预期", "覆盖整个预期范围"),  # too wide to tell
])
def test_each_observation_is_placed_against_the_range_and_its_interval(diff, ci, where, allows):
    said = E._against(diff, ci, 2.0, 5.0)
    assert where in said and allows in said


def test_records_fill_the_block_with_their_own_numbers(tmp_path):
    d = make_results(tmp_path / "results")
    loaded = load_results(d)
    lines = E.expectations(loaded)
    assert lines[0].startswith("**与记录对照**") and "随机权重" not in lines[0]
    shots = [line for line in lines if line.startswith("- ") and "预期 CoOp" in line]
    assert [line.split(" ")[1] for line in shots] == [f"{k}" for k in sorted(E.EXPECTED)]
    out = write_report(d, tmp_path / "R.md", figures=False).read_text(encoding="utf-8")
    eight = out.split("## 8.")[1].split("## 9.")[0]
    assert all(line in eight for line in lines) and E.STATUS not in eight


def test_random_weights_are_said_and_no_records_leave_the_status(tmp_path):
    d = make_results(tmp_path / "results", random_weights=True, shots=(8,))
    lines = E.expectations(load_results(d))
    assert "随机权重" in lines[0]  # no run at a shot count section 8 predicts: only the training-accuracy reading, if any
    assert not any("预期 CoOp" in line for line in lines)
    assert E.expectations({}) == [E.STATUS]


def test_a_training_budget_other_than_coops_is_said(tmp_path):
    d = make_results(tmp_path / "results")
    loaded = load_results(d)
    assert not any("训练预算" in line for line in E.expectations(loaded))  # the fake records train CoOp's epochs
    for r in loaded["coop"]["CoOp"]:
        r.setdefault("config", {})["epochs"] = 10
    said = [line for line in E.expectations(loaded) if "训练预算" in line]
    assert len(said) == 1 and "1 shot 10 个 epoch（CoOp 默认 50 个 epoch）" in said[0] and "4 shot 10 个 epoch（CoOp 默认 100 个 epoch）" in said[0]


def test_section_4s_forecast_is_checked_on_the_weakest_classes():
    """Zero-shot's weakest classes against the share of names BPE splits (dalmatian -> dalmati + an)."""
    common = ["dog", "cat", "car", "tree", "house", "bird", "fish", "boat", "chair", "lamp", "book", "cup", "shoe",
              "hat", "ball", "door", "key", "pen", "bed"]
    per = {"dalmatian": 10.0, **{c: 50.0 + i for i, c in enumerate(common)}}
    said = E.weakest_line({"per_class_accuracy": per})
    assert "最弱的 10 类中有 1 类的名字含被 BPE 切开的词（dalmatian）" in said and "全部 20 类中占 1 类（5%）" in said
    per["dalmatian"] = 99.0  # now among the strongest
    assert "最弱的 10 类中有 0 类" in E.weakest_line({"per_class_accuracy": per})
    assert E.weakest_line({"per_class_accuracy": {"dog": 1.0}}) == ""  # too few classes to say anything


def test_the_longer_training_check_says_how_the_longer_runs_fit_their_own_images(tmp_path):
    """Graders: the longer run's accuracy on its own training images fell below the default run's and the text
    never said so. Section 8's check of under-training gives the paired test difference and both runs'
    accuracy on their training images (test view), and says when the longer one is lower."""
    import copy

    from coop.report.stats import sign_test_p
    from coop.runs.results import LONGER

    loaded = load_results(make_results(tmp_path / "results"))
    base = [r for r in loaded["coop"]["CoOp"] if int(r["shots"]) == 1]
    longer = []
    for r in base:
        r["fit_view"] = {"images": 100, "correct": 60, "accuracy": 60.0, "zeroshot_correct": 50, "zeroshot_accuracy": 50.0}
        x = copy.deepcopy(r)
        x["config"] = {**(r.get("config") or {}), "variant": LONGER, "epochs": 100}
        x["method"] = "CoOp [epochs=100]"
        x["fit_view"] = dict(r["fit_view"], correct=40, accuracy=40.0)
        longer.append(x)
    loaded["coop"]["CoOp [epochs=100]"] = longer
    line = E.longer_line(loaded, loaded["coop"]["CoOp"])  # records without per-image answers: numbers, no verdict
    assert "在自己的训练图像上（测试视图）加长 40.00%、默认 60.00%（没有逐图的记录，不作检验）" in line and "反而更低" not in line
    assert "差 +0.00 个百分点" in line  # the same test predictions: the paired difference is 0
    zs = [i % 2 == 0 for i in range(100)]
    for r, x in zip(base, longer):  # per image: the longer runs lose 20 images the default ones get right
        r["fit_view"].update(right=[i < 60 for i in range(100)], zeroshot_right=zs)
        x["fit_view"].update(right=[i < 40 for i in range(100)], zeroshot_right=zs)
    line = E.longer_line(loaded, loaded["coop"]["CoOp"])
    n = len(longer)
    assert (f"加长 40.00%、默认 60.00%，加长反而更低（只有加长答对 0 张、只有默认答对 {20 * n} 张，精确符号检验 p = "
            f"{sign_test_p(0, 20 * n):.3g}）") in line and "解读前需要检查" in line
    for x in longer:  # 1 image fewer a run: within the noise, not called lower
        x["fit_view"].update(right=[i < 59 for i in range(100)], correct=59, accuracy=59.0)
    line = E.longer_line(loaded, loaded["coop"]["CoOp"])
    assert sign_test_p(0, n) >= 0.05
    assert f"加长 59.00%、默认 60.00%，分不出（只有加长答对 0 张、只有默认答对 {n} 张" in line and "反而更低" not in line
    from coop.report.interpret import fit_reading  # the reading above and this check, reconciled in words

    assert 1 not in fit_reading(loaded["coop"]["CoOp"])[1].get("under", []) and "以这个检验为准" not in line
    mean = sum(r["accuracy"] for r in base) / len(base)  # training images fitted as well as the test ones, and
    for r in base:                                       # no better than zero-shot there: "under-training?"
        right = [i < round(mean) for i in range(100)]
        r["fit_view"].update(right=right, zeroshot_right=right, correct=sum(right), zeroshot_correct=sum(right),
                             accuracy=float(sum(right)), zeroshot_accuracy=float(sum(right)))
    for x in longer:
        x["fit_view"].update(zeroshot_right=base[0]["fit_view"]["zeroshot_right"])
    assert 1 in fit_reading(loaded["coop"]["CoOp"])[1]["under"]
    assert "（上一条的读数只是相容，以这个检验为准）" in E.longer_line(loaded, loaded["coop"]["CoOp"])
    longer[0]["fit_view"]["zeroshot_right"] = [not z for z in longer[0]["fit_view"]["zeroshot_right"]]  # other images
    assert "（没有逐图的记录，不作检验）" in E.longer_line(loaded, loaded["coop"]["CoOp"])
