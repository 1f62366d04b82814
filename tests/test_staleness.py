"""A result is reused only while everything it was made from is unchanged (coop.runs.provenance).

1. Staleness per input: each input of a run (the split file, a test image, a few-shot training image,
   the weights, the code) changed alone makes exactly the runs that read it stale: the sweep redoes
   those and keeps the others; a single script refuses with one ``error:`` line naming that input
   (and only it) and passes with ``--force``. A changed setting is "other settings": refused by the
   sweep and the scripts alike; a flag that is not a setting (workers, batch of the encoder, cache
   folder) reuses the result.
2. Provenance coverage: the images a run opens are exactly the images its record hashes
   (``run_images``), both ways, for zero-shot, CoOp and the baselines.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import coop.runs.provenance as provenance
from coop.runs.provenance import INPUT_NAMES, images_sha256
from coop.runs.results import read_result
from conftest import load_script

train_coop, zeroshot, run_all = load_script("train_coop"), load_script("zeroshot"), load_script("run_all")

TRAIN = ["--epochs", "2", "--views", "2"]
# the runs of the sweep below, by name: their result files under the results folder
RUNS = {"zeroshot": "zeroshot.json", "ensemble": "zeroshot_prompts/ensemble.json",
        "coop_1_1": "coop/shots1_seed1.json", "coop_1_2": "coop/shots1_seed2.json",
        "tip_1_1": "baselines/tip_adapter/shots1_seed1.json", "tip_1_2": "baselines/tip_adapter/shots1_seed2.json",
        "tipf_1_1": "baselines/tip_adapter_f/shots1_seed1.json", "tipf_1_2": "baselines/tip_adapter_f/shots1_seed2.json"}


def demo_sweep_argv(out, *extra):
    return ["--demo", "--results", str(out), "--shots", "1", "--seeds", "1 2", *TRAIN, "--device", "cpu",
            "--baselines", "tip", "--no-report", *extra]


def demo_common(results: Path) -> list:
    """The single scripts' flags that address the demo sweep's own data, split, results and cache."""
    return ["--model", "random:tiny", "--data-root", str(results / "data"), "--split-file", str(results / "split.json"),
            "--results", str(results), "--cache-dir", str(results / "cache"), "--device", "cpu"]


def script_call(name: str, common: list, results: Path):
    """(script, argv) that recomputes run ``name`` of the sweep on its own; None for a baseline
    (only the sweep runs them)."""
    if name.startswith("tip"):
        return None
    if name == "zeroshot":
        return zeroshot, list(common)
    if name == "ensemble":
        return zeroshot, common + ["--templates", "ensemble", "--out", str(results / RUNS["ensemble"])]
    shots, seed = name.split("_")[1:]
    return train_coop, common + TRAIN + ["--shots", shots, "--seed", seed]


@pytest.fixture(scope="module", autouse=True)
def steady():
    """For this module's duration: the code hash frozen at its real value (the working tree may be
    edited while the tests run, which would make every record stale between two steps), and the
    zero-shot text weights memoised by everything they depend on (model weights, class names,
    prompts, precision): the zero-shot runs are the sweep's slowest part on a tiny CPU model."""
    import coop.methods.baselines as baselines
    import coop.methods.zeroshot as zs

    code, real, memo = provenance.code_sha256(), zs.zeroshot_weights, {}

    def weights(model, classnames, templates, precision="fp32", *words):  # words: the data set's prompt_name
        key = (model.clip_info.sha256, tuple(classnames), tuple(templates), precision, *words)
        if key not in memo:
            memo[key] = real(model, classnames, templates, precision, *words)
        return memo[key].clone()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops on a shared machine: one thread waits for no other
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(provenance, "code_sha256", lambda: code)
        mp.setattr(zs, "zeroshot_weights", weights)
        mp.setattr(baselines, "zeroshot_weights", weights)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def swept(steady, tmp_path_factory):
    """One small demo sweep (zero-shot, its ensemble variant, CoOp, Tip-Adapter and -F at 1 shot,
    seeds 1 and 2), made once."""
    out = tmp_path_factory.mktemp("staleness")
    assert run_all.main(demo_sweep_argv(out)) == 0
    assert all(read_result(out / "demo" / p) is not None for p in RUNS.values())
    return out


def _copy(swept, tmp_path):
    shutil.copytree(swept, tmp_path / "r")
    return tmp_path / "r", tmp_path / "r" / "demo"


def snapshot(results: Path, runs=RUNS) -> dict:
    return {n: ((results / p).stat().st_mtime_ns, json.loads((results / p).read_text())["run_id"])
            for n, p in runs.items()}


