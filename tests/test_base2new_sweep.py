"""The base-to-new protocol end to end as the user meets it (issue 31): ``run_all --demo --protocol base2new``
writes validated records of both halves, a figure and a report section; reruns skip, changed inputs redo;
its records never mix with the all-class ones; a base-to-new context is not evaluated on all classes."""
from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from coop.data.base2new import harmonic_mean
from coop.report.base2new import compare_h, load_base2new, summary, verdicts
from coop.runs.results import load_results, read_result
from conftest import load_script

run_all, zeroshot = load_script("run_all"), load_script("zeroshot")
ARGV = ["--demo", "--protocol", "base2new", "--seeds", "1 2", "--epochs", "2", "--base2new-shots", "2",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def b2n(tmp_path_factory):
    out = tmp_path_factory.mktemp("b2n")
    assert run_all.main(ARGV + ["--results", str(out)]) == 0
    return out


def test_the_demo_protocol_writes_both_halves_h_a_figure_and_a_report(b2n):
    folder = b2n / "demo" / "base2new"
    recs = load_base2new(folder)
    assert set(recs) == {"Zero-shot CLIP", "CoOp", "CoCoOp"}
    assert [r["seed"] for r in recs["CoCoOp"]] == [1, 2] and len(recs["Zero-shot CLIP"]) == 1
    split = json.loads((b2n / "demo" / "split.json").read_text())
    n_cls = len({lab for _, lab, _ in split["train"]})
    for r in (r for rs in recs.values() for r in rs):
        base, new = r["halves"]["base"], r["halves"]["new"]
        assert len(base["classnames"]) == (n_cls + 1) // 2 and len(new["classnames"]) == n_cls // 2
        assert base["split_labels"] == list(range((n_cls + 1) // 2))  # base = the first half in split order
        assert base["n_test"] + new["n_test"] == len(split["test"])
        assert r["H"] == pytest.approx(harmonic_mean(base["accuracy"], new["accuracy"]))
        assert max(base["test_predictions"]["label"]) < len(base["classnames"])  # relabelled from 0
    for method in ("coop", "cocoop"):
        rec = read_result(folder / method / "shots2_seed1.json")
        assert rec["config"]["epochs"] == 2 and rec["config"]["batch_size"] == (1 if method == "cocoop" else 32)
    assert (folder / "base2new.png").is_file()
    assert not (folder / "REPORT_base2new.md").exists()  # one report: its section 10 (issue 38)
    text = (b2n / "demo" / "REPORT_demo.md").read_text()
    assert "随机权重" in text and "CoCoOp − CoOp" in text and "95.84" in text  # banner, verdicts, published table
    assert len(verdicts(recs)) == 9  # 3 pairs x (base, new, H)


def test_reruns_skip_and_changed_inputs_redo(b2n, tmp_path, capsys):
    shutil.copytree(b2n, tmp_path / "r")
    argv = ARGV + ["--results", str(tmp_path / "r")]
    capsys.readouterr()
    assert run_all.main(argv) == 0
    assert "0 to do" in capsys.readouterr().err
    split = json.loads((tmp_path / "r" / "demo" / "split.json").read_text())
    Image.new("RGB", (40, 40), (0, 200, 0)).save(tmp_path / "r" / "demo" / "data" / "101_ObjectCategories" / split["test"][0][0])
    assert run_all.main(argv) == 0
    assert "5 to do" in capsys.readouterr().err  # every run read that test image


def test_base2new_records_never_join_the_all_class_ones(b2n, tmp_path):
    shutil.copytree(b2n, tmp_path / "r")
    results = tmp_path / "r" / "demo"
    (results / "coop").mkdir()
    for ext in (".json", ".pt"):  # a CoOp base-to-new run put among the all-class CoOp runs
        shutil.copy(results / "base2new" / "coop" / f"shots2_seed1{ext}", results / "coop" / f"shots2_seed1{ext}")
    loaded = load_results(results)
    assert not loaded["coop"] and any("base2new" in n for n in loaded["notes"])


def test_a_base2new_context_is_not_evaluated_on_all_classes(b2n, capsys):
    results = b2n / "demo"
    argv = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(results / "elsewhere"), "--cache-dir", str(results / "cache"), "--device", "cpu",
            "--context", str(results / "base2new" / "cocoop" / "shots2_seed1.pt")]
    assert zeroshot.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "base-to-new" in err[0]


def test_h_interval_pairs_seeds_and_halves(b2n):
    recs = load_base2new(b2n / "demo" / "base2new")
    res = compare_h(recs["CoCoOp"], recs["CoOp"], n_boot=200)
    s = {m: summary(recs[m]) for m in ("CoCoOp", "CoOp")}  # the H of the seed-averaged halves, as the table shows
    assert res["seeds"] == 2 and res["diff"] == pytest.approx(s["CoCoOp"]["H"]["mean"] - s["CoOp"]["H"]["mean"], abs=1e-6)
    means = [sum(r["halves"][p]["accuracy"] for r in recs["CoOp"]) / 2 for p in ("base", "new")]
    assert s["CoOp"]["H"]["mean"] == pytest.approx(harmonic_mean(*means))
    assert res["ci"][0] <= res["diff"] <= res["ci"][1]
    same = compare_h(recs["CoOp"], recs["CoOp"], n_boot=200)
    assert same["diff"] == 0 and same["ci"] == (0.0, 0.0)


def test_the_section_shows_h_of_the_means_the_records_model_and_zero_shot_as_one_run(b2n):
    """Issue 38: H beside seed-averaged base and new is the H of those means (CoCoOp's paper); the figure's
    title names the records' model, not a fixed RN50; zero-shot is one run, paired with every seed."""
    import re

    from coop.report.base2new import title

    folder = b2n / "demo" / "base2new"
    recs = load_base2new(folder)
    text = (b2n / "demo" / "REPORT_demo.md").read_text()
    row = re.search(r"^\| CoCoOp \| ([\d.]+)(?: ± [\d.]+)? \| ([\d.]+)(?: ± [\d.]+)? \| ([\d.]+) \| 2 \|$", text, re.M)
    assert row and float(row.group(3)) == pytest.approx(harmonic_mean(float(row.group(1)), float(row.group(2))), abs=0.006)
    assert "H 为这两个平均值的调和平均" in text
    assert title(recs) == "synthetic demo data: base-to-new (random:tiny) -- RANDOM WEIGHTS"
    rows = [line for line in text.splitlines() if re.match(r"\| (Co)?CoOp − ", line)]
    zs = [line for line in rows if "Zero-shot CLIP |" in line]
    assert len(zs) == 2 and all(line.count("2 个种子与同一次运行配对") == 3 for line in zs)
    assert [line.count("（2 对种子）") for line in rows if "− CoOp |" in line] == [3]


def test_too_many_base_shots_is_one_line(tmp_path, capsys):
    assert run_all.main(ARGV[:-2] + ["--base2new-shots", "99", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "99" in err[-1]
