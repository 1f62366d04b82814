"""Reliability (issue 7): every bad input is one clear error line and exit code 2, never a
traceback; unreadable images are named and left out; runs are reproducible; a diverging run
writes nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

import coop.model.clip_loader
from coop.model.clip_loader import random_clip
from coop.runs.results import read_result
from coop.data.split import fewshot, make_split, read_split, write_split
from conftest import load_script


train_coop, zeroshot, run_all = load_script("train_coop"), load_script("zeroshot"), load_script("run_all")
SCRIPTS = {"train_coop": train_coop, "zeroshot": zeroshot}


def user_error(capsys, rc: int, *needles: str) -> str:
    """Exit code 2, no traceback, and the last stderr line is the only ``error:`` line; it holds
    every needle. Returns that line."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err
    for needle in needles:
        assert needle in errors[0]
    return errors[0]


@pytest.fixture
def args(synthetic_root, synthetic_split, tmp_path):
    """Valid arguments of a short run; tests override one of them."""
    return {"--model": "random:tiny", "--data-root": str(synthetic_root), "--split-file": synthetic_split.path,
            "--device": "cpu", "--results": str(tmp_path / "results"), "--cache-dir": str(tmp_path / "cache")}


def argv(args: dict, **train) -> list:
    out = [x for kv in args.items() for x in kv]
    for k, v in train.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def train_argv(args, **over):
    return argv(args, **{"shots": 1, "seed": 1, "epochs": 3, "views": 2, **over})


def no_results(tmp_path):
    """The result files (JSON, learned context) under tmp_path/results: [] when a run wrote none."""
    return [p for p in (tmp_path / "results").rglob("*") if p.suffix in (".json", ".pt")]


# --- bad data roots -----------------------------------------------------------------------------