def named_inputs(err: str) -> set:
    """The inputs a refusal names: '... was made from other inputs: A, B changed since; ...'."""
    assert "other inputs: " in err and " changed since" in err, err
    return set(err.split("other inputs: ", 1)[1].split(" changed since", 1)[0].split(", "))


def refuses(capsys, script, argv) -> str:
    capsys.readouterr()
    rc = script.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--force" in err, err
    return err


def check_input(capsys, results, common, sweep, runs, change, undo, changed_keys, readers):
    """Change one input: (b) each single script refuses if its run read it (naming exactly that
    input), else it says "already done"; (a) the sweep redoes exactly the readers, whose new inputs
    differ from the old ones in ``changed_keys`` alone; then, the input changed back, a reader's
    script refuses again and passes with --force, with the run_id of the original record."""
    original = {n: read_result(results / p) for n, p in runs.items()}
    before = snapshot(results, runs)
    assert readers and readers <= set(runs)
    change()
    names = {INPUT_NAMES[k] for k in changed_keys}
    for n in runs:  # (b)
        if script_call(n, common, results) is None:
            continue
        raw = (results / runs[n]).read_bytes()
        script, argv = script_call(n, common, results)
        if n in readers:
            err = refuses(capsys, script, argv)
            assert str(results / runs[n]) in err and named_inputs(err) == names, (n, err)
        else:
            capsys.readouterr()
            assert script.main(argv) == 0
            assert "already done" in capsys.readouterr().err, n
        assert (results / runs[n]).read_bytes() == raw, n  # a refusal or a reuse touches nothing

    capsys.readouterr()
    assert sweep() == 0  # (a)
    after = snapshot(results, runs)
    redone = {n for n in runs if after[n] != before[n]}
    assert redone == readers, (redone, readers)
    for n in redone:
        new = read_result(results / runs[n])
        assert new is not None and new["run_id"] != original[n]["run_id"]
        assert new["identity"] == original[n]["identity"]
        assert {k for k in INPUT_NAMES if new["inputs"].get(k) != original[n]["inputs"].get(k)} == set(changed_keys), n
    assert "stale" in capsys.readouterr().err

    undo()  # the sweep's new records are now the stale ones
    for n in sorted(readers & {"coop_1_1", "zeroshot"}):
        script, argv = script_call(n, common, results)
        assert named_inputs(refuses(capsys, script, argv)) == names
        assert script.main(argv + ["--force"]) == 0
        assert read_result(results / runs[n])["run_id"] == original[n]["run_id"]  # same settings and inputs, same id


# --- 1. staleness per input ---------------------------------------------------------------------------

def test_the_split_file_alone(swept, tmp_path, capsys):
    out, results = _copy(swept, tmp_path)
    split = results / "split.json"
    raw = split.read_bytes()
    other = json.dumps(json.loads(raw), indent=3).encode()  # the same items, other bytes
    assert other != raw

    check_input(capsys, results, demo_common(results), lambda: run_all.main(demo_sweep_argv(out)), RUNS,
                change=lambda: split.write_bytes(other), undo=lambda: split.write_bytes(raw),
                changed_keys={"split_sha256"}, readers=set(RUNS))


def test_one_test_image(swept, tmp_path, capsys):
    out, results = _copy(swept, tmp_path)
    rel = json.loads((results / "split.json").read_text())["test"][0][0]
    image = results / "data" / "101_ObjectCategories" / rel
    raw = image.read_bytes()

    check_input(capsys, results, demo_common(results), lambda: run_all.main(demo_sweep_argv(out)), RUNS,
                change=lambda: Image.new("RGB", (40, 40), (0, 200, 0)).save(image),  # same name, other pixels
                undo=lambda: image.write_bytes(raw),
                changed_keys={"images_sha256", "test_images_sha256"}, readers=set(RUNS))


def test_one_fewshot_training_image_redoes_only_its_readers(swept, tmp_path, capsys):
    out, results = _copy(swept, tmp_path)
    recs = {n: read_result(results / p) for n, p in RUNS.items()}
    seed1 = {it[0] for it in recs["coop_1_1"]["fewshot_train"]}
    seed2 = {it[0] for it in recs["coop_1_2"]["fewshot_train"]}
    rel = sorted(seed1 - seed2)[0]  # read by seed 1's run, not by seed 2's
    split = json.loads((results / "split.json").read_text())
    assert rel not in {it[0] for part in ("test", "val") for it in split[part]}
    readers = {n for n, r in recs.items()
               if rel in {it[0] for it in r.get("fewshot_train", []) + r.get("validation", {}).get("items", [])}}
    assert readers == {"coop_1_1", "tip_1_1", "tipf_1_1"}  # not zero-shot, not the other seed
    image = results / "data" / "101_ObjectCategories" / rel
    raw = image.read_bytes()

    check_input(capsys, results, demo_common(results), lambda: run_all.main(demo_sweep_argv(out)), RUNS,
                change=lambda: Image.new("RGB", (40, 40), (200, 0, 200)).save(image),
                undo=lambda: image.write_bytes(raw), changed_keys={"images_sha256"}, readers=readers)


