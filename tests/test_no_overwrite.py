"""No work lost without --force, names checked against what CLIP reads (issue 29), as the user meets it:
scripts (in subprocesses where another process matters), real files."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest
import torch
from PIL import Image

from coop.runs.results import load_results, read_result
from conftest import ROOT, load_script

run_all, train_coop, zeroshot = load_script("run_all"), load_script("train_coop"), load_script("zeroshot")
plot, report = load_script("plot"), load_script("report")


def _sweep_argv(out, *extra):
    return ["--demo", "--results", str(out), "--shots", "1", "--seeds", "1", "--epochs", "2", "--views", "2",
            "--device", "cpu", "--baselines", "none", "--no-report", *extra]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("no_overwrite")
    assert run_all.main(_sweep_argv(out)) == 0
    return out


@pytest.fixture
def results(demo, tmp_path):
    shutil.copytree(demo, tmp_path / "r")
    return tmp_path / "r" / "demo"


def _train_argv(results, *extra):
    return ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(results), "--cache-dir", str(results / "cache"), "--device", "cpu", "--views", "2",
            "--shots", "1", "--seed", "1", "--epochs", "2", *extra]


def _newer_schema(path: Path):
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "schema": rec["schema"] + 1}))


def _refused_by_validation(path: Path):
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "accuracy": 123.0}))


def _context_moved_away(path: Path):
    path.with_suffix(".pt").rename(path.parent / "elsewhere.pt")


def _not_json(path: Path):
    path.write_text("my notes, not a result")


@pytest.mark.parametrize("damage", [_newer_schema, _refused_by_validation, _context_moved_away, _not_json])
def test_a_record_we_cannot_read_is_never_overwritten(damage, results, capsys):
    record = results / "coop" / "shots1_seed1.json"
    damage(record)
    before = record.read_bytes()
    assert train_coop.main(_train_argv(results)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(record) in err[0] and "--force" in err[0]
    assert record.read_bytes() == before
    assert run_all.main(_sweep_argv(results.parent)) == 2  # the sweep refuses too, before any work
    assert record.read_bytes() == before
    assert train_coop.main(_train_argv(results, "--force")) == 0  # --force: redone, the old file kept aside
    kept = list(record.parent.glob("shots1_seed1.json.set-aside-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == before
    assert read_result(record) is not None


def test_a_second_sweep_on_the_same_folder_is_refused_while_the_first_runs(results, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from coop.runs.locks import folder_lock
        with folder_lock({str(results)!r}, exclusive=True):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (results / "coop" / "shots1_seed1.json").read_bytes()
        for cmd in (_sweep_argv(results.parent, "--epochs", "3", "--force"), None):
            argv = [sys.executable, str(ROOT / "scripts" / ("run_all.py" if cmd else "train_coop.py")),
                    *(cmd or _train_argv(results, "--epochs", "3", "--force"))]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            lines = p.stderr.strip().splitlines()
            assert p.returncode == 2 and lines[-1].startswith("error: "), p.stderr
            assert str(results) in lines[-1] and f"pid {holder.pid}" in lines[-1]
            assert not any(line.startswith(("wrote", "[1/")) for line in lines), p.stderr  # refused before any work
        assert (results / "coop" / "shots1_seed1.json").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    assert run_all.main(_sweep_argv(results.parent)) == 0  # released with its process


def _write_context(path: Path, src: Path, ctx_scale: float):
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["state"] = {k: v * ctx_scale for k, v in payload["state"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def test_evaluations_of_two_contexts_with_one_name_never_collide(results, capsys):
    src = results / "coop" / "shots1_seed1.pt"
    a, b = results / "mine" / "coop" / "shots1_seed1.pt", results / "mine" / "coop_adapter" / "shots1_seed1.pt"
    _write_context(a, src, 1.0)
    _write_context(b, src, 3.0)
    common = ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file",
              str(results / "split.json"), "--results", str(results), "--cache-dir", str(results / "cache"),
              "--device", "cpu"]
    assert zeroshot.main(common + ["--context", str(a)]) == 0
    assert zeroshot.main(common + ["--context", str(b)]) == 0
    evals = sorted(results.glob("eval_*.json"))
    assert len(evals) == 2 and {read_result(e)["context_file"] for e in evals} == {str(a), str(b)}
    first = next(e for e in evals if read_result(e)["context_file"] == str(a))
    before = first.read_bytes()
    capsys.readouterr()
    assert zeroshot.main(common + ["--context", str(b), "--out", str(first)]) == 2  # another context's file
    assert "--force" in capsys.readouterr().err and first.read_bytes() == before
    assert zeroshot.main(common + ["--context", str(a), "--out", str(first)]) == 0  # its own: refreshed


def test_report_and_plot_replace_only_their_own_files(results, tmp_path, capsys):
    notes, fig = tmp_path / "notes.md", tmp_path / "figure.png"
    notes.write_text("# my notes\n")
    Image.new("RGB", (8, 8)).save(fig)
    assert report.main(["--results", str(results), "--out", str(notes), "--no-figures"]) == 2
    assert plot.main(["--results", str(results), "--out", str(fig)]) == 2
    err = capsys.readouterr().err
    assert err.count("--force") == 2 and notes.read_text() == "# my notes\n"
    assert plot.main(["--results", str(results), "--out", str(tmp_path / "mine")]) == 0  # ours: replaced freely
    assert plot.main(["--results", str(results), "--out", str(tmp_path / "mine")]) == 0
    assert report.main(["--results", str(results), "--out", str(tmp_path / "r.md"), "--no-figures"]) == 0
    assert report.main(["--results", str(results), "--out", str(tmp_path / "r.md"), "--no-figures"]) == 0
    assert report.main(["--results", str(results), "--out", str(notes), "--no-figures", "--force"]) == 0
    assert [p.read_text() for p in tmp_path.glob("notes.md.set-aside-*")] == ["# my notes\n"]


def test_split_names_that_do_not_match_their_folders_are_refused(results, capsys):
    split = json.loads((results / "split.json").read_text())
    names = sorted({n for _, _, n in split["train"]})
    a, b = names[0], names[1]
    swap = {a: b, b: a}
    for part in split.values():
        for item in part:
            item[2] = swap.get(item[2], item[2])
    bad = results / "swapped.json"
    bad.write_text(json.dumps(split))
    assert train_coop.main(_train_argv(results, "--split-file", str(bad), "--results", str(results / "x"))) == 2
    err = capsys.readouterr().err
    assert "swapped.json" in err and repr(a) in err and repr(b) in err and "wrong name" in err


@pytest.mark.parametrize("twin", [
    ("dollar_bill", "dollar bill"), ("Accordion", "accordion"),
    (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café"))])
def test_folders_clip_reads_as_one_class_are_refused(twin, tmp_path, capsys):
    from coop.data.caltech101 import list_classes
    from coop.utils.errors import UserError

    root = tmp_path / "101_ObjectCategories"
    for name in (*twin, "zebra"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / name / "image_0001.jpg")
    assert len({p.name for p in root.iterdir()}) == 3  # the file system keeps them apart
    with pytest.raises(UserError, match="same prompt words"):
        list_classes(root)


def test_dubious_inputs_get_named(results, tmp_path, monkeypatch, capsys):
    from coop.features.cache import default_cache_dir

    monkeypatch.setenv("COOP_CACHE", "")
    assert default_cache_dir() == Path("~/.cache/coop-caltech101").expanduser()  # empty is unset, not "here"
    images = results / "data" / "101_ObjectCategories"
    assert train_coop.main(_train_argv(results, "--results", str(images / "out"))) == 2
    assert "inside the image folder" in capsys.readouterr().err and not (images / "out").exists()
    split = json.loads((results / "split.json").read_text())
    split["train"] = [[str(images / rel), lab, n] for rel, lab, n in split["train"]]
    (results / "abs.json").write_text(json.dumps(split))
    assert train_coop.main(_train_argv(results, "--split-file", str(results / "abs.json"),
                                       "--results", str(results / "y"))) == 2
    err = capsys.readouterr().err
    assert "absolute paths" in err and repr(split["train"][0][0].split("/")[-2]) in err
    (results / "zeroshot.json").write_text(json.dumps("a string"))
    loaded = load_results(results)
    assert any("zeroshot.json" in n and "str" in n for n in loaded["notes"])


def test_real_data_tests_skip_on_other_data(tmp_path, monkeypatch):
    import conftest

    (tmp_path / "caltech101" / "101_ObjectCategories" / "a").mkdir(parents=True)
    (tmp_path / "split_zhou_Caltech101.json").write_text("{}")
    monkeypatch.setattr(conftest, "REAL_IMAGES", tmp_path / "caltech101" / "101_ObjectCategories")
    monkeypatch.setattr(conftest, "COOP_SPLIT", tmp_path / "split_zhou_Caltech101.json")
    assert "not CoOp's published split" in conftest._real_caltech101()
    monkeypatch.setattr(conftest, "REAL_IMAGES", tmp_path / "nothing")
    assert "not at" in conftest._real_caltech101()