def _data_root(kind: str, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    if kind == "empty":
        root.mkdir()
    elif kind == "no 101_ObjectCategories":
        (root / "caltech-101" / "images").mkdir(parents=True)
        (root / "caltech-101" / "images" / "image_0001.jpg").write_bytes(b"x")
    elif kind == "no classes":
        (root / "101_ObjectCategories" / "BACKGROUND_Google").mkdir(parents=True)
    return root


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("kind,needle", [("missing", "does not exist"), ("empty", "no 101_ObjectCategories folder"),
                                         ("no 101_ObjectCategories", "no 101_ObjectCategories folder"),
                                         ("no classes", "holds no class folders")])
def test_bad_data_root(script, kind, needle, args, tmp_path, capsys):
    root = _data_root(kind, tmp_path)
    args["--data-root"] = str(root)
    a = train_argv(args) if script == "train_coop" else argv(args)
    line = user_error(capsys, SCRIPTS[script].main(a), needle, str(root))
    assert "--data-root" in line or "101_ObjectCategories/<class>" in line
    assert no_results(tmp_path) == []


# --- bad models ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_bytes():
    import io

    buf = io.BytesIO()
    torch.save(random_clip("tiny").state_dict(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind,needle", [("missing", "no such file"), ("text file", "not a CLIP checkpoint"),
                                         ("truncated", "truncated"), ("folder", "is not a file")])
def test_bad_model_file(kind, needle, args, tmp_path, capsys, checkpoint_bytes):
    path = tmp_path / "RN50.pt"
    if kind == "text file":
        path.write_text("this is not a checkpoint\n")
    elif kind == "truncated":
        path.write_bytes(checkpoint_bytes[: len(checkpoint_bytes) // 2])
    elif kind == "folder":
        path.mkdir()
    args["--model"] = str(path)
    user_error(capsys, train_coop.main(train_argv(args)), needle, str(path))
    assert no_results(tmp_path) == []


def test_named_model_offline_without_cached_weights(args, tmp_path, capsys, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    download_root = tmp_path / "clip"
    monkeypatch.setattr(coop.model.clip_loader, "default_download_root", lambda: str(download_root))
    args["--model"] = "RN50"
    for script, a in ((train_coop, train_argv(args)), (zeroshot, argv(args))):
        line = user_error(capsys, script.main(a), "RN50", str(download_root / "RN50.pt"), "--model")
        assert "could not be downloaded" in line
    assert not (download_root / "RN50.pt").exists()


# --- bad flags ----------------------------------------------------------------------------------

@pytest.mark.parametrize("over,needles", [
    (dict(shots=0), ["--shots", "positive integer", "0"]),
    (dict(shots="abc"), ["--shots", "invalid int value", "abc"]),
    (dict(class_token_position="side"), ["--class-token-position", "side", "end, middle, front"]),
    (dict(ctx_init="a photo of a"), ["--ctx-init", "4 tokens", "--n-ctx 4"]),
    (dict(epochs=0), ["--epochs", "positive integer"]),
    (dict(views=0), ["--views", "positive integer"]),
    (dict(batch_size=0), ["--batch-size", "positive integer"]),
    (dict(lr=-1), ["--lr", "positive"]),
    (dict(lr="nan"), ["--lr", "positive"]),
    (dict(seed=-1), ["--seed", "[0, 2**32)"]),
    (dict(seed=2 ** 32), ["--seed", "[0, 2**32)"]),
    (dict(momentum=1.5), ["--momentum", "[0, 1)"]),
    (dict(momentum=-0.1), ["--momentum", "[0, 1)"]),
    (dict(weight_decay=-1), ["--weight-decay", ">= 0"]),
    (dict(weight_decay="inf"), ["--weight-decay", "finite"]),
    (dict(warmup_lr=0), ["--warmup-lr", "positive"]),
    (dict(ctx_init=""), ["--ctx-init is empty"]),
    (dict(n_ctx=74), ["--n-ctx 74 is too long", "77 tokens", "or less"]),
    (dict(device="cuda:7"), ["--device cuda:7", "no CUDA GPU"]),
    (dict(precision="fp16", device="cpu"), ["--precision fp16", "CUDA"]),
    (dict(workers=-1), ["--workers", ">= 0"]),
    (dict(warmup_epochs=3), ["--warmup-epochs", "epochs=3"]),
    (dict(block_mod="prefix"), ["--block-mod", "prefix", "adapter, lora"]),
    (dict(no_such_flag=1), ["unrecognized arguments", "--no-such-flag"]),
])
def test_bad_training_flag(over, needles, args, tmp_path, capsys):
    user_error(capsys, train_coop.main(train_argv(args, **over)), *needles)
    assert no_results(tmp_path) == []


@pytest.mark.parametrize("flag", ["--results", "--cache-dir"])
def test_an_output_folder_that_is_a_file_or_not_writable(flag, args, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    user_error(capsys, train_coop.main(train_argv(args) + [flag, str(a_file)]), flag, "is a file")
    user_error(capsys, train_coop.main(train_argv(args) + [flag, str(a_file / "below")]), flag, "is a file")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        user_error(capsys, train_coop.main(train_argv(args) + [flag, str(ro / "x")]), flag, "not writable")


def test_more_shots_than_a_class_has(args, synthetic_split, tmp_path, capsys):
    per_class = min(sum(1 for it in synthetic_split.train if it[1] == c) for c in range(len(synthetic_split.classnames)))
    user_error(capsys, train_coop.main(train_argv(args, shots=per_class + 1)),
               f"--shots {per_class + 1}", f"use --shots {per_class} or fewer")
    assert no_results(tmp_path) == []


@pytest.mark.parametrize("flag,value,needle", [("--shots", "1 abc", "does not parse"), ("--seeds", "1,x", "does not parse"),
                                               ("--shots", "", "is empty"), ("--shots", "0 1", ">= 1"),
                                               ("--seeds", "1 1", "repeats"), ("--seeds", "-1", ">= 0")])
def test_run_all_lists_that_do_not_parse(flag, value, needle, args, tmp_path, capsys):
    user_error(capsys, run_all.main(argv(args) + ["--no-report", flag, value]), flag, needle)
    assert not (tmp_path / "results").exists()


def test_run_all_checks_every_shot_before_running_anything(tmp_path, capsys):
    """Too many shots for the data fails up front, not after the runs before it."""
    results = tmp_path / "results"
    rc = run_all.main(["--demo", "--results", str(results), "--shots", "1 7", "--seeds", "1", "--epochs", "2",
                       "--views", "2", "--no-report", "--device", "cpu"])
    user_error(capsys, rc, "--shots 7", "or fewer")
    assert [p.name for p in results.rglob("*") if p.suffix in (".json", ".pt", ".png")] == ["split.json"]


# --- split files that do not match the data -----------------------------------------------------

def _bad_split(kind: str, split_path: str, tmp_path: Path) -> Path:
    obj = json.loads(Path(split_path).read_text())
    out = tmp_path / "split.json"
    if kind == "missing":
        return tmp_path / "nope.json"
    if kind == "not json":
        out.write_text('{"train": [')
        return out
    if kind == "unknown class":
        obj["test"][0] = ["zebra/image_0001.jpg", obj["test"][0][1], obj["test"][0][2]]
    elif kind == "missing image":
        obj["test"][0] = [obj["test"][0][0].split("/")[0] + "/image_0999.jpg"] + obj["test"][0][1:]
    elif kind == "not coop's format":
        obj = {"train": obj["train"]}
    elif kind == "inconsistent labels":
        obj["test"][0] = [obj["test"][0][0], obj["test"][0][1], "zebra"]
    out.write_text(json.dumps(obj))
    return out


@pytest.mark.parametrize("kind,needle", [("missing", "does not exist"), ("not json", "not valid JSON"),
                                         ("unknown class", "zebra"), ("missing image", "image_0999.jpg"),
                                         ("not coop's format", "CoOp's format"), ("inconsistent labels", "zebra")])
def test_split_that_does_not_match_the_data(kind, needle, args, synthetic_split, tmp_path, capsys):
    path = _bad_split(kind, synthetic_split.path, tmp_path)
    args["--split-file"] = str(path)
    user_error(capsys, train_coop.main(train_argv(args)), needle, str(path))
    assert no_results(tmp_path) == []


def test_split_removed_after_a_finished_run_is_named_as_such(args, synthetic_split, tmp_path, capsys):
    split = tmp_path / "split.json"
    shutil.copyfile(synthetic_split.path, split)
    args["--split-file"] = str(split)
    assert train_coop.main(train_argv(args)) == 0
    split.unlink()  # the finished result must not be reported as made "with other settings"
    line = user_error(capsys, train_coop.main(train_argv(args)), str(split), "does not exist")
    assert "other settings" not in line


# --- unreadable images --------------------------------------------------------------------------

def test_unreadable_images_are_named_left_out_and_recorded(synthetic_root, tmp_path, capsys):
    """A test image that does not decode is left out, named and counted; one a run trains on is refused
    (issue 36: a K-shot run missing an image is not a K-shot run; tests/test_guards_left_out.py)."""
    root = tmp_path / "data" / "101_ObjectCategories"
    shutil.copytree(synthetic_root, root)
    write_split(make_split(root), tmp_path / "split.json")  # the split is made while every image is fine
    split = read_split(tmp_path / "split.json")
    bad_test = split.test[5][0]
    bad_train = fewshot(split.train, 2, 1)[3][0]  # one of the images the 2-shot run trains on
    (root / bad_test).write_bytes((root / bad_test).read_bytes()[:400])  # truncated
    (root / bad_train).write_bytes(b"not an image")
    args = {"--model": "random:tiny", "--data-root": str(root), "--split-file": str(tmp_path / "split.json"),
            "--device": "cpu", "--results": str(tmp_path / "results"), "--cache-dir": str(tmp_path / "cache")}

    line = user_error(capsys, train_coop.main(train_argv(args, shots=2)), str(root / bad_train), "cannot be read")
    assert "make_split" in line and not (tmp_path / "results" / "coop" / "shots2_seed1.json").exists()
    (root / bad_train).write_bytes((synthetic_root / bad_train).read_bytes())  # the user puts the image back

    assert train_coop.main(train_argv(args, shots=2)) == 0
    err = capsys.readouterr().err
    assert f"unreadable image left out: {root / bad_test}" in err
    rec = read_result(tmp_path / "results" / "coop" / "shots2_seed1.json")
    assert set(rec["skipped_images"]) == {bad_test} and rec["n_test"] == len(split.test) - 1
    assert len(rec["fewshot_train"]) == 2 * 10
    assert list(rec["per_class_accuracy"]) == split.classnames

    assert zeroshot.main(argv(args)) == 0
    zs = read_result(tmp_path / "results" / "zeroshot.json")
    assert set(zs["skipped_images"]) == {bad_test} and zs["n_test"] == len(split.test) - 1


@pytest.mark.parametrize("part,needle", [("test", "no test image"), ("train", "cannot be read")])
def test_no_readable_image_at_all_is_a_clear_error(part, needle, synthetic_root, tmp_path, capsys):
    root = tmp_path / "data" / "101_ObjectCategories"
    shutil.copytree(synthetic_root, root)
    write_split(make_split(root), tmp_path / "split.json")
    split = read_split(tmp_path / "split.json")
    for rel in ([it[0] for it in split.test] if part == "test" else [it[0] for it in fewshot(split.train, 1, 1)]):
        (root / rel).write_bytes(b"")
    args = {"--model": "random:tiny", "--data-root": str(root), "--split-file": str(tmp_path / "split.json"),
            "--device": "cpu", "--results": str(tmp_path / "results"), "--cache-dir": str(tmp_path / "cache")}
    user_error(capsys, train_coop.main(train_argv(args)), needle)
    assert no_results(tmp_path) == []


# --- reproducibility ----------------------------------------------------------------------------

def test_same_seed_same_result_other_seed_other_context(args, tmp_path):
    def run(name, cache, seed=1):
        a = {**args, "--results": str(tmp_path / name), "--cache-dir": str(tmp_path / cache)}
        assert train_coop.main(train_argv(a, shots=2, seed=seed, epochs=4)) == 0
        path = tmp_path / name / "coop" / f"shots2_seed{seed}.json"
        return read_result(path), torch.load(path.with_suffix(".pt"), weights_only=True)["state"]

    first, ctx1 = run("a", "cache")
    for name, cache in (("b", "cache"), ("c", "fresh_cache")):  # the cache filled by "a", then an empty one
        rec, ctx = run(name, cache)
        assert rec["accuracy"] == first["accuracy"] and rec["per_class_accuracy"] == first["per_class_accuracy"]
        assert rec["history"] == first["history"] and rec["fewshot_train"] == first["fewshot_train"]
        assert ctx.keys() == ctx1.keys() and all(torch.equal(ctx[k], ctx1[k]) for k in ctx)
    other, ctx2 = run("a", "cache", seed=2)
    assert not torch.equal(ctx2["ctx"], ctx1["ctx"])
    assert other["fewshot_train"] != first["fewshot_train"]


# --- divergence ---------------------------------------------------------------------------------

def test_nan_loss_stops_the_run_and_writes_nothing(args, tmp_path, capsys):
    line = user_error(capsys, train_coop.main(train_argv(args, lr="1e30", epochs=5)), "loss", "--lr", "no result")
    assert "nan" in line or "inf" in line
    assert no_results(tmp_path) == []


def test_parameters_that_blow_up_in_the_last_step_write_nothing(args, tmp_path, capsys, monkeypatch):
    """The loss is checked before each step; the last step's result must be checked too."""
    epochs = 3  # 1 shot x 10 classes: one batch per epoch, so the last step is step 3

    class LastStepExplodes(torch.optim.SGD):
        steps = 0

        def step(self, closure=None):
            super().step(closure)
            LastStepExplodes.steps += 1
            if LastStepExplodes.steps == epochs:
                with torch.no_grad():
                    for group in self.param_groups:
                        for p in group["params"]:
                            p.fill_(float("inf"))

    monkeypatch.setattr(torch.optim, "SGD", LastStepExplodes)
    user_error(capsys, train_coop.main(train_argv(args, epochs=epochs)), "inf/nan", "--lr")
    assert LastStepExplodes.steps == epochs
    assert no_results(tmp_path) == []


def test_split_json_of_the_wrong_shape_names_the_part(args, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": 5, "val": [], "test": []}')
    user_error(capsys, train_coop.main(train_argv({**args, "--split-file": str(bad)})), "'train'", "must be a list")