def test_the_code(swept, tmp_path, capsys, monkeypatch):
    out, results = _copy(swept, tmp_path)
    check_input(capsys, results, demo_common(results), lambda: run_all.main(demo_sweep_argv(out)), RUNS,
                change=lambda: monkeypatch.setattr(provenance, "code_sha256", lambda: "0" * 64),  # as after an edit
                undo=monkeypatch.undo, changed_keys={"code_sha256"}, readers=set(RUNS))


def test_random_weights_are_not_compared_but_named_in_the_settings(swept):
    """random:* weights have no file: their hash is not an input (None is never compared); which
    random model it was is a setting (``model`` in the identity), so another one is refused as
    other settings (tested below with random:RN50)."""
    rec = read_result(swept / "demo" / RUNS["coop_1_1"])
    assert rec["inputs"]["weights_sha256"] is None and rec["random_weights"] and rec["model"]["sha256"]
    assert rec["identity"]["model"] == "random:tiny"
    assert provenance.changed_inputs({**rec["inputs"], "weights_sha256": "x"}, rec["inputs"]) == []
    assert provenance.changed_inputs(rec["inputs"], {**rec["inputs"], "weights_sha256": "x"}) == ["the CLIP weights"]


WEIGHT_RUNS = {k: RUNS[k] for k in ("zeroshot", "ensemble", "coop_1_1")}


@pytest.fixture(scope="module")
def weights_swept(steady, synthetic_root, synthetic_split, tmp_path_factory):
    """A (non-demo) sweep on a CLIP checkpoint file: a state_dict of random_clip("tiny"), which
    load_clip reads through clip.load like OpenAI's weights, so its hash is an input."""
    from coop.model.clip_loader import random_clip

    out = tmp_path_factory.mktemp("weights")
    shutil.copytree(synthetic_root, out / "data" / "101_ObjectCategories")
    shutil.copy(synthetic_split.path, out / "split.json")
    torch.save(random_clip("tiny", seed=0).state_dict(), out / "clip.pt")
    assert run_all.main(weights_sweep_argv(out)) == 0
    return out


def weights_common(out: Path) -> list:
    return ["--model", str(out / "clip.pt"), "--data-root", str(out / "data"), "--split-file", str(out / "split.json"),
            "--results", str(out / "results"), "--cache-dir", str(out / "cache"), "--device", "cpu"]


def weights_sweep_argv(out: Path) -> list:
    return weights_common(out) + ["--shots", "1", "--seeds", "1", *TRAIN, "--baselines", "none", "--no-report"]


def test_the_weights(weights_swept, tmp_path, capsys):
    from coop.model.clip_loader import random_clip

    out = weights_swept  # not copied: the checkpoint's path is a setting (``model``), so a copy would be refused
    results, model = out / "results", out / "clip.pt"
    rec = read_result(results / RUNS["coop_1_1"])
    assert rec["inputs"]["weights_sha256"] == rec["model"]["sha256"] and not rec["random_weights"]
    raw = model.read_bytes()
    other = tmp_path / "other.pt"
    torch.save(random_clip("tiny", seed=1).state_dict(), other)
    assert other.read_bytes() != raw

    # another checkpoint path is another setting ("model"), refused as such by the scripts
    for name in ("coop_1_1", "zeroshot"):
        script, argv = script_call(name, weights_common(out), results)
        err = refuses(capsys, script, argv + ["--model", str(other)])
        assert "other settings" in err and "model:" in err and str(other) in err

    # the same path, other weights: an input
    check_input(capsys, results, weights_common(out), lambda: run_all.main(weights_sweep_argv(out)), WEIGHT_RUNS,
                change=lambda: shutil.copyfile(other, model), undo=lambda: model.write_bytes(raw),
                changed_keys={"weights_sha256"}, readers=set(WEIGHT_RUNS))


