"""Results are bound to what made them (issue 12): changed images, a mismatched .pt/.json pair, a
failing write -- each met as a user meets it (scripts, exit codes, messages, files left behind)."""
from __future__ import annotations

import errno
import json
import os
import shutil

import pytest
import torch

import coop.utils.atomic
import coop.methods.context
import coop.methods.train
from coop.runs.results import load_results, read_result
from conftest import ROOT, load_script

train_coop, zeroshot, run_all = load_script("train_coop"), load_script("zeroshot"), load_script("run_all")


@pytest.fixture
def data(synthetic_root, synthetic_split, tmp_path):
    """A private copy of the synthetic images (tests change them) and its split."""
    root = tmp_path / "data" / "101_ObjectCategories"
    shutil.copytree(synthetic_root, root)
    shutil.copy(synthetic_split.path, tmp_path / "split.json")
    return root, tmp_path / "split.json"


def argv(data, tmp_path, *extra):
    root, split = data
    return ["--model", "random:tiny", "--data-root", str(root), "--split-file", str(split), "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "results"), *extra]


def change_a_test_image(root, split_path):
    rel = json.loads(split_path.read_text())["test"][0][0]
    other = json.loads(split_path.read_text())["test"][-1][0]
    shutil.copyfile(root / other, root / rel)  # same path, other picture
    return rel


def test_changed_images_are_named_by_a_script_and_rerun_by_the_sweep(data, tmp_path, capsys):
    common = argv(data, tmp_path, "--epochs", "2")
    assert train_coop.main(common + ["--shots", "1"]) == 0
    assert zeroshot.main(common[:-2]) == 0  # no --epochs for zero-shot
    path = tmp_path / "results" / "coop" / "shots1_seed1.json"
    first = read_result(path)
    capsys.readouterr()
    assert train_coop.main(common + ["--shots", "1"]) == 0  # nothing changed: done already
    assert "already done" in capsys.readouterr().err

    change_a_test_image(*data)
    assert train_coop.main(common + ["--shots", "1"]) == 2
    err = capsys.readouterr().err
    assert "the images (their content)" in err and "--force" in err and err.count("\n") == 1
    assert read_result(path) == first  # untouched

    assert run_all.main(argv(data, tmp_path, "--epochs", "2", "--shots", "1", "--seeds", "1", "--no-report")) == 0
    err = capsys.readouterr().err
    assert "stale" in err and "redoing" in err
    again = read_result(path)
    assert again["run_id"] != first["run_id"] and again["inputs"]["images_sha256"] != first["inputs"]["images_sha256"]
    assert again["inputs"]["split_sha256"] == first["inputs"]["split_sha256"]


def test_a_pt_and_json_of_two_runs_are_an_unfinished_run(data, tmp_path, capsys):
    common = argv(data, tmp_path, "--epochs", "2")
    assert train_coop.main(common + ["--shots", "1", "--seed", "1"]) == 0
    assert train_coop.main(common + ["--shots", "1", "--seed", "2"]) == 0
    coop_dir = tmp_path / "results" / "coop"
    shutil.copyfile(coop_dir / "shots1_seed2.pt", coop_dir / "shots1_seed1.pt")  # as after a kill between writes
    assert read_result(coop_dir / "shots1_seed1.json") is None
    assert [r["seed"] for r in load_results(tmp_path / "results")["coop"]["CoOp"]] == [2]
    capsys.readouterr()
    assert zeroshot.main(argv(data, tmp_path, "--context", str(coop_dir / "shots1_seed1.pt"))) == 2
    assert "different runs" in capsys.readouterr().err
    assert train_coop.main(common + ["--shots", "1", "--seed", "1"]) == 0  # not "already done": redone
    assert read_result(coop_dir / "shots1_seed1.json") is not None


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")])
def test_a_failing_write_keeps_the_trained_context_and_result(data, tmp_path, capsys, monkeypatch, error):
    """A full disk while saving the context (torch.save raises RuntimeError or OSError): both the
    context and the result record are kept in the temp folder and named in one line."""
    real = coop.utils.atomic.torch_save

    def disk_full(obj, target):
        if "results" in str(target):
            raise error
        return real(obj, target)

    monkeypatch.setattr(coop.methods.train, "torch_save", disk_full)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert train_coop.main(argv(data, tmp_path, "--epochs", "2", "--shots", "1")) == 2
    err = capsys.readouterr().err
    assert (getattr(error, "strerror", None) or str(error).split(":")[0]) in err and "Traceback" not in err and err.count("error:") == 1
    saved = list((tmp_path / "tmp").glob("coop-*-shots1_seed1.pt"))
    assert len(saved) == 1 and str(saved[0]) in err
    assert torch.load(saved[0], weights_only=True)["state"]["ctx"].shape[0] == 16
    record = json.loads(saved[0].with_suffix(".json").read_text())
    assert str(saved[0].with_suffix(".json")) in err and record["run_id"] == torch.load(saved[0])["run_id"]
    assert not (tmp_path / "results" / "coop" / "shots1_seed1.json").exists()


def test_an_unwritable_results_folder_keeps_both(data, tmp_path, capsys, monkeypatch):
    """coop/ made read-only after preflight (another user's folder, a mount): context and record kept."""
    import coop.methods.train as train

    real_fit = train.fit

    def fit_then_lock(*a, **k):
        out = real_fit(*a, **k)
        (tmp_path / "results" / "coop").mkdir(parents=True, exist_ok=True)
        (tmp_path / "results" / "coop").chmod(0o500)
        return out

    monkeypatch.setattr(train, "fit", fit_then_lock)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    try:
        rc = train_coop.main(argv(data, tmp_path, "--epochs", "2", "--shots", "1"))
    finally:
        (tmp_path / "results" / "coop").chmod(0o700)
    err = capsys.readouterr().err
    if os.geteuid() == 0:  # root writes anywhere: the folder stays writable and the run finishes
        assert rc == 0
        return
    assert rc == 2 and len(list((tmp_path / "tmp").glob("coop-*-shots1_seed1.*"))) == 2, err


def test_a_json_given_as_context_gets_one_sentence(data, tmp_path, capsys):
    assert train_coop.main(argv(data, tmp_path, "--epochs", "2", "--shots", "1")) == 0
    capsys.readouterr()
    js = tmp_path / "results" / "coop" / "shots1_seed1.json"
    assert zeroshot.main(argv(data, tmp_path, "--context", str(js))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a result JSON" in err and "shots1_seed1.pt" in err


def test_every_module_that_computes_numbers_is_in_the_code_hash():
    """A new module on the computing path must be listed, or changing it would not make results stale."""
    from imports import imports_of, module_names

    from coop.runs.provenance import computing_modules

    COMPUTING_MODULES = computing_modules()
    modules = module_names()
    seen, todo = set(), ["methods.train", "methods.zeroshot", "pipeline.sweep"]
    while todo:  # the coop modules imported (transitively) by the modules that run experiments
        name = todo.pop()
        if name in seen or name not in modules or modules[name].name == "__init__.py":
            continue
        seen.add(name)
        todo += imports_of(name, modules[name])
    presentation = {"pipeline.sweep", "runs.results", "runs.provenance", "methods.departures", "utils.errors",
                    "utils.atomic", "methods.context", "runs.preflight", "utils.paths", "runs.cli_args",
                    "report.plot", "report.document", "report.tables", "report.analysis", "data.synthetic",
                    "model.device", "runs.validation", "runs.selection", "utils.progress",
                    "runs.locks", "runs.overwrite", "pipeline.eta", "utils.memory",
                    "runs.protocol", "methods.method", "methods.table", "utils.flocks", "runs.pairing", "utils.cpus"}  # which device, peak memory: recorded in each result's environment, not a number
    assert {"model.text_encoder", "features.views", "methods.train"} <= seen  # the walk follows the new layout
    assert seen - presentation <= set(COMPUTING_MODULES), sorted(seen - presentation - set(COMPUTING_MODULES))
    assert all(name in modules for name in COMPUTING_MODULES)  # no name left from an old layout
