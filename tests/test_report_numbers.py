"""The same numbers everywhere (issue 38): docs/speed.md, README's Timings and the report quote one
measured table (results/realsize.json), one projection (check_env's, kept in that JSON) and one benchmark
(results/bench.json); each is checked here against its JSON, and older figures live only in speed.md's
dated history."""
from __future__ import annotations

import json
import re

from conftest import ROOT, load_script
from coop.report.cost import BENCH, REALSIZE, duration, load

SPEED = ROOT / "docs" / "speed.md"
README = ROOT / "README.md"
REPORT = ROOT / "report" / "REPORT.md"


def _about(seconds: float) -> str:
    return f"about {round(seconds / 600) * 10} min"


def test_the_measured_table_is_the_jsons():
    text = SPEED.read_text(encoding="utf-8")
    table = text.split("<!-- realsize-table:begin -->")[1].split("<!-- realsize-table:end -->")[0].strip().splitlines()
    assert table == load(REALSIZE)["table"]


def test_the_one_projection_is_check_envs_from_the_kept_check():
    projection = load_script("make_figures").sweep_projection(load(REALSIZE))
    fresh, views = _about(projection["fresh"]), _about(projection["views4"])
    assert (fresh, views) == ("about 280 min", "about 60 min")  # what the texts below say, recomputed
    speed = SPEED.read_text(encoding="utf-8")
    assert f"**{fresh} with fresh crops**" in speed and f"**{views} with `--views 4`**" in speed
    timings = README.read_text(encoding="utf-8").split("## Timings")[1].split("\n## ")[0]
    assert f"{fresh} here with fresh crops" in " ".join(timings.split()) and f"{views.split()[1]} min with `--views 4`" in timings
    report = REPORT.read_text(encoding="utf-8")
    assert f"约 {fresh.split()[1]} min（`--views 4` 约 {views.split()[1]} min" in report


def test_the_readme_timings_are_the_measured_rows():
    rows = {r["stage"]: r for r in load(REALSIZE)["rows"]}
    timings = README.read_text(encoding="utf-8").split("## Timings")[1].split("\n## ")[0]
    for stage, label in [("zero-shot (single prompts)", "zero-shot: 2,465 test images encoded"),
                         ("CoOp 4 shots, seed 1: crops encoded", "CoOp 4 shots: 40,000 crops encoded"),
                         ("CoOp 4 shots, seed 1: training", "CoOp 4 shots: 1,200 training steps")]:
        r = rows[stage]
        assert f"| {label} | {duration(r['measured_s'])} | {duration(r['projected_s'])} |" in timings, stage
    baselines = sum(r["measured_s"] for r in rows.values() if r["kind"] == "baselines" and "zero-shot" not in r["stage"])
    assert f"| {duration(baselines)} |" in timings
    shares, tot = load(REALSIZE)["totals"]["shares"], load(REALSIZE)["totals"]
    assert f"encoding images takes {100 * shares['encoding']:.0f}%" in " ".join(timings.split())
    mem = load(BENCH)["step_tensor_memory"]
    assert f"{mem['ours']['peak_mb']:.0f} MiB of tensors" in timings and f"{mem['naive']['peak_mb']:,.0f} MiB" in timings
    assert f"Peak memory {tot['peak_rss_mb'] / 1024:.1f} GB" in " ".join(timings.split()) and f"{tot['disk_mb']['cache']:.0f} MiB" in timings


def test_the_benchmark_table_is_the_jsons_measured_rows():
    bench = load(BENCH)
    text = SPEED.read_text(encoding="utf-8")
    section = text.split("### The benchmark table (2026-11-24)")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert rows and all(r in bench["table"] for r in rows) and not [r for r in rows if r.startswith("| (e)")]
    mem = bench["step_tensor_memory"]
    assert f"**naive {mem['naive']['peak_mb']:,.0f} MiB**" in text and f"**{mem['ours']['peak_mb']:.0f} MiB**" in text
    assert f"({mem['weights_mb']:.0f} MiB in fp32)" in text


def test_older_figures_live_only_in_the_dated_history():
    text = SPEED.read_text(encoding="utf-8")
    current, history = text.split("## History: older figures, dated")[0], text.split("## History: older figures, dated")[1]
    for old in ("185 min", "125.8", "59.6", "75 min", "1-2 hours", "2-3 hours", "7.69"):
        assert old not in current and old in history, old


