"""Issue 36, class 5 (degenerate inputs) and the one-line messages of class 3 (name the flag the user
ran), as the user meets them: the scripts, on real files in temporary folders.

- A split of one class: every prediction is that class, zero-shot and CoOp said 100%, and the linear
  probe died with scikit-learn's traceback. make_split refuses to make it, read_split (every command)
  to read it. Base-to-new with halves of one class gave 100/100/100 and "[+0.00, +0.00]" verdicts:
  make_split says base-to-new is out of reach, run_all --protocol base2new refuses before any run.
- Messages name the flag of the command that was run: --base2new-shots, --fewshot-shots, $COOP_CACHE;
  a split file that is not a regular file is not "missing".
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coop.data.split import dumps_split, make_split, read_split
from conftest import load_script

make_split_script, zeroshot, train_coop, run_all = (load_script(n) for n in ("make_split", "zeroshot", "train_coop",
                                                                           "run_all"))


def _one_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _tree(synthetic_root: Path, tmp_path: Path, n_classes: int) -> Path:
    root = tmp_path / f"data{n_classes}" / "101_ObjectCategories"
    classes = sorted(p.name for p in synthetic_root.iterdir() if p.is_dir() and p.name not in ("BACKGROUND_Google",
                                                                                                "Faces_easy"))
    for folder in classes[:n_classes]:
        shutil.copytree(synthetic_root / folder, root / folder)
    return root


def _run_argv(root: Path, split: Path, tmp_path: Path) -> list:
    return ["--model", "random:tiny", "--data-root", str(root), "--split-file", str(split), "--device", "cpu",
            "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]


def test_a_one_class_split_is_refused_by_make_split_and_by_every_command_that_reads_one(synthetic_root, tmp_path,
                                                                                         capsys):
    root = _tree(synthetic_root, tmp_path, 1)
    out = tmp_path / "one.json"
    _one_error(capsys, make_split_script.main(["--data-root", str(root), "--out", str(out), "--fewshot-shots", "1"]),
               str(root), "1 class", "at least 2")
    assert not out.exists()
    # a split of one class made by hand (or by an older version) is refused by whatever reads it
    split = {p: [] for p in ("train", "val", "test")}
    folder = next(root.iterdir()).name
    files = sorted(f.name for f in (root / folder).iterdir())
    for i, f in enumerate(files):
        split["train" if i < 6 else "val" if i < 8 else "test"].append([f"{folder}/{f}", 0, folder])
    out.write_text(dumps_split(split))
    argv = _run_argv(root, out, tmp_path)
    _one_error(capsys, zeroshot.main(argv), str(out), "1 class")
    _one_error(capsys, train_coop.main(argv + ["--shots", "1", "--epochs", "2"]), str(out), "1 class")
    _one_error(capsys, run_all.main(argv + ["--shots", "1", "--seeds", "1", "--baselines", "lp", "--no-report"]),
               str(out), "1 class")
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))


def test_too_few_classes_for_two_halves_of_two_is_said_by_make_split_and_refused_by_base2new(synthetic_root,
                                                                                            tmp_path, capsys):
    root = _tree(synthetic_root, tmp_path, 3)
    out = tmp_path / "three.json"
    assert make_split_script.main(["--data-root", str(root), "--out", str(out), "--fewshot-shots", "1"]) == 0
    err = capsys.readouterr().err
    assert "too few for base-to-new" in err and "needs 4" in err, err
    argv = _run_argv(root, out, tmp_path) + ["--seeds", "1", "--no-report"]
    assert run_all.main(argv + ["--shots", "1", "--baselines", "none", "--epochs", "2", "--views", "1"]) == 0  # few-shot runs
    capsys.readouterr()
    _one_error(capsys, run_all.main(argv + ["--protocol", "base2new", "--base2new-shots", "1", "--epochs", "2"]),
               "at least 4 classes", "each half has 2", str(out))
    assert not (tmp_path / "results" / "base2new").exists()  # refused before any run


@pytest.mark.parametrize("shots,needle", [("7", "use --base2new-shots 6 or fewer"),
                                          ("0", "--base2new-shots must be a positive integer")])
def test_base_to_new_names_its_own_shots_flag(shots, needle, tmp_path, capsys):
    code = run_all.main(["--demo", "--protocol", "base2new", "--results", str(tmp_path), "--seeds", "1",
                         "--base2new-shots", shots, "--no-report"])
    line = _one_error(capsys, code, needle)
    assert "--shots" not in line.replace("--base2new-shots", "")


def test_make_split_names_fewshot_shots(synthetic_root, tmp_path, capsys):
    code = make_split_script.main(["--data-root", str(synthetic_root), "--out", str(tmp_path / "s.json"),
                                   "--fewshot-shots", "1 7"])
    line = _one_error(capsys, code, "--fewshot-shots 7", "use --fewshot-shots 6 or fewer")
    assert "--shots" not in line.replace("--fewshot-shots", "")
    assert not (tmp_path / "s.json").exists()


def test_a_cache_folder_set_by_coop_cache_is_named_as_such(synthetic_root, synthetic_split, tmp_path, monkeypatch,
                                                           capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    monkeypatch.setenv("COOP_CACHE", str(a_file))
    argv = [a for a in _run_argv(synthetic_root, Path(synthetic_split.path), tmp_path)
            if a not in ("--cache-dir", str(tmp_path / "cache"))]
    line = _one_error(capsys, zeroshot.main(argv), f"$COOP_CACHE {a_file}", "is a file")
    assert "--cache-dir" not in line
    line = _one_error(capsys, zeroshot.main(argv + ["--cache-dir", str(a_file)]), f"--cache-dir {a_file}")


@pytest.mark.parametrize("where,needle", [("/dev/null", "not a regular file"), ("folder", "is a folder")])
def test_a_split_file_that_is_not_a_file_is_not_called_missing(where, needle, synthetic_root, tmp_path, capsys):
    path = Path(where) if where.startswith("/") else tmp_path
    line = _one_error(capsys, zeroshot.main(_run_argv(synthetic_root, path, tmp_path)), str(path), needle)
    assert "does not exist" not in line
    with pytest.raises(Exception, match=needle):
        read_split(path)


def test_make_split_and_read_split_share_one_class_check(synthetic_root):
    """The 1-class check is one function (coop.data.split.check_classes), called by both."""
    import inspect

    import coop.data.split as split_module

    assert "check_classes(" in inspect.getsource(split_module.make_split)
    assert "check_classes(" in inspect.getsource(split_module.read_split)
    assert make_split(synthetic_root)  # ten classes: no complaint
