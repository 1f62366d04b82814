"""The baselines in the sweep: the CoOp runs' few-shot images and test features, their own records,
redone when what they were made from changes, drawn in the figure."""
from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from coop.runs.results import load_results, read_result
from conftest import load_script

run_all = load_script("run_all")
FOLDERS = {"lp": "linear_probe", "tip": "tip_adapter", "tip_f": "tip_adapter_f"}


def _argv(out, *extra):
    return ["--demo", "--results", str(out), "--epochs", "2", "--views", "2", "--shots", "1 2", "--seeds", "1 2",
            "--no-report", "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines")
    assert run_all.main(_argv(out)) == 0
    return out / "demo"


def _records(results, folder):
    return {(r["shots"], r["seed"]): r for r in (read_result(p) for p in (results / folder).glob("shots*_seed*.json"))}


def test_every_baseline_uses_the_coop_runs_images_and_test_features(sweep):
    coop = _records(sweep, "coop")
    assert set(coop) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    for key, folder in FOLDERS.items():
        recs = _records(sweep, f"baselines/{folder}")
        assert set(recs) == set(coop), folder
        for ks, rec in recs.items():
            assert rec["kind"] == "baseline" and rec["baseline"] == key
            assert [tuple(x) for x in rec["fewshot_train"]] == [tuple(x) for x in coop[ks]["fewshot_train"]]
            assert rec["test_predictions"]["index"] == coop[ks]["test_predictions"]["index"]
            assert rec["n_test"] == coop[ks]["n_test"] and rec["split"]["sha256"] == coop[ks]["split"]["sha256"]
            assert rec["hyperparameters"]["val_accuracy"] >= 0 and rec["validation"]["images"] > 0
            assert rec["departures"]
    lp = _records(sweep, "baselines/linear_probe")
    assert all("C" in r["hyperparameters"] for r in lp.values())
    tip = _records(sweep, "baselines/tip_adapter_f")
    assert all({"alpha", "beta", "train_loss"} <= set(r["hyperparameters"]) for r in tip.values())


def test_the_figure_and_the_summary_show_every_method(sweep):
    from coop.report.plot import summarize

    loaded = load_results(sweep)
    assert set(loaded["baselines"]) == {"Linear probe CLIP", "Tip-Adapter", "Tip-Adapter-F"}
    summary = summarize(loaded)
    assert {"CoOp", "Linear probe CLIP", "Tip-Adapter", "Tip-Adapter-F"} <= set(summary["methods"])
    assert (sweep / "fewshot.png").is_file()


def _mtimes(results):
    return {p: p.stat().st_mtime_ns for p in (results / "baselines").rglob("*.json")}


def test_a_baseline_is_redone_when_an_image_it_read_changes(sweep, tmp_path):
    results = tmp_path / "demo"
    shutil.copytree(sweep, results)
    rec = _records(results, "baselines/linear_probe")[(1, 1)]
    val_only = {it[0] for it in rec["validation"]["items"]} - {it[0] for it in rec["fewshot_train"]}
    image = results / "data" / "101_ObjectCategories" / sorted(val_only)[0]
    Image.new("RGB", (48, 48), (250, 10, 10)).save(image)  # the same name, other pixels
    before = _mtimes(results)
    assert run_all.main(_argv(tmp_path)) == 0
    after = _mtimes(results)
    redone = {p for p in before if after[p] != before[p]}
    assert results / "baselines" / "linear_probe" / "shots1_seed1.json" in redone
    # runs that did not read that image are kept
    readers = {p for p in before
               if any(it[0] == str(image.relative_to(image.parents[1])) for it in
                      json.loads(p.read_text())["validation"]["items"] + json.loads(p.read_text())["fewshot_train"])}
    assert redone == readers


def test_a_baseline_is_redone_when_the_code_changes(sweep, tmp_path, monkeypatch):
    import coop.runs.provenance as provenance

    results = tmp_path / "demo"
    shutil.copytree(sweep, results)
    before = _mtimes(results)
    monkeypatch.setattr(provenance, "code_sha256", lambda: "0" * 64)  # as after an edit of the computing code
    assert run_all.main(_argv(tmp_path)) == 0
    after = _mtimes(results)
    assert all(after[p] != before[p] for p in before)


def test_a_baseline_is_redone_when_the_split_changes(sweep, tmp_path):
    results = tmp_path / "demo"
    shutil.copytree(sweep, results)
    split = json.loads((results / "split.json").read_text())
    split["test"] = split["test"][1:]  # one test image fewer
    (results / "split.json").write_text(json.dumps(split))
    before = _mtimes(results)
    assert run_all.main(_argv(tmp_path)) == 0
    after = _mtimes(results)
    assert all(after[p] != before[p] for p in before)
    assert all(r["n_test"] == len(split["test"]) for r in _records(results, "baselines/tip_adapter").values())
