"""Issue 36, class 4: inputs left out must be seen, for every kind of run the sweep can make.

An image a run learns from that cannot be read is refused in one line naming the file (a "1-shot" run
without its one image of a class is no 1-shot run); an unreadable test image is left out, and every
record counts and names it (``test_left_out``). Also what every record must carry (class 8): its
departures. The kinds of run are not listed here: they are asked of ``run_all --print-commands`` (each
protocol, every baseline), so a kind added later is covered without editing this file.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from coop.data.split import fewshot, read_split
from coop.runs.results import read_result
from conftest import load_script

run_all, zeroshot = load_script("run_all"), load_script("zeroshot")

DEMO = ["--demo", "--seeds", "1", "--epochs", "1", "--warmup-epochs", "0", "--views", "1", "--device", "cpu",
        "--no-report"]
# every kind of run: both protocols, the plain sweep with every baseline (the default --baselines; a
# --block-mod run is a CoOp run)
VARIANTS = [["--shots", "1"], ["--protocol", "base2new"]]


def _argv(out: Path, variant) -> list:
    return DEMO + ["--results", str(out)] + list(variant)


def _runs(out: Path, capsys) -> list:
    """(variant, run key) of every run the sweep lists, asked of run_all itself."""
    runs = []
    for variant in VARIANTS:
        capsys.readouterr()
        assert run_all.main(_argv(out, variant) + ["--print-commands", "--force"]) == 0
        for line in capsys.readouterr().out.splitlines():
            words = shlex.split(line)
            runs.append((variant, words[words.index("--only") + 1]))
    return list(dict.fromkeys((tuple(v), k) for v, k in runs))


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """A finished demo of every kind of run (both protocols, every baseline),
    made after one test image became unreadable (``BAD_TEST`` in the folder's ``bad_test.txt``)."""
    out = tmp_path_factory.mktemp("left_out")
    assert run_all.main(_argv(out, VARIANTS[0]) + ["--print-commands"]) == 0  # makes the demo's data
    bad = read_split(out / "demo" / "split.json").test[4][0]
    (out / "demo" / "data" / "101_ObjectCategories" / bad).write_bytes(b"")
    (out / "bad_test.txt").write_text(bad)
    for variant in VARIANTS:
        assert run_all.main(_argv(out, variant)) == 0
    return out


@pytest.fixture
def demo(intact, tmp_path):
    shutil.copytree(intact, tmp_path / "r")
    return tmp_path / "r"


def _errors(capsys) -> list:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_every_run_that_learns_from_an_unreadable_image_refuses_naming_it(demo, capsys):
    results = demo / "demo"
    split = read_split(results / "split.json")
    bad = fewshot(split.train, 1, 1)[0][0]  # the one image of class 0 every seed-1 run learns from (nested)
    runs = _runs(demo, capsys)
    learns = {k: bad in json.dumps((read_result(results / f"{k}.json") or {}).get("fewshot_train"))
              for _, k in runs}
    assert sum(learns.values()) >= 6, learns  # CoOp, each baseline, base-to-new CoOp and CoCoOp
    (results / "data" / "101_ObjectCategories" / bad).write_bytes(b"not an image any more")
    for variant, key in runs:
        record = results / f"{key}.json"
        before = record.read_bytes()
        code = run_all.main(_argv(demo, variant) + ["--only", key])  # its input changed: the run is redone
        errors = _errors(capsys)
        if learns[key]:
            assert code == 2 and len(errors) == 1, (key, errors)
            assert str(results / "data" / "101_ObjectCategories" / bad) in errors[0], errors[0]
            assert "replace the file" in errors[0].lower() and "make_split" in errors[0]
            assert record.read_bytes() == before, key  # nothing made of fewer images replaced the record
        else:
            assert code == 0 and not errors, (key, errors)
            assert bad not in (read_result(record) or {}).get("skipped_images", {}), key


def test_a_one_shot_demo_whose_image_went_bad_stops_at_its_first_few_shot_run(tmp_path, capsys):
    """As the issue met it: the 1-shot image of a class unreadable gave a "1 shot" run trained on zero
    images of that class (and baselines too), listed only under skipped_images."""
    assert run_all.main(_argv(tmp_path, ["--shots", "1"]) + ["--print-commands"]) == 0  # makes the demo data
    results = tmp_path / "demo"
    split = read_split(results / "split.json")
    bad = fewshot(split.train, 1, 1)[3][0]
    (results / "data" / "101_ObjectCategories" / bad).write_bytes((results / "data" / "101_ObjectCategories" /
                                                                   bad).read_bytes()[:200])  # truncated
    capsys.readouterr()
    assert run_all.main(_argv(tmp_path, ["--shots", "1"])) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and bad in errors[0]
    assert not list((results / "coop").glob("*.json")) and not (results / "baselines").exists()


def test_every_record_counts_and_names_its_unreadable_test_images(intact, capsys):
    results = intact / "demo"
    split = read_split(results / "split.json")
    bad = (intact / "bad_test.txt").read_text()
    common = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file",
              str(results / "split.json"), "--results", str(results), "--cache-dir", str(results / "cache"),
              "--device", "cpu", "--out", str(intact / "eval.json")]
    assert zeroshot.main(common + ["--context", str(results / "coop" / "shots1_seed1.pt")]) == 0  # an evaluation
    runs = _runs(intact, capsys)
    records = [results / f"{k}.json" for _, k in runs] + [intact / "eval.json"]
    for path in records:
        rec = read_result(path)
        left = rec["test_left_out"]
        assert left["count"] == 1 and left["listed"] == len(split.test) and list(left["images"]) == [bad], path
        assert rec["n_test"] == left["listed"] - left["count"], path


def test_every_protocols_records_name_their_departures(intact, capsys):
    """Issue 36, class 8: base-to-new records carried no departures (CoOp's did). Every run record names
    the departures that applied to it; with our split (the demo's), that one applies to both of CoOp's
    protocols."""
    from coop.methods import departures

    results = intact / "demo"
    runs = _runs(intact, capsys)
    kinds = set()
    for _, key in runs:
        rec = read_result(results / f"{key}.json")
        kinds.add(rec["kind"])
        assert rec["departures"], key  # a baseline names its own (coop.methods.departures.BASELINE_DEPARTURES)
        if rec["kind"] != "baseline":  # CoOp's protocols: our split (the demo's) is a departure from theirs
            assert "split" in rec["departures"], (key, rec["departures"])
        if rec["kind"] == "base2new":
            assert set(rec["departures"]) <= {d.key for d in departures.base2new_departures()}, key
            assert "backbone" in rec["departures"] and (rec["method"] == "Zero-shot CLIP") != ("fewshot" in
                                                                                                rec["departures"])
    assert {"zeroshot", "coop", "baseline", "base2new"} <= kinds, kinds
