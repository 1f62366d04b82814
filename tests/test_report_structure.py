"""report/REPORT.md as a course report (issue 13): its sections, references and figures exist, no
placeholder is left, the departures table is the code's, and scripts/report.py fills the analysis and
the conclusion from result files."""
from __future__ import annotations

import re

import numpy as np

from coop.methods.departures import markdown_zh
from coop.report.document import departures_block, write_report
from coop.runs.results import coop_result_path, zeroshot_result_path
from conftest import ROOT, write_fake_result

REPORT = ROOT / "report" / "REPORT.md"
SECTIONS = ["## 摘要", "## 1. 引言", "## 2. 代码路径", "## 3. CLIP RN50 里的 Transformer", "## 4. 视觉与语言如何一起分类",
            "## 5. 方法：CoOp", "## 6. 实验设置", "## 7. 结果", "## 8. 分析与讨论", "## 9. 加分项", "## 10. 结论",
            "## 参考文献"]


def test_sections_in_order_and_every_reference_cited():
    text = REPORT.read_text(encoding="utf-8")
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    refs = text.split("## 参考文献")[1]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", refs, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10
    body = text.split("## 参考文献")[0]
    for n in numbers:  # every reference is cited in the text
        assert f"[{n}]" in body, n
    for name in ("CLIP", "CoOp", "CoCoOp", "Parameter-Efficient Transfer Learning", "LoRA", "CLIP-Adapter",
                 "Tip-Adapter", "Deep Residual Learning", "Attention Is All You Need", "Fei-Fei"):
        assert name in refs


def test_figures_exist_and_nothing_is_left_to_fill():
    text = REPORT.read_text(encoding="utf-8")
    for link in re.findall(r"\]\(((?:figures)/[^)]+)\)", text):
        assert (REPORT.parent / link).is_file(), link
    assert not re.search(r"TODO|TBD|XXX|待补|待填", text)
    assert text.count("随机权重") <= 2  # one statement about random weights, not five


def test_departures_table_is_the_codes():
    assert departures_block(REPORT.read_text(encoding="utf-8")) == markdown_zh()


def test_report_script_fills_analysis_and_conclusion(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["ant", "bass", "chair"]

    n = 600  # made-up test images, 200 per class

    def rec(kind, k, s, acc):
        labels = np.arange(n) % 3
        right = np.zeros(n, dtype=bool)
        right[rng.permutation(n)[: round(acc * n / 100)]] = True
        pred = np.where(right, labels, (labels + 1) % 3)
        return {"kind": kind, "method": "Zero-shot CLIP" if kind == "zeroshot" else "CoOp", "accuracy": acc,
                "per_class_accuracy": {c: round(100.0 * float(right[labels == i].mean()), 4)
                                       for i, c in enumerate(classes)}, "classnames": classes,
                "test_predictions": {"index": list(range(n)), "label": labels.tolist(), "pred": pred.tolist()},
                "n_test": n, "shots": k, "seed": s, "model": {"name": "RN50", "sha256": "a" * 64},
                "random_weights": False, "split": {"file": "s.json", "sha256": "b" * 64}, "config": {},
                "environment": {}, "wall_time_s": 1.0, "nearest_words": [[["photo", 0.5]]]}

    write_fake_result(zeroshot_result_path(tmp_path), rec("zeroshot", 0, None, 86.0))
    for k, accs in {1: [84.0, 85.0, 83.5], 2: [87.0, 88.0, 87.5], 4: [89.0, 90.0, 89.5]}.items():
        for s, a in enumerate(accs, 1):
            write_fake_result(coop_result_path(tmp_path, k, s), rec("coop", k, s, a))
    out = write_report(tmp_path, tmp_path / "REPORT.md", figures=False)
    text = out.read_text(encoding="utf-8")
    analysis = text.split("### 7.9")[1].split("### 7.10")[0]
    conclusion = text.split("### 7.10")[1]
    assert "1 shot 时 CoOp 为 84.17%" in analysis and "相对零样本" in analysis and "1→2 shot" in analysis
    assert "4 shot 89.50%" in conclusion and "RN50" in conclusion and "平均最高" not in conclusion


# Phrases that state an outcome only a real run can show. The hand-written parts of the report (all
# but the generated results part) must not contain them; the generated part decides them from data.
OUTCOME_PHRASES = ["复现了", "结果差异也最大", "差异最大", "不同种子学到的最近词也不同", "明显优于", "显著优于",
                   "显著提升", "胜过手写提示", "超过了零样本", "低于零样本", "高于零样本", "我们发现", "实验表明",
                   "结果表明", "准确率为", "提升了", "下降了"]


def test_no_hand_written_sentence_states_an_outcome_of_a_real_run():
    text = REPORT.read_text(encoding="utf-8")
    hand = text.split("<!-- results:begin -->")[0] + text.split("<!-- results:end -->")[1]
    found = [p for p in OUTCOME_PHRASES if p in hand]
    assert not found, f"hand-written sentences state outcomes of a run: {found}"
    numbers = re.findall(r"(?:准确率|accuracy)[^。\n]{0,16}?\d+\.\d+\s*%", hand)  # an accuracy typed in by hand
    assert not numbers, numbers


def test_the_outcome_check_can_fail(tmp_path):
    """The list catches what it is for: the old discussion's claim about the seed spread."""
    old = "种子间的标准差可以看出这种不稳定：1 shot 时不同种子抽到的图像不同，结果差异也最大。"
    assert any(p in old for p in OUTCOME_PHRASES)


def test_section_9_4_names_the_phrases_the_generated_text_writes():
    """9.4 promises what 7.9/7.10 write for the non-inferiority test; the code must write exactly that."""
    import inspect

    from coop.report import analysis
    from coop.report.comparisons import NI_MARGIN

    section = REPORT.read_text(encoding="utf-8").split("### 9.4")[1].split("## 10.")[0]
    code = inspect.getsource(analysis.noninferiority_sentence)
    for phrase in ("非劣于 CoOp", "不能说"):
        assert phrase in section and phrase in code
    assert f"−{NI_MARGIN:g} 个百分点" in section