def test_the_report_quotes_the_benchmark_and_the_base_to_new_projection():
    from coop.data.split import read_split
    from coop.pipeline.base2new_projection import base2new_counts, project_base2new

    bench = load(ROOT / "results" / "bench_bounded.json")  # measured with the bound inside the block (section 9.1)
    report = REPORT.read_text(encoding="utf-8")
    nine3 = re.sub(r"\n\s*", "", report.split("### 9.3")[1].split("### 9.4")[0])  # wrapped lines joined
    assert "results/bench_bounded.json" in nine3
    text = bench["text_fwd_bwd"]
    ours = text["ours"]["median_s"]
    for mod in ("adapter", "lora"):
        t = text[f"ours+{mod}"]["median_s"]
        assert f"{1000 * t:.0f} ms（+{100 * (t / ours - 1):.0f}%）" in nine3, mod
    assert f"CoOp {1000 * ours:.0f} ms" in nine3
    meas = load(REALSIZE)["check_env"]["measurements"]
    split = read_split(ROOT / "splits" / "caltech101.json")
    counts = base2new_counts(len(split.test), len(split.classnames), seeds=[1, 2, 3], views=4)
    proj = project_base2new(counts, meas["base2new_units"], meas["units"]["fp32"]["crops_img_s"], meas["load_s"])
    ten = re.sub(r"\n\s*", "", report.split("## 附录 D")[1].split("## 参考文献")[0])
    assert f"约 {proj['fresh']['total_s'] / 60:,.0f} min" in ten and f"约 {proj['views4']['total_s'] / 60:.0f} min" in ten


def test_the_report_quotes_the_noninferiority_chances_the_code_computes():
    """The chances that section 9.4's test concludes with 3 seed pairs per shot count and with the 9 pooled, said once, in appendix B."""
    from coop.report.stats import noninferiority_power

    nine4 = re.sub(r"\n\s*", "", REPORT.read_text(encoding="utf-8").split("## 附录 B")[1].split("## 参考文献")[0])
    single = nine4.split("第 9.4 节先在每个种子内")[0].split("- **非劣效**")[1]
    pooled = nine4.split("第 9.4 节先在每个种子内")[1].split("\n")[0]
    for sd, shown in ((0.25, "0.25 个百分点时"), (0.5, "0.5 时"), (1.0, "1.0 时")):
        assert f"{shown}约 {100 * noninferiority_power(sd, 3):.0f}%" in single, sd
    for sd, shown in ((0.5, "0.5 时"), (1.0, "1.0 时"), (1.5, "1.5 时")):  # a seed's mean of 3: sd / sqrt(3)
        assert f"{shown}约 {100 * noninferiority_power(sd / 3 ** 0.5, 3):.0f}%" in pooled, sd
    nine4 = REPORT.read_text(encoding="utf-8").split("### 9.4")[1].split("## 10.")[0]  # the reason it averages, in numbers
    assert (f"0.5 个百分点时，单个 shot 数通过的机会约 {100 * noninferiority_power(0.5, 3):.0f}%，"
            f"三个 shot 数平均后约 {100 * noninferiority_power(0.5 / 3 ** 0.5, 3):.0f}%") in nine4


def test_the_published_base_to_new_table_is_the_codes():
    from coop.report.published import BASE2NEW_TABLE

    ten = REPORT.read_text(encoding="utf-8").split("## 附录 D")[1].split("## 参考文献")[0]
    names = {"Zero-shot CLIP": "零样本 CLIP", "CoOp": "CoOp", "CoCoOp": "CoCoOp"}
    for m, (b, n, h) in BASE2NEW_TABLE.items():
        assert f"| {names[m]} | {b:.2f} | {n:.2f} | {h:.2f} |" in ten


def test_every_json_quoted_is_valid():
    for f in (REALSIZE, BENCH):
        assert isinstance(json.loads(f.read_text(encoding="utf-8")), dict)
    assert re.search(r"step_tensor_memory", BENCH.read_text(encoding="utf-8"))


def test_the_adapters_real_size_costs_are_the_jsons_in_the_report_and_in_docs():
    """One set of numbers (issue 38, 39): results/realsize_adapters.json, section 11 and docs/baselines.md agree."""
    import json

    from coop.report.cost import duration

    data = json.loads((ROOT / "results" / "realsize_adapters.json").read_text(encoding="utf-8"))
    report = REPORT.read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8")
    for row in data["rows"]:
        assert f"{row['method']} {duration(row['fit_s'])}" in report
        cell = re.search(rf"^\| {re.escape(row['method'])} \| (?:about )?([\d.]+) s \|", docs, re.M)
        assert cell and abs(float(cell.group(1)) - row["fit_s"]) < 0.05 + 0.5 * (row["fit_s"] >= 10), row
