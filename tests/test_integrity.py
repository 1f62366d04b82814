"""No stale number reaches a figure, no record is trusted unchecked, nothing is overwritten by surprise
(issue 19), as the user meets it: scripts, real files."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from coop.runs.results import load_results, read_result
from conftest import ROOT, load_script, write_fake_result

run_all, zeroshot, make_split = load_script("run_all"), load_script("zeroshot"), load_script("make_split")


def _sweep_argv(out, seeds="1 2", *extra):
    return ["--demo", "--results", str(out), "--shots", "1", "--seeds", seeds, "--epochs", "2", "--views", "2",
            "--device", "cpu", "--baselines", "none", "--block-mod", "none", "--no-longer", "--no-report", *extra]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("integrity")
    assert run_all.main(_sweep_argv(out)) == 0
    return out


def _copy(demo, tmp_path):
    shutil.copytree(demo, tmp_path / "r")
    return tmp_path / "r", tmp_path / "r" / "demo"


def test_fewer_seeds_after_the_data_changed_leave_no_stale_run(demo, tmp_path):
    out, results = _copy(demo, tmp_path)
    split = json.loads((results / "split.json").read_text())
    img = results / "data" / "101_ObjectCategories" / split["test"][0][0]
    Image.new("RGB", (40, 40), (0, 200, 0)).save(img)  # a test image replaced: every run's data changed
    assert run_all.main(_sweep_argv(out, "1")) == 0  # this sweep redoes seed 1 only
    loaded = load_results(results)
    assert [r["seed"] for r in loaded["coop"]["CoOp"]] == [1]  # seed 2, made from the old data, is left out
    assert any("left out" in n and "seed 2" in n for n in loaded["notes"])


def test_mixed_settings_are_never_averaged(demo, tmp_path):
    out, results = _copy(demo, tmp_path)
    train_coop = load_script("train_coop")
    argv = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(results), "--cache-dir", str(results / "cache"), "--device", "cpu", "--views", "2",
            "--shots", "1", "--seed", "2", "--epochs", "3", "--force"]
    assert train_coop.main(argv) == 0  # seed 2 redone with 3 epochs; seed 1 kept its 2
    loaded = load_results(results)
    assert set(loaded["coop"]) == {"CoOp", "CoOp [epochs=3]"} or set(loaded["coop"]) == {"CoOp", "CoOp [epochs=2]"}
    assert all(len(recs) == 1 for recs in loaded["coop"].values())
    assert any("not averaged" in n for n in loaded["notes"])


def test_an_edited_record_is_refused_by_name(demo, tmp_path, caplog):
    _, results = _copy(demo, tmp_path)
    path = results / "coop" / "shots1_seed1.json"
    rec = json.loads(path.read_text())
    rec["accuracy"] = 99.0
    path.write_text(json.dumps(rec))
    assert read_result(path) is None
    assert str(path) in caplog.text and "refused" in caplog.text and "99.0" in caplog.text
    assert [r["seed"] for r in load_results(results)["coop"]["CoOp"]] == [2]


def test_a_record_whose_run_id_does_not_match_is_refused(demo, tmp_path, caplog):
    _, results = _copy(demo, tmp_path)
    path = results / "coop" / "shots1_seed2.json"
    rec = json.loads(path.read_text())
    rec["identity"]["lr"] = 0.5  # settings changed by hand, run_id left as it was
    path.write_text(json.dumps(rec))
    assert read_result(path) is None and "run_id" in caplog.text


def test_a_stray_folder_is_not_merged(demo, tmp_path, caplog):
    _, results = _copy(demo, tmp_path)
    shutil.copytree(results / "coop", results / "coop_old")
    loaded = load_results(results)
    assert set(loaded["coop"]) == {"CoOp"} and len(loaded["coop"]["CoOp"]) == 2
    assert "coop_old" in caplog.text and "folder" in caplog.text


def test_a_record_in_the_wrong_file_is_refused(demo, tmp_path):
    _, results = _copy(demo, tmp_path)
    for suffix in (".json", ".pt"):
        shutil.copy(results / "coop" / f"shots1_seed1{suffix}", results / "coop" / f"shots4_seed1{suffix}")
    assert read_result(results / "coop" / "shots4_seed1.json") is None


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s["train"].append(s["test"][0]), "appears twice"),        # train/test overlap
    (lambda s: s["test"].append(s["test"][0]), "appears twice"),         # counted twice
    (lambda s: s["val"].append(next([s["test"][0][0], it[1], it[2]] for it in s["train"]
                                    if it[1] != s["test"][0][1])), "appears twice"),  # one image, two labels
    (lambda s: [it.__setitem__(2, s["train"][0][2]) for p in ("train", "val", "test") for it in s[p]
                if it[1] == 1], "two labels"),                             # two classes, one name
])
def test_splits_that_cannot_give_a_test_accuracy_are_refused(demo, tmp_path, capsys, edit, needle):
    _, results = _copy(demo, tmp_path)
    split = json.loads((results / "split.json").read_text())
    edit(split)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(split))
    argv = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(bad),
            "--results", str(tmp_path / "out"), "--device", "cpu"]
    assert zeroshot.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("error:") == 1


def test_two_folders_of_one_class_name_are_refused(demo, tmp_path):
    from coop.data.caltech101 import list_classes
    from coop.utils.errors import UserError

    root = tmp_path / "101_ObjectCategories"
    for folder in ("Leopards", "leopard", "anchor"):
        (root / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / folder / "image_0001.jpg")
    with pytest.raises(UserError, match="both class 'leopard'"):
        list_classes(root)


def test_nothing_is_overwritten_without_force(demo, tmp_path, capsys):
    _, results = _copy(demo, tmp_path)
    common = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file",
              str(results / "split.json"), "--results", str(results), "--cache-dir", str(results / "cache"),
              "--device", "cpu"]
    ctx = str(results / "coop" / "shots1_seed1.pt")
    user_file = tmp_path / "mine.json"
    user_file.write_text('{"my": "notes"}')
    for out in (results / "zeroshot.json", results / "coop" / "shots1_seed1.json", user_file):
        before = out.read_bytes()
        assert zeroshot.main(common + ["--context", ctx, "--out", str(out)]) == 2
        assert out.read_bytes() == before and "--force" in capsys.readouterr().err
    assert zeroshot.main(common + ["--out", str(user_file)]) == 2 and user_file.read_text() == '{"my": "notes"}'
    # make_split: a user's few-shot list beside the new split is not replaced
    (tmp_path / "x" / "fewshot").mkdir(parents=True)
    mine = tmp_path / "x" / "fewshot" / "new_shots1_seed1.json"
    mine.write_text("mine")
    assert make_split.main(["--data-root", str(results / "data"), "--out", str(tmp_path / "x" / "new.json")]) == 2
    assert mine.read_text() == "mine" and not (tmp_path / "x" / "new.json").exists()


def test_write_failures_are_one_line(demo, tmp_path, capsys, monkeypatch):
    _, results = _copy(demo, tmp_path)
    plot, report, bench = load_script("plot"), load_script("report"), load_script("bench")
    (tmp_path / "folder.json").mkdir()
    for script, argv in ((report, ["--results", str(results), "--out", str(tmp_path / "folder.json")]),
                         (make_split, ["--data-root", str(results / "data"), "--out", str(tmp_path / "folder.json")]),
                         (bench, ["--out", str(tmp_path / "folder.json"), "--repeat", "1"]),
                         (bench, ["--repeat", "0"]), (bench, ["--views", "0"])):
        assert script.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "Traceback" not in err, err
    synthetic = load_script("make_synthetic_data")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert synthetic.main(["--out", str(a_file)]) == 2 and "is a file" in capsys.readouterr().err

    import errno

    import coop.utils.atomic as atomic

    def read_only(*a, **k):  # a read-only results folder (as root, permissions cannot be tested directly)
        raise PermissionError(errno.EACCES, "Permission denied", str(results / ".fewshot.png.123.tmp"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    assert plot.main(["--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Permission denied" in err and str(results) in err and "Traceback" not in err


def test_a_full_disk_while_caching_features_is_one_warning_and_the_run_goes_on(demo, tmp_path, capsys, monkeypatch):
    import coop.features.cache as cache

    _, results = _copy(demo, tmp_path)

    def full(*a, **k):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(cache, "torch_save", full)
    argv = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "fresh_cache"), "--device", "cpu"]
    assert zeroshot.main(argv) == 0
    assert capsys.readouterr().err.count("could not write the feature cache") == 1
    assert read_result(tmp_path / "out" / "zeroshot.json") is not None


def test_a_code_change_on_the_feature_path_equals_a_cold_cache(demo, tmp_path):
    """A one-line change of the test-time transform: the warm cache is not reused (cold == warm)."""
    proj = tmp_path / "proj"
    for part in ("coop", "scripts", "splits"):
        shutil.copytree(ROOT / part, proj / part, ignore=shutil.ignore_patterns("__pycache__"))
    results = demo / "demo"

    def accuracy(cache: str, out: str) -> float:
        cmd = [sys.executable, str(proj / "scripts" / "zeroshot.py"), "--model", "random:tiny", "--data-root",
               str(results / "data"), "--split-file", str(results / "split.json"), "--results", str(tmp_path / out),
               "--cache-dir", str(tmp_path / cache), "--device", "cpu", "--force"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp_path)
        return json.loads((tmp_path / out / "zeroshot.json").read_text())["test_predictions"]["pred"]

    before = accuracy("warm", "a")
    views = proj / "coop" / "features" / "views.py"
    text = views.read_text()
    line = "TF.pil_to_tensor(TF.center_crop(TF.resize(img, R, interpolation=InterpolationMode.BICUBIC), [R, R]))"
    assert line in text
    views.write_text(text.replace(line, "TF.pil_to_tensor(TF.hflip(TF.center_crop(TF.resize(img, R, "
                                        "interpolation=InterpolationMode.BICUBIC), [R, R])))"))
    warm = accuracy("warm", "b")
    cold = accuracy("cold", "c")
    assert warm == cold
    assert len(list((tmp_path / "warm").rglob("test-*.pt"))) == 2  # a second cache folder, keyed by the code
    assert isinstance(before, list)


def test_each_run_writes_its_log_beside_its_json_and_bars_stay_off_a_redirected_log(demo, tmp_path, capsys):
    from coop.utils.progress import bar

    _, results = _copy(demo, tmp_path)
    train_coop = load_script("train_coop")
    argv = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(tmp_path / "out"), "--cache-dir", str(results / "cache"), "--device", "cpu", "--views", "2",
            "--shots", "1", "--seed", "1", "--epochs", "2"]
    assert train_coop.main(argv) == 0
    log_file = tmp_path / "out" / "coop" / "shots1_seed1.log"
    assert "top-1" in log_file.read_text() and str(log_file) in capsys.readouterr().err
    assert bar(range(3)).disable  # pytest's stderr is not a terminal: no carriage-return bars