# every setting of a CoOp run (its identity) but shots, seed and block_mod (they choose the result
# file), model (below) and precision (amp/fp16 need hardware): flags that change it alone
SETTINGS = {
    "n_ctx": ["--n-ctx", "8"],
    "class_token_position": ["--class-token-position", "middle"],
    "ctx_init": ["--ctx-init", "a photo of a", "--n-ctx", "4"],  # the words must fit --n-ctx
    "csc": ["--csc"],
    "epochs": ["--epochs", "3"],
    "lr": ["--lr", "0.01"],
    "momentum": ["--momentum", "0.5"],
    "weight_decay": ["--weight-decay", "0.001"],
    "batch_size": ["--batch-size", "8"],
    "warmup_epochs": ["--warmup-epochs", "0"],
    "warmup_lr": ["--warmup-lr", "0.0001"],
    "views": ["--views", "3"],
    "crop_seed": ["--crop-seed", "7"],
    "independent_crops": ["--independent-crops"],
    "sampling": ["--sampling", "coop"],
    "fast": ["--no-fast"],
}


def test_every_coop_setting_is_listed():
    from coop.methods.train_config import TrainConfig

    assert set(TrainConfig().identity()) == set(SETTINGS) | {"shots", "seed", "block_mod", "model", "precision",
                                                            "dataset",  # tests/test_datasets.py
                                                            "variant"}  # run_all's, its own folder (coop_longer/)


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_a_changed_setting_is_refused_by_the_script_and_the_sweep(swept, tmp_path, capsys, key):
    out, results = _copy(swept, tmp_path)
    before = {p: (results / p).read_bytes() for p in RUNS.values()}
    script, argv = script_call("coop_1_1", demo_common(results), results)
    err = refuses(capsys, script, argv + SETTINGS[key])
    assert "other settings" in err and f"{key}:" in err, err

    capsys.readouterr()
    assert run_all.main(demo_sweep_argv(out, *SETTINGS[key])) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "other settings" in lines[0] and f"{key}:" in lines[0], lines
    assert {p: (results / p).read_bytes() for p in RUNS.values()} == before  # nothing redone, nothing lost


def test_other_settings_pass_with_force(swept, tmp_path, capsys):
    out, results = _copy(swept, tmp_path)
    script, argv = script_call("coop_1_1", demo_common(results), results)
    assert script.main(argv + ["--lr", "0.01", "--force"]) == 0
    assert read_result(results / RUNS["coop_1_1"])["identity"]["lr"] == 0.01
    before = snapshot(results)
    assert run_all.main(demo_sweep_argv(out, "--lr", "0.005", "--seeds", "1", "--force")) == 0
    after = snapshot(results)
    assert {n for n in RUNS if after[n] != before[n]} == {"zeroshot", "ensemble", "coop_1_1", "tip_1_1", "tipf_1_1"}
    assert read_result(results / RUNS["coop_1_1"])["identity"]["lr"] == 0.005


@pytest.mark.parametrize("name,flags,key", [("coop_1_1", ["--model", "random:RN50"], "model"),
                                            ("zeroshot", ["--model", "random:RN50"], "model"),
                                            ("zeroshot", ["--templates", "ensemble"], "templates")])
def test_the_model_name_and_the_prompts_are_settings(swept, tmp_path, capsys, name, flags, key):
    _, results = _copy(swept, tmp_path)
    script, argv = script_call(name, demo_common(results), results)
    err = refuses(capsys, script, argv + flags)
    assert "other settings" in err and f"{key}:" in err


def test_flags_that_are_not_settings_reuse_the_results(swept, tmp_path, capsys):
    out, results = _copy(swept, tmp_path)
    before = snapshot(results)
    extra = ["--workers", "0", "--encode-batch-size", "8", "--cache-dir", str(tmp_path / "elsewhere")]
    for name in ("zeroshot", "ensemble", "coop_1_1", "coop_1_2"):
        script, argv = script_call(name, demo_common(results), results)
        capsys.readouterr()
        assert script.main(argv + extra) == 0 and "already done" in capsys.readouterr().err, name
    assert run_all.main(demo_sweep_argv(out, *extra)) == 0
    assert snapshot(results) == before


# --- 2. provenance coverage: what a run reads is what it hashes -----------------------------------------

@pytest.fixture
def opened(monkeypatch):
    """Every file PIL opens (load_image decodes through Image.open), as resolved paths."""
    import PIL.Image

    seen = []
    real = PIL.Image.open

    def recording(fp, *a, **k):
        seen.append(Path(fp if isinstance(fp, (str, os.PathLike)) else fp.name).resolve())
        return real(fp, *a, **k)

    monkeypatch.setattr(PIL.Image, "open", recording)
    return seen


