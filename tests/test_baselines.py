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
from coop.methods.table import methods

FOLDERS = {k: m.folder for k, m in methods().items()}  # every method of the table


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
            if rec["protocol"] == "validation-free":  # ZS-LP, CLAP: no validation image is read
                assert rec["validation"]["images"] == 0 and rec["hyperparameters"]["val_accuracy"] is None
            else:
                assert rec["hyperparameters"]["val_accuracy"] >= 0 and rec["validation"]["images"] > 0
            assert rec["departures"] and "coop_fewshot" in rec["departures"]
    lp = _records(sweep, "baselines/linear_probe")
    assert all("C" in r["hyperparameters"] for r in lp.values())
    tip = _records(sweep, "baselines/tip_adapter_f")
    assert all({"alpha", "beta", "train_loss"} <= set(r["hyperparameters"]) for r in tip.values())


def test_the_figure_and_the_summary_show_every_method(sweep):
    from coop.report.plot import summarize

    loaded = load_results(sweep)
    names = {m.name for m in methods().values()}
    assert set(loaded["baselines"]) == names and {"CLIP-Adapter", "TaskRes", "ZS-LP", "CLAP"} <= names
    summary = summarize(loaded)
    assert {"CoOp"} | names <= set(summary["methods"])
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


def test_each_baseline_record_names_its_departures_from_the_shared_list(sweep):
    """Issue 29: the two protocol choices the docs state -- the baselines train on the CoOp run's
    few-shot images, and Tip's views are seeded by the image only (shared across seeds and shots) --
    are departures like the others, named by key in every record, from coop.methods.departures."""
    from coop.methods.baselines import BaselineConfig
    from coop.methods.departures import baseline_departures

    keys = {d.key for d in baseline_departures()}  # the shared list and each table entry's own
    for key, folder in FOLDERS.items():
        for rec in _records(sweep, f"baselines/{folder}").values():
            cfg = BaselineConfig(**{k: v for k, v in rec["config"].items()})
            assert rec["departures"] == cfg.departures() and set(rec["departures"]) <= keys
            assert "coop_fewshot" in rec["departures"]
            assert ("tip_views_by_image" in rec["departures"]) == (key in ("tip", "tip_f"))
            assert ("tip_f_last_epoch" in rec["departures"]) == (key == "tip_f")
    # the shared views really are shared: seeds 1 and 2 of one image read the same cached Tip views
    from coop.methods.tip_adapter import VIEWS

    assert VIEWS.crop(1) == VIEWS.crop(2)  # one crop seed name for every run: the views are the image's


def test_a_validation_set_smaller_than_asked_is_said_and_recorded(tmp_path, capsys):
    """Issue 29: at 4 shots lpclip's validation set is min(4, 4) = 4 per class, but the demo's classes
    have 2 val images each: the run says so in one warning line naming the classes and the count, and
    records it; at 2 shots nothing is short and nothing is said."""
    argv = ["--demo", "--results", str(tmp_path), "--epochs", "2", "--views", "1", "--shots", "2 4", "--seeds", "1",
            "--baselines", "lp", "--no-report", "--device", "cpu"]
    assert run_all.main(argv) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "validation image(s) per class" in x]
    assert len(lines) == 1, err
    assert "4 shots seed 1" in lines[0] and "uses 2 validation image(s) per class (20 in all), not the 4 asked for" in lines[0]
    assert "10 class(es) have fewer val images" in lines[0] and "'face' (2)" in lines[0]
    recs = _records(tmp_path / "demo", "baselines/linear_probe")
    v4, v2 = recs[(4, 1)]["validation"], recs[(2, 1)]["validation"]
    assert (v4["per_class"], v4["requested_per_class"], v4["images"]) == (2, 4, 20)
    assert len(v4["short_classes"]) == 10 and set(v4["short_classes"].values()) == {2} and v4["warning"] == lines[0]
    assert (v2["per_class"], v2["requested_per_class"], v2["short_classes"], v2["warning"]) == (2, 2, {}, None)
    log = (tmp_path / "demo" / "baselines" / "linear_probe" / "shots4_seed1.log").read_text()
    assert lines[0] in log


