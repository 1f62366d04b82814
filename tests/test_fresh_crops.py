"""CoOp's augmentation by default: a fresh crop of every training image in every epoch (issue 11).

Checked as a user meets it: what a default run records, that no crop repeats within a run, that
seeds differ, that the shots of one seed share the cache, that a cold and a warm cache give the
same result to the bit, and that ``--views N`` cycles through its N crops.
"""
from __future__ import annotations

import json
import random

import pytest
import torch

import coop.features.cache as features
from coop.runs.experiment import Experiment
from coop.data.split import fewshot
from coop.methods.train import run_coop, training_set
from coop.methods.train_config import TrainConfig, crop_plan
from conftest import load_script

train_coop = load_script("train_coop")
EPOCHS = 4


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fresh_cache")


@pytest.fixture(scope="module")
def exp(synthetic_root, synthetic_split, cache_dir):
    return Experiment("random:tiny", synthetic_root, synthetic_split.path, device="cpu", cache_dir=cache_dir)


def test_a_default_run_records_fresh_crops(synthetic_root, synthetic_split, tmp_path, capsys):
    argv = ["--model", "random:tiny", "--data-root", str(synthetic_root), "--split-file", synthetic_split.path,
            "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "r"),
            "--shots", "1", "--seed", "2", "--epochs", str(EPOCHS)]
    assert train_coop.main(argv) == 0
    err = capsys.readouterr().err
    rec = json.loads((tmp_path / "r" / "coop" / "shots1_seed2.json").read_text())
    aug = rec["augmentation"]
    assert aug["mode"] == "fresh" and aug["approximate"] is False and aug["views"] is None
    assert aug["crops_per_image"] == rec["config"]["epochs"] == EPOCHS and aug["crop_seed"] == "2"
    assert rec["precision"] == "fp32" and "crop_sharing" in rec["departures"] and "views" not in rec["departures"]
    assert "fresh crops: 4 per image" in err and "APPROXIMATE" not in err


def test_no_crop_repeats_within_a_run_and_seeds_differ(exp):
    cfg1, cfg2 = TrainConfig(shots=2, seed=1, epochs=EPOCHS), TrainConfig(shots=2, seed=2, epochs=EPOCHS)
    assert crop_plan(cfg1) == ("1", list(range(EPOCHS)))
    t1, t2 = training_set(exp, cfg1), training_set(exp, cfg2)
    assert t1.features.shape[0] == EPOCHS and t1.crop_of_epoch == list(range(EPOCHS))
    for n in range(t1.features.shape[1]):  # every image: EPOCHS different crops, so different features
        f = t1.features[:, n]
        assert all(not torch.equal(f[a], f[b]) for a in range(EPOCHS) for b in range(a))
    common = {it[0] for it in t1.items} & {it[0] for it in t2.items}
    assert common  # an image both seeds train on: its crops differ between seeds
    rel = sorted(common)[0]
    i1, i2 = [it[0] for it in t1.items].index(rel), [it[0] for it in t2.items].index(rel)
    assert all(not torch.equal(t1.features[e, i1], t2.features[e, i2]) for e in range(EPOCHS))


def test_shots_of_one_seed_reuse_the_cache(exp, monkeypatch):
    big = training_set(exp, TrainConfig(shots=4, seed=3, epochs=EPOCHS))
    monkeypatch.setattr(features, "encode", lambda *a, **k: pytest.fail("encoded a crop the 4-shot run made"))
    small = training_set(exp, TrainConfig(shots=2, seed=3, epochs=EPOCHS - 1))
    rels = [it[0] for it in big.items]
    for n, it in enumerate(small.items):  # nested: the 2-shot images, and their crops, are the 4-shot run's
        assert torch.equal(small.features[:, n], big.features[: EPOCHS - 1, rels.index(it[0])])


def test_independent_crops_are_not_shared_across_shots():
    a = crop_plan(TrainConfig(shots=1, seed=1, epochs=3, independent_crops=True))[0]
    b = crop_plan(TrainConfig(shots=2, seed=1, epochs=3, independent_crops=True))[0]
    assert a != b and crop_plan(TrainConfig(shots=1, seed=1, epochs=3))[0] == "1"


