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
    d = make_results(tmp_path / "results", random_weights=True, shots=(2,))
    lines = E.expectations(load_results(d))
    assert "随机权重" in lines[0]  # no 1- or 4-shot runs: only the training-accuracy reading, if any
    assert not any("预期 CoOp" in line for line in lines)
    assert E.expectations({}) == [E.STATUS]


def test_a_training_budget_other_than_coops_is_said(tmp_path):
    d = make_results(tmp_path / "results")
    loaded = load_results(d)
    assert not any("训练预算" in line for line in E.expectations(loaded))  # the fake records train CoOp's epochs
    for r in loaded["coop"]["CoOp"]:
        r.setdefault("config", {})["epochs"] = 10
    said = [line for line in E.expectations(loaded) if "训练预算" in line]
    assert len(said) == 1 and "1 shot 10 个 epoch（CoOp 50 个）" in said[0] and "4 shot 10 个 epoch（CoOp 100 个）" in said[0]


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
    line = E.longer_line(loaded, loaded["coop"]["CoOp"])
    assert "在自己的训练图像上（测试视图）加长 40.00%、默认 60.00%，加长训练反而更低" in line and "解读前需要检查" in line
    assert "差 +0.00 个百分点" in line  # the same test predictions: the paired difference is 0
    for x in longer:
        x["fit_view"] = dict(x["fit_view"], correct=70, accuracy=70.0)
    assert "加长 70.00%、默认 60.00%；" in E.longer_line(loaded, loaded["coop"]["CoOp"])
