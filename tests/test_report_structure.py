"""report/REPORT.md as a course report (issue 13): its sections, references and figures exist, no
placeholder is left, the departures table is the code's, and scripts/report.py fills the analysis and
the conclusion from result files."""
from __future__ import annotations

import json
import re
import subprocess

import numpy as np

from coop.report.departures_zh import appendix_departures_zh
from coop.report.document import departures_block, write_report
from coop.runs.results import coop_result_path, zeroshot_result_path
from conftest import ROOT, write_fake_result

REPORT = ROOT / "report" / "REPORT.md"
TEMPLATE = ROOT / "report" / "REPORT.template.md"  # REPORT.md's hand-written text, with the marked blocks
SECTIONS = ["## 摘要", "## 1. 引言", "## 2. 代码走读", "## 3. Transformer 在 CLIP 中的作用", "## 4. 视觉与语言如何一起分类",
            "## 5. 方法：CoOp", "## 6. 实验设置", "## 7. 结果", "## 8. 分析与讨论", "## 9. 加分项", "## 10. 结论",
            "## 附录 A", "## 附录 B", "## 附录 C：计算代价", "## 附录 D：基类到新类", "## 参考文献"]


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
    source = TEMPLATE.read_text(encoding="utf-8")
    hand = source.split("<!-- results:begin -->")[0] + source.split("<!-- results:end -->")[1]
    assert hand.count("随机权重") <= 3  # said where a random-weight model appears (2.1, 11's table), not everywhere


def test_departures_table_is_the_codes():
    assert departures_block(TEMPLATE.read_text(encoding="utf-8")) == appendix_departures_zh()


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
    conclusion = text.split("### 7.10")[1].split("## 8.")[0]
    assert "零样本 CLIP 为 86.00%" in analysis and "观测差 -1.83、+1.50、+3.50" in analysis and "1→2 shot" in analysis
    assert "84.17% → 87.50% → 89.50%" in analysis  # the shot trend, as observed
    assert "4 shot 89.50%" in conclusion and "RN50" in conclusion and "平均最高" not in conclusion


# Phrases that state an outcome only a real run can show. The hand-written parts of the report (all
# but the generated results part) must not contain them; the generated part decides them from data.
OUTCOME_PHRASES = ["复现了", "结果差异也最大", "差异最大", "不同种子学到的最近词也不同", "明显优于", "显著优于",
                   "显著提升", "胜过手写提示", "超过了零样本", "低于零样本", "高于零样本", "我们发现", "实验表明",
                   "结果表明", "准确率为", "提升了", "下降了"]


def test_no_hand_written_sentence_states_an_outcome_of_a_real_run():
    text = TEMPLATE.read_text(encoding="utf-8")
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

    from coop.report import noninferiority_zh
    from coop.report.comparisons import NI_MARGIN

    section = REPORT.read_text(encoding="utf-8").split("### 9.4")[1].split("## 10.")[0]
    code = inspect.getsource(noninferiority_zh.noninferiority_sentence)
    for phrase in ("非劣于 CoOp", "不能说"):
        assert phrase in section and phrase in code
    assert f"−{NI_MARGIN:g} 个百分点" in section


def _first_citation_order(text: str):
    """Reference numbers in the order of their first citation in ``text`` (the list itself left out)."""
    body = text.split("## 参考文献")[0]
    order = []
    for m in re.finditer(r"\[(\d{1,2})\]", body):
        n = int(m.group(1))
        if n not in order:
            order.append(n)
    return order


def test_references_are_numbered_in_order_of_first_citation(tmp_path):
    """Issue 29: [1], [2], ... first appear in that order -- in the hand-written report, and in the report
    with a generated results part put in (the generated text cites only references first cited before
    the results markers, under the report's numbers, with the report's entries)."""
    from coop.report.references import REFERENCES

    text = REPORT.read_text(encoding="utf-8")
    refs = text.split("## 参考文献")[1]
    entries = {int(m.group(1)): " ".join(x.strip() for x in m.group(2).splitlines())
               for m in re.finditer(r"^(\d+)\. (.*?)(?=^\d+\. |\Z)", refs, flags=re.M | re.S)}
    assert _first_citation_order(text) == list(range(1, len(entries) + 1))
    before_results = TEMPLATE.read_text(encoding="utf-8").split("<!-- results:begin -->")[0]
    for key, (n, entry) in REFERENCES.items():
        assert entries[n] == entry, key
        assert f"[{n}]" in before_results, f"{key} [{n}] must be first cited before the generated part"

    # a rendered report (real-looking records, two methods so that every generated citation appears)
    from test_report import make_results

    d = make_results(tmp_path / "results", mods=("lora",))
    copy = tmp_path / "REPORT.md"
    copy.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")  # a marked copy: its blocks are filled
    write_report(d, copy, figures=False)
    rendered = copy.read_text(encoding="utf-8")
    generated = rendered.split("<!-- results:begin -->")[1].split("<!-- results:end -->")[0]
    cited = set(re.findall(r"\[\d{1,2}\]", generated))
    assert f"[{REFERENCES['piaggio'][0]}]" in cited and cited <= {f"[{n}]" for n, _ in REFERENCES.values()} | {"[2]"}
    assert _first_citation_order(rendered) == list(range(1, len(entries) + 1))