def _read(opened, root: Path) -> set:
    root = root.resolve()
    rels = {p.relative_to(root).as_posix() for p in opened if root in p.parents}
    assert rels, "nothing was read under the image root: the recorder saw no image"
    return rels


def _fresh(tmp_path, synthetic_root, synthetic_split) -> list:
    cache = tmp_path / "cache"
    assert not cache.exists()  # an empty feature cache: every image the run needs is decoded
    return ["--model", "random:tiny", "--data-root", str(synthetic_root), "--split-file", str(synthetic_split.path),
            "--results", str(tmp_path / "results"), "--cache-dir", str(cache), "--device", "cpu", "--workers", "0"]


def _same_both_ways(read: set, hashed: list, rec: dict, root: Path) -> None:
    assert not read - set(hashed), f"read but not hashed: {sorted(read - set(hashed))[:5]}"
    assert not set(hashed) - read, f"hashed but not read: {sorted(set(hashed) - read)[:5]}"
    assert rec["inputs"]["images_sha256"] == images_sha256(root, read)  # the record's hash is over exactly these


@pytest.mark.parametrize("broken", [False, True], ids=["intact", "one_unreadable_test_image"])
def test_a_coop_run_hashes_exactly_the_images_it_reads(synthetic_root, synthetic_split, tmp_path, opened, broken):
    """With a test image that does not decode, the run leaves it out but tried to read it and hashes it:
    fixing that image later must make the run stale. (An image it trains on is refused: issue 36.)"""
    root = synthetic_root
    if broken:
        root = tmp_path / "data" / "101_ObjectCategories"
        shutil.copytree(synthetic_root, root)
        bad = synthetic_split.test[0][0]
        (root / bad).write_bytes(b"not an image")
    argv = _fresh(tmp_path, synthetic_root, synthetic_split) + TRAIN + ["--shots", "2", "--seed", "1",
                                                                       "--data-root", str(root)]
    assert train_coop.main(argv) == 0
    rec = read_result(tmp_path / "results" / "coop" / "shots2_seed1.json")
    cfg = train_coop.train_config(train_coop.parse_args(argv), 2, 1)
    read = _read(opened, root)
    assert {it[0] for it in synthetic_split.test} < read  # test and few-shot training images
    assert set(rec["skipped_images"]) == ({bad} if broken else set())
    _same_both_ways(read, cfg.images(synthetic_split), rec, root)


def test_a_zeroshot_run_hashes_exactly_the_images_it_reads(synthetic_root, synthetic_split, tmp_path, opened):
    from coop.methods.zeroshot import ZeroShotConfig

    assert zeroshot.main(_fresh(tmp_path, synthetic_root, synthetic_split)) == 0
    rec = read_result(tmp_path / "results" / "zeroshot.json")
    _same_both_ways(_read(opened, synthetic_root), ZeroShotConfig().images(synthetic_split), rec, synthetic_root)


@pytest.mark.parametrize("method,search", [("lp", "fewshot"), ("tip", "val"), ("tip_f", "fewshot")])
def test_a_baseline_run_hashes_exactly_the_images_it_reads(synthetic_root, synthetic_split, tmp_path, opened,
                                                          monkeypatch, method, search):
    import coop.methods.linear_probe as linear_probe
    from coop.methods.baselines import BaselineConfig, run_baseline

    def quick_probe(train_x, train_y, val_x, val_y, test_x, **_):  # the features are read before; C's search reads nothing
        return {"predictions": [0] * len(test_x), "C": 1.0, "val_accuracy": 0.0, "searched": []}

    monkeypatch.setattr(linear_probe, "run_linear_probe", quick_probe)  # lbfgs at C=1e6 takes seconds

    _fresh(tmp_path, synthetic_root, synthetic_split)
    cfg = BaselineConfig(method=method, shots=1, seed=1, model="random:tiny", data_root=str(synthetic_root),
                         split_file=synthetic_split.path,
                         options={} if method == "lp" else {"search": search, "views": 2,
                                                             **({"epochs": 2} if method == "tip_f" else {})},
                         device="cpu", workers=0,
                         results=str(tmp_path / "results"), cache_dir=str(tmp_path / "cache"))
    rec = run_baseline(cfg)
    read = _read(opened, synthetic_root)
    val = {it[0] for it in cfg.val_items(synthetic_split)}
    assert val and val <= read and (search == "val") == (val == {it[0] for it in synthetic_split.val})
    _same_both_ways(read, cfg.images(synthetic_split), rec, synthetic_root)