def test_sweep_timing_counts_each_stage_from_the_records(sweep, tmp_path):
    """scripts/sweep_timing.py: one row per record (CoOp: encoding and training), the work counted
    from the records, the projection = work x check_env's unit costs, the figure and report timed
    without touching the sweep's own outputs, the folders' sizes as du would add them."""
    from coop.measure.sweep_timing import folder_mb, shares, stages

    coop = _records(sweep, "coop")
    units = {"crops_img_s": 50.0, "step_s": 0.25}
    model = next(iter(coop.values()))["model"]["name"]
    rows = stages(sweep, {"measurements": {"model": "random:RN50", "units": {"fp32": {}},
                                           "demo": {"model": model, "units": {"fp32": units}}}})
    # the same architecture with other weights is timed alike; another model's or precision's costs project nothing
    from coop.measure.sweep_timing import architecture, unit_costs
    assert {architecture(m) for m in ("random:RN50", "RN50", "/w/clip/RN50.pt")} == {"RN50"}
    assert unit_costs({"measurements": {"model": "random:RN50", "units": {"fp32": units}}}, "RN50", "fp32") == units
    on_gpu = {"measurements": {"model": "random:RN50", "device": "cuda", "units": {"fp32": units}}}
    assert unit_costs(on_gpu, "RN50", "fp32", "cuda:1") == units and unit_costs(on_gpu, "RN50", "fp32", "cpu") is None
    for other in [{"model": "random:RN50", "units": {"fp32": units}}, {"model": model, "units": {"amp": units}}]:
        assert all(r["projected_s"] is None for r in stages(sweep, {"measurements": other}))
    every = [r for r in rows if r["stage"].endswith("crops encoded")]  # CoOp's, the bonus's, the longer check's
    plain = lambda r: r["stage"].startswith("CoOp ") and not r["stage"].startswith("CoOp [")  # noqa: E731
    enc = [r for r in every if plain(r)]
    train = [r for r in rows if plain(r) and r["stage"].endswith(": training")]
    assert all(r["work"] == "0 crops" for r in every if r["stage"].startswith("CoOp+"))  # the bonus trains on CoOp's crops
    assert len(enc) == len(train) == len(coop)
    # nested sampling: each (image, crop) pair is encoded once, by the first run that needs it
    pairs = {(rec["augmentation"]["crop_seed"], rel, c) for rec in coop.values() for rel, _, _ in rec["fewshot_train"]
             for c in range(rec["augmentation"]["crops_per_image"])}
    assert sum(int(r["work"].split()[0].replace(",", "")) for r in enc) == len(pairs)
    for r in enc:
        assert r["projected_s"] == pytest.approx(int(r["work"].split()[0].replace(",", "")) / 50.0)
    for r in train:
        assert r["projected_s"] == pytest.approx(int(r["work"].split()[0].replace(",", "")) * 0.25)
    assert all(r["peak_rss_mb"] and r["peak_rss_mb"] > 10 for r in rows)
    share = shares(rows)
    assert sum(share.values()) == pytest.approx(1.0, abs=1e-3) and share["training"] > 0
    total = sum(r["measured_s"] for r in rows)
    images = [r for r in rows if r["stage"].startswith("zero-shot") and "encoded" in r["work"]]
    assert len(images) == 1 and share["encoding"] == pytest.approx(  # the prompt ensemble's text is no image
        (images[0]["measured_s"] + sum(r["measured_s"] for r in every)) / total, abs=1e-4)
    tip = [(r, rec) for r in rows for rec in _records(sweep, "baselines/tip_adapter").values()
           if r["stage"] == f"Tip-Adapter {rec['shots']} shot{'s' if rec['shots'] != 1 else ''}, seed {rec['seed']}"]
    assert tip and all(f"+ {rec['identity']['options']['views']} augmented views each" in r["work"] for r, rec in tip)

    size = sum(p.stat().st_size for p in sweep.rglob("*") if p.is_file() and not p.is_symlink())
    assert folder_mb(sweep) == pytest.approx(size / 2 ** 20)
    assert folder_mb(tmp_path / "absent") is None

    sweep_timing = load_script("sweep_timing")
    before = {p: p.stat().st_mtime_ns for p in sweep.rglob("*") if p.is_file()}
    check = tmp_path / "check.json"
    check.write_text(json.dumps({"when": "t", "cpu": {}, "measurements": {"model": model, "units": {"fp32": units}}}))
    assert sweep_timing.main(["--results", str(sweep), "--check", str(check), "--out", str(tmp_path / "t.json"),
                              "--cache-dir", str(sweep), "--note", "n"]) == 0
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("*") if p.is_file()} == before  # nothing redrawn in place
    out = json.loads((tmp_path / "t.json").read_text())
    drawn = [r for r in out["rows"] if r["stage"].startswith(("figure", "report"))]
    assert len(drawn) == 2 and all(r["measured_s"] > 0 for r in drawn)
    assert out["totals"]["disk_mb"]["results"] == pytest.approx(size / 2 ** 20)
    assert out["totals"]["peak_rss_mb"] == max(r["peak_rss_mb"] for r in out["rows"] if r.get("peak_rss_mb"))
    assert len(out["table"]) == len(out["rows"]) + 2