def test_the_order_check_can_fail():
    assert _first_citation_order("a [2] b [1] c [2]") == [2, 1]


def test_a_standalone_rendering_is_the_whole_report_with_every_reference(tmp_path):
    """Issue 38: a file without markers (the demo's) gets the whole report, so its citations and section
    numbers are its own."""
    from test_report import make_results

    d = make_results(tmp_path / "results", mods=("lora",))
    out = write_report(d, tmp_path / "alone.md", figures=False)
    text = out.read_text(encoding="utf-8")
    listed = [int(n) for n in re.findall(r"^(\d+)\. ", text.split("## 参考文献")[1], flags=re.M)]
    cited = sorted({int(n) for n in re.findall(r"\[(\d{1,2})\]", text.split("## 参考文献")[0])})
    assert listed == cited == list(range(1, 22))
    assert "<!-- results:begin -->" not in text and "### 7.9" in text and "## 9. 加分项" in text


def test_the_context_init_is_stated_the_same_way_everywhere():
    """Issue 29: docs said N(0, 0.02) and the report N(0, 0.02²); CoOp's nn.init.normal_(std=0.02) is a
    standard deviation of 0.02, written N(0, 0.02²) wherever the project's own text states it."""
    files = [ROOT / "README.md", REPORT, ROOT / "coop" / "methods" / "departures.py", *sorted((ROOT / "docs").glob("*.md"))]
    seen = 0
    for f in files:
        for m in re.finditer(r"N\(0, 0\.02(.)", f.read_text(encoding="utf-8")):
            seen += 1
            assert m.group(1) == "²", f"{f.name}: {m.group(0)}"
    assert seen >= 3
    assert "标准差 0.02" in REPORT.read_text(encoding="utf-8")


def test_the_report_names_the_benchmark_files_as_bench_writes_them():
    """Issue 29: bench.py writes results/bench-<date>.json; results/bench.json is the committed reference."""
    import inspect

    from conftest import load_script

    text = REPORT.read_text(encoding="utf-8")
    named = set(re.findall(r"results/bench[^`\s，。；）)]*", text))
    assert "results/bench.json" in named  # the reference the numbers are quoted from (appendix C, 9.3)
    # no file bench.py does not write: the reference, its dated default, or a committed one it wrote with --out
    for f in named - {"results/bench.json", "results/bench-<日期>.json"}:
        assert json.loads((ROOT / f).read_text(encoding="utf-8"))["kind"] == "bench", f
        assert subprocess.run(["git", "ls-files", "--error-unmatch", f], cwd=ROOT, capture_output=True).returncode == 0, f
    assert 'f"bench-{' in inspect.getsource(load_script("bench").main)


def test_departure_2_does_not_say_coop_computes_logits_in_fp32():
    """Issue 29: the Chinese of departure 2 read as if CoOp also cast its logits to fp32."""
    from coop.methods.departures import DEPARTURES

    d = next(d for d in DEPARTURES if d.key == "precision")
    coop_part, ours = d.title_zh.split("。")[:2]
    assert "logits" in coop_part and "半精度" in coop_part and "fp32" not in coop_part.split("CoOp 默认")[1]
    assert "我们的 --precision fp16" in ours and "CoOp 不做" in ours
    assert "which CoOp does not do" in d.title


def test_the_training_budget_in_steps_is_the_codes():
    """Section 5.2's 150 / 600 / 1,200 steps = epochs x batches per epoch of coop.methods.train.batches."""
    from coop.methods.train import batches
    from coop.methods.train_config import TrainConfig, coop_epochs

    recipe = REPORT.read_text(encoding="utf-8").split("### 5.2")[1].split("### 5.3")[0]
    for k in (1, 2, 4):
        steps = coop_epochs(k) * len(batches(100 * k, TrainConfig().batch_size))
        assert f"**{steps:,} 步**" in recipe, (k, steps)
    assert "训练不足" in REPORT.read_text(encoding="utf-8").split("## 8.")[1].split("## 9.")[0]


def test_section_9_names_the_group_for_what_it_is():
    """Issue 29: the group is the names CLIP's BPE splits into several tokens, not "rare names"."""
    text = REPORT.read_text(encoding="utf-8")
    nine = text.split("## 9. ")[1].split("## 10.")[0]
    assert "含切分词的类名" in nine and "罕见的类名" not in text and "少见的类名" not in text
    assert "“罕见”与类名的其他性质" not in text
    import inspect

    from coop.report import sections

    code = inspect.getsource(sections.block_mod_evidence)
    assert "含切分词的类名" in code and "罕见" not in code
    nine3 = nine.split("### 9.3")[1].split("### 9.4")[0]
    assert "对输入的梯度" in nine3 and "对分支自身参数的梯度" in nine3  # the backward pass through the branch


def test_section_8_states_the_expectations_its_generated_check_uses():
    """Section 8's ranges are the ones coop.report.expectations checks the records against (said once, in code)."""
    from coop.report.expectations import EXPECTED, expected_words

    eight = TEMPLATE.read_text(encoding="utf-8").split("## 8.")[1].split("## 9.")[0]
    for k in EXPECTED:
        assert f"{k} shot 时 CoOp {expected_words(k)}" in eight, k
    assert "<!-- expectations:begin -->" in eight