def test_cold_and_warm_cache_give_the_same_run(synthetic_root, synthetic_split, tmp_path):
    cfg = dict(shots=2, seed=1, epochs=EPOCHS, model="random:tiny", data_root=str(synthetic_root),
               split_file=synthetic_split.path, device="cpu", cache_dir=str(tmp_path / "cache"))
    cold = run_coop(TrainConfig(**cfg, results=str(tmp_path / "a")), progress=False)
    warm = run_coop(TrainConfig(**cfg, results=str(tmp_path / "b")), progress=False)
    assert cold["accuracy"] == warm["accuracy"] and cold["history"] == warm["history"]
    ca = torch.load(tmp_path / "a" / "coop" / "shots2_seed1.pt", weights_only=True)["state"]["ctx"]
    cb = torch.load(tmp_path / "b" / "coop" / "shots2_seed1.pt", weights_only=True)["state"]["ctx"]
    assert torch.equal(ca, cb)


def test_views_mode_cycles_without_repeats(exp, synthetic_root, synthetic_split, tmp_path, capsys):
    name, plan = crop_plan(TrainConfig(shots=1, seed=1, epochs=7, views=3))
    assert plan == [0, 1, 2, 0, 1, 2, 0]  # each crop once before any repeats
    t = training_set(exp, TrainConfig(shots=1, seed=1, epochs=7, views=3))
    assert t.features.shape[0] == 3 and t.crop_of_epoch == plan
    argv = ["--model", "random:tiny", "--data-root", str(synthetic_root), "--split-file", synthetic_split.path,
            "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "r"),
            "--shots", "1", "--seed", "1", "--epochs", "5", "--views", "2"]
    assert train_coop.main(argv) == 0
    aug = json.loads((tmp_path / "r" / "coop" / "shots1_seed1.json").read_text())["augmentation"]
    assert (aug["mode"], aug["approximate"], aug["views"], aug["crops_per_image"]) == ("views", True, 2, 2)
    assert "APPROXIMATE: 2 cached crops per image" in capsys.readouterr().err


def test_coop_sampling_is_dassls_random_sample(synthetic_split):
    train = synthetic_split.train
    for shots, seed in [(1, 1), (2, 1), (2, 3)]:
        random.seed(seed)  # Dassl: set_random_seed, then generate_fewshot_dataset
        by_label = {}
        for item in train:
            by_label.setdefault(item[1], []).append(item)
        expected = [x for items in by_label.values() for x in random.sample(items, shots)]
        assert fewshot(train, shots, seed, "coop") == expected
    one, two = fewshot(train, 1, 1), fewshot(train, 2, 1)
    assert all(it in two for it in one)  # the default is nested


def test_crops_cut_from_the_once_decoded_image_equal_crops_of_a_fresh_decode(synthetic_root):
    """The input path decodes an image once for all its crops (items sorted by image, the worker keeps
    the last decoded image); every crop equals the crop of a freshly decoded copy, bit for bit (the
    dataset yields uint8 pixels; the encoder normalises them per batch, see test_features)."""
    from unittest import mock

    import coop.features.encoder as encoder
    from coop.data.caltech101 import load_image
    from coop.features.views import TrainCrop

    rels = sorted(str(p.relative_to(synthetic_root)) for p in synthetic_root.rglob("*.jpg"))[:3]
    view = TrainCrop(64, "7")
    items = [(r, e) for r in rels for e in range(5)]
    with mock.patch.object(encoder, "load_image", wraps=load_image) as spy:
        ds = encoder.ViewDataset(synthetic_root, items, view)
        got = [ds[i][0] for i in range(len(items))]
    assert spy.call_count == len(rels)  # one decode per image, not per crop
    for (rel, e), x in zip(items, got):
        assert torch.equal(x, view.pixels(load_image(synthetic_root / rel), rel, e))
