"""What the project generates is never used half-made, and nothing it did not make is replaced
(issue 12): demo data, splits, leftovers of killed writers, stale figures and reports."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from coop.utils.atomic import _writer_tag, atomic_path, remove_stale_temp_files
from coop.data.caltech101 import IMAGE_DIR
from coop.utils.errors import UserError
from coop.pipeline.sweep import prepare_demo
from coop.data.synthetic import DEFAULT_CLASSES, make_synthetic_data
from conftest import ROOT, load_script

run_all, make_split = load_script("run_all"), load_script("make_split")


def test_a_killed_synthetic_tree_is_never_used(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from coop.data.synthetic import make_synthetic_data; "
            f"make_synthetic_data({str(tmp_path / 'data')!r}, per_class=200)")
    p = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while not list((tmp_path / "data").glob(".synthetic.*/*/*")) and time.time() < deadline:
        time.sleep(0.05)
    p.kill()
    p.wait()
    assert not (tmp_path / "data" / IMAGE_DIR).exists()  # only the hidden temporary tree was there
    data_root, split = prepare_demo(tmp_path)  # the next demo cleans up and builds a whole tree
    assert sorted(d.name for d in (data_root / IMAGE_DIR).iterdir() if d.is_dir()) == sorted(
        list(DEFAULT_CLASSES) + ["BACKGROUND_Google", "Faces_easy"])
    assert not list(data_root.glob(".synthetic.*")) and split.is_file()


def test_two_demos_at_once_build_one_tree(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
            f"from coop.pipeline.sweep import prepare_demo; prepare_demo(Path({str(tmp_path)!r}))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    classes = [d for d in (tmp_path / "data" / IMAGE_DIR).iterdir() if d.is_dir()]
    assert len(classes) == len(DEFAULT_CLASSES) + 2 and all(len(list(d.iterdir())) >= 2 for d in classes)


def test_a_split_that_does_not_match_its_tree_is_refused(synthetic_root, synthetic_split, tmp_path, capsys):
    import shutil

    root = tmp_path / IMAGE_DIR
    shutil.copytree(synthetic_root, root)
    shutil.copytree(root / "anchor", root / "extra_class")  # data the split was not made from
    argv = ["--model", "random:tiny", "--data-root", str(root), "--split-file", synthetic_split.path,
            "--device", "cpu", "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    assert load_script("zeroshot").main(argv) == 2
    err = capsys.readouterr().err
    assert "extra_class" in err and "lacks" in err and not (tmp_path / "r" / "zeroshot.json").exists()


def test_make_split_replaces_nothing_without_force_and_writes_one_set(synthetic_root, tmp_path, capsys):
    out = tmp_path / "splits" / "mine.json"
    argv = ["--data-root", str(synthetic_root), "--out", str(out), "--fewshot-shots", "1 2", "--fewshot-seeds", "1"]
    assert make_split.main(argv) == 0
    first = {p: p.read_bytes() for p in out.parent.rglob("*.json")}
    assert len(first) == 3
    assert make_split.main(argv + ["--seed", "7"]) == 2
    assert "--force" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.parent.rglob("*.json")} == first
    assert make_split.main(argv + ["--seed", "7", "--force"]) == 0
    assert out.read_bytes() != first[out]
    assert not list(out.parent.rglob("*.tmp"))


def test_temp_files_of_a_killed_writer_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "coop").mkdir()
    host = _writer_tag().split("@")[1]
    stale = tmp_path / "coop" / f".shots1_seed1.json.{dead.pid}@{host}.abc123.tmp"
    live = tmp_path / f".zeroshot.json.{os.getpid()}@{host}.def456.tmp"
    # another machine's writer on a shared folder: its pid means nothing here, so it is never judged
    other = tmp_path / "coop" / f".shots2_seed1.json.{dead.pid}@another-node.abc123.tmp"
    older = tmp_path / f".zeroshot.json.{dead.pid}.ghi789.tmp"  # named before hosts were: this machine's
    for p in (stale, live, other, older):
        p.write_text("half")
    assert remove_stale_temp_files(tmp_path) == 2
    assert not stale.exists() and not older.exists() and live.exists() and other.exists()
    with atomic_path(tmp_path / "x.json") as tmp:  # our own temp files carry this machine's name
        assert tmp.name.startswith(f".x.json.{os.getpid()}@{host}.")


def test_demo_refuses_flags_it_would_ignore(tmp_path, capsys):
    assert run_all.main(["--demo", "--results", str(tmp_path), "--model", "random:RN50"]) == 2
    err = capsys.readouterr().err
    assert "--demo" in err and "--model" in err and not any(tmp_path.iterdir())


def test_a_resumed_sweep_redraws_a_stale_figure_and_report(tmp_path, capsys):
    argv = ["--demo", "--results", str(tmp_path), "--shots", "1", "--seeds", "1", "--epochs", "2", "--device", "cpu"]
    assert run_all.main(argv) == 0
    results = tmp_path / "demo"
    png, report = results / "fewshot.png", results / "REPORT_demo.md"
    old = time.time() - 3600
    for f in (png, report):
        os.utime(f, (old, old))
    # As if the sweep was killed after a run finished, before redrawing: what was drawn is recorded
    # only after drawing, so the record of it is missing (outputs are judged by content, not times).
    (results / ".drawn.json").unlink()
    capsys.readouterr()
    assert run_all.main(argv) == 0
    err = capsys.readouterr().err
    assert "0 to do" in err and png.stat().st_mtime > old + 60 and report.stat().st_mtime > old + 60
    assert str(report) in err


def test_make_synthetic_data_refuses_impossible_sizes(tmp_path, capsys):
    script = load_script("make_synthetic_data")
    assert script.main(["--out", str(tmp_path), "--per-class", "1"]) == 2
    assert script.main(["--out", str(tmp_path), "--classes", "99"]) == 2
    assert capsys.readouterr().err.count("error:") == 2 and not any(tmp_path.iterdir())
    with pytest.raises(UserError):
        make_synthetic_data(tmp_path, classes=())


def test_results_copied_in_with_old_times_are_drawn(tmp_path):
    """A result copied in (old file times) changes what the figure would show: it is redrawn."""
    from coop.report.plot import summarize
    from coop.runs.results import load_results

    def argv(folder, seed):
        return ["--demo", "--results", str(folder), "--shots", "1", "--seeds", str(seed), "--epochs", "2",
                "--device", "cpu", "--baselines", "none"]

    assert run_all.main(argv(tmp_path, 1)) == 0
    assert run_all.main(argv(tmp_path / "other", 2)) == 0  # the same synthetic data, seed 2, elsewhere
    results, png = tmp_path / "demo", tmp_path / "demo" / "fewshot.png"
    drawn_at = png.stat().st_mtime_ns
    old = time.time() - 3600
    for f in (tmp_path / "other" / "demo" / "coop").glob("shots1_seed2.*"):
        shutil.copy2(f, results / "coop" / f.name)
        os.utime(results / "coop" / f.name, (old, old))
    assert run_all.main(argv(tmp_path, 1)) == 0
    assert png.stat().st_mtime_ns != drawn_at
    assert summarize(load_results(results))["methods"]["CoOp"]["shots"][1]["n"] == 2
