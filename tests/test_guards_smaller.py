"""Issue 36, class 8, as the user meets each case: the scripts on real files in temporary folders.

- docs/running.md named ``results/eval_shots4_seed1.json``; the file is ``eval_coop_shots4_seed1_<hash>.json``.
- A failed download left an empty ``data/caltech-101/``.
- A shared context was refused on other class names, which rules out the cross-dataset transfer CoOp and
  CoCoOp report: allowed for a shared context and recorded; a class-specific one is refused in one line.
- ``subsample_classes`` is CoOp's (``datasets/oxford_pets.py``), not Dassl's.
(Every protocol's records naming their departures: tests/test_guards_left_out.py, which runs every kind.)
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from coop.data.split import make_split, write_split
from coop.runs.results import read_result
from conftest import ROOT, load_script

run_all, zeroshot, train_coop = load_script("run_all"), load_script("zeroshot"), load_script("train_coop")
download = load_script("download_caltech101")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A demo with a shared (CoOp's default) and a class-specific context."""
    out = tmp_path_factory.mktemp("smaller")
    assert run_all.main(["--demo", "--results", str(out), "--shots", "1", "--seeds", "1", "--epochs", "2",
                         "--views", "1", "--baselines", "none", "--device", "cpu", "--no-report"]) == 0
    results = out / "demo"
    assert train_coop.main(_common(results) + ["--shots", "1", "--epochs", "2", "--views", "1",
                                               "--csc", "--results", str(out / "csc")]) == 0
    return results


def _common(results: Path, data: Path = None, split: Path = None) -> list:
    return ["--model", "random:tiny", "--data-root", str(data or results / "data"), "--split-file",
            str(split or results / "split.json"), "--cache-dir", str(results / "cache"), "--device", "cpu"]


def test_the_evaluation_file_docs_running_names_is_the_one_zeroshot_writes(demo, tmp_path):
    row = next(line for line in (ROOT / "docs" / "running.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| evaluate a context"))
    quoted = re.findall(r"`([^`]+)`", row)
    cmd, written = quoted[0], next(q for q in reversed(quoted) if q.startswith("results/"))
    context = cmd.split("--context ")[1].split()[0]  # results/coop/shots4_seed1.pt
    assert written.startswith("results/") and context.startswith("results/")
    # the same command on the demo: results/ -> the demo's folder, shots4 -> the demo's shots1
    ctx = demo / context.replace("results/", "", 1).replace("shots4", "shots1")
    assert zeroshot.main(_common(demo) + ["--results", str(tmp_path), "--context", str(ctx)]) == 0
    pattern = written.replace("results/", "", 1).replace("shots4", "shots1").replace("<hash>", "*")
    made = [p.name for p in tmp_path.glob("eval_*.json")]
    assert len(made) == 1 and list(tmp_path.glob(pattern)), (pattern, made)
    assert re.fullmatch(pattern.replace("*", "[0-9a-f]{8}").replace(".", r"\."), made[0])


@pytest.mark.parametrize("how", ["missing", "damaged"])
def test_a_failed_download_leaves_no_empty_data_folder(how, tmp_path, capsys):
    out = tmp_path / "data" / "caltech-101"
    url = f"file://{tmp_path / 'nowhere.zip'}"
    if how == "damaged":
        (tmp_path / "nowhere.zip").write_bytes(b"not the archive")  # the MD5 check fails
    assert download.main(["--out", str(out), "--url", url]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert not (tmp_path / "data").exists()  # nothing that looks like a data folder
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("a user's file")
    assert download.main(["--out", str(out), "--url", url]) == 2
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mine.txt"]  # theirs kept, ours gone


def _other_classes(demo: Path, tmp_path: Path) -> tuple:
    """Another data set: the demo's images under other class names (a cross-dataset evaluation)."""
    names = {"accordion": "violin", "anchor": "kettle", "car_side": "tractor", "dollar_bill": "postcard"}
    root = tmp_path / "other" / "101_ObjectCategories"
    for folder in (demo / "data" / "101_ObjectCategories").iterdir():
        if folder.name in names:
            shutil.copytree(folder, root / names[folder.name])
    write_split(make_split(root), tmp_path / "other.json")
    return root.parent, tmp_path / "other.json"


def test_a_shared_context_is_evaluated_on_other_classes_and_the_record_says_so(demo, tmp_path):
    data, split = _other_classes(demo, tmp_path)
    argv = _common(demo, data, split) + ["--results", str(tmp_path / "r"), "--context",
                                         str(demo / "coop" / "shots1_seed1.pt")]
    assert zeroshot.main(argv) == 0
    rec = read_result(next((tmp_path / "r").glob("eval_*.json")))
    transfer = rec["transfer"]
    assert transfer["n_trained"] == 10 and transfer["n_evaluated"] == 4 and transfer["in_both"] == 0
    assert rec["classnames"] == ["kettle", "postcard", "tractor", "violin"] and "accordion" in transfer["trained_on"]
    # on its own classes, no transfer is recorded
    assert zeroshot.main(_common(demo) + ["--results", str(tmp_path / "own"), "--context",
                                          str(demo / "coop" / "shots1_seed1.pt")]) == 0
    assert read_result(next((tmp_path / "own").glob("eval_*.json")))["transfer"] is None


def test_a_class_specific_context_on_other_classes_is_refused_in_one_line(demo, tmp_path, capsys):
    data, split = _other_classes(demo, tmp_path)
    ctx = demo.parent / "csc" / "coop" / "shots1_seed1.pt"
    capsys.readouterr()
    code = zeroshot.main(_common(demo, data, split) + ["--results", str(tmp_path / "r"), "--context", str(ctx)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "class-specific" in errors[0] and str(ctx) in errors[0]
    assert not list((tmp_path / "r").glob("eval_*.json"))


def test_subsample_classes_is_never_called_dassls():
    said = []
    for path in [*ROOT.glob("coop/**/*.py"), *ROOT.glob("docs/*.md"), *ROOT.glob("tests/*.py"), ROOT / "README.md"]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"Dassl('s)?[/ ]+(CoOp's )?`*(OxfordPets\.)?subsample_classes", line):
                said.append(f"{path.relative_to(ROOT)}:{n}")
    assert not said, said


def test_docs_base2new_lists_the_departures_its_records_name():
    from coop.methods.departures import base2new_markdown_en

    text = (ROOT / "docs" / "base2new.md").read_text(encoding="utf-8")
    table = text.split("<!-- base2new-departures:begin -->")[1].split("<!-- base2new-departures:end -->")[0]
    assert table.strip() == base2new_markdown_en()
    assert "our own" in table.lower() and "nested" in table.lower()  # the two the docs had left out
