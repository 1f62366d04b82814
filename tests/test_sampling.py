"""Few-shot sampling: what ``coop.data.split.fewshot`` must give, for both samplings.

Every expectation here is computed independently of the library: set properties (distinct images,
every class, nesting), a transcription of Dassl's ``generate_fewshot_dataset`` for ``sampling="coop"``
and the few-shot lists committed under ``splits/fewshot/`` (written by an earlier process).

Dassl reference (github:KaiyangZhou/Dassl.pytorch, ``dassl/data/datasets/base_dataset.py``):
``split_dataset_by_label`` groups items in a ``defaultdict(list)`` in order of first appearance,
then ``generate_fewshot_dataset`` runs ``random.sample(items, num_shots)`` per label with the global
``random`` that CoOp's ``train.py`` seeded by ``set_random_seed(cfg.SEED)`` (CoOp's
``datasets/caltech101.py`` samples the train list first, in the split file's order).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from coop.data.split import fewshot, fewshot_file, read_split
from coop.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SPLIT_FILE = ROOT / "splits" / "caltech101.json"
SHOTS = (1, 2, 4, 8, 16)
SEEDS = (1, 2, 3)
SAMPLINGS = ("nested", "coop")


@pytest.fixture(scope="module")
def split():
    return read_split(SPLIT_FILE)


def _synthetic_items():
    """Six classes of 17..27 images, listed class-interleaved and with labels first appearing out of
    numeric order (3, 0, 5, 1, 4, 2), so the order in which labels are grouped matters."""
    sizes = {0: 20, 1: 17, 2: 27, 3: 18, 4: 21, 5: 25}
    names = {0: "cat", 1: "dog", 2: "red car", 3: "yin_yang", 4: "anchor", 5: "water_lilly"}
    per_class = {c: [[f"{names[c].replace(' ', '_')}/image_{i:04d}.jpg", c, names[c]] for i in range(1, n + 1)]
                 for c, n in sizes.items()}
    order = [3, 0, 5, 1, 4, 2]
    items = []
    for i in range(max(sizes.values())):  # round-robin over classes: items of one class are not contiguous
        for c in order:
            if i < len(per_class[c]):
                items.append(per_class[c][i])
    assert list(dict.fromkeys(it[1] for it in items)) == order
    return items


SYNTH = _synthetic_items()


def _by_label(items):
    out = defaultdict(list)
    for it in items:
        out[it[1]].append(it)
    return out


def _check_k_shot(train, out, k):
    """K distinct images per class, every class present, nothing invented or relabelled."""
    keys = [tuple(it) for it in out]
    assert len(keys) == len(set(keys)), "an image was taken twice"
    assert len({it[0] for it in out}) == len(out), "an image path appears twice"
    originals = {tuple(it) for it in train}
    assert set(keys) <= originals, "items not taken verbatim from the training list (label or name changed?)"
    label_of_path = {it[0]: (it[1], it[2]) for it in train}
    assert all((it[1], it[2]) == label_of_path[it[0]] for it in out)
    counts = _by_label(out)
    assert set(counts) == {it[1] for it in train}, "a class is missing"
    assert all(len(v) == k for v in counts.values()), {c: len(v) for c, v in counts.items() if len(v) != k}
    assert len(out) == k * len(counts)


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("k", SHOTS)
def test_k_distinct_images_of_every_class_real_split(split, k, sampling):
    for seed in SEEDS:
        _check_k_shot(split.train, fewshot(split.train, k, seed, sampling), k)


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("k", SHOTS)
def test_k_distinct_images_of_every_class_synthetic(k, sampling):
    for seed in SEEDS:
        _check_k_shot(SYNTH, fewshot(SYNTH, k, seed, sampling), k)


@pytest.mark.parametrize("train_name", ["real", "synthetic"])
def test_nested_across_shot_counts_for_one_seed(split, train_name):
    train = split.train if train_name == "real" else SYNTH
    for seed in SEEDS:
        sets = [{tuple(it) for it in fewshot(train, k, seed)} for k in SHOTS]
        for small, big, (ks, kb) in zip(sets, sets[1:], zip(SHOTS, SHOTS[1:])):
            assert small < big, f"seed {seed}: the {ks}-shot set is not inside the {kb}-shot set"


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("k", SHOTS)
def test_different_seeds_give_different_sets_and_a_seed_the_same_set(split, k, sampling):
    draws = {s: fewshot(split.train, k, s, sampling) for s in SEEDS}
    for s in SEEDS:
        assert fewshot(split.train, k, s, sampling) == draws[s]  # deterministic within a process
    sets = {s: {tuple(it) for it in draws[s]} for s in SEEDS}
    assert sets[1] != sets[2] and sets[1] != sets[3] and sets[2] != sets[3]
    # Not one class changed and the rest shared: per class, two seeds rarely pick the same images
    # (a class has >= 16 training images, so the 1-shot picks agree with probability <= 1/16).
    if k == 1:
        by = {s: {it[1]: it[0] for it in draws[s]} for s in SEEDS}
        for a, b in ((1, 2), (1, 3), (2, 3)):
            same = sum(by[a][c] == by[b][c] for c in by[a])
            assert same < 0.5 * len(by[a]), f"seeds {a} and {b} pick the same image in {same} classes"


@pytest.mark.parametrize("k", SHOTS)
def test_committed_fewshot_lists_are_reproduced(split, k):
    """The lists under splits/fewshot/ were written by another process: the draw does not depend
    on anything of the process (hash seed, import order, earlier random calls)."""
    random.seed(12345)  # a polluted global stream must not matter
    for seed in SEEDS:
        path = fewshot_file(split.path, k, seed)
        assert path == ROOT / "splits" / "fewshot" / f"caltech101_shots{k}_seed{seed}.json"
        saved = json.loads(path.read_text(encoding="utf-8"))
        assert (saved["shots"], saved["seed"], saved["split_sha256"]) == (k, seed, split.sha256)
        assert fewshot(split.train, k, seed) == saved["train"]


def test_same_draw_in_a_fresh_process_with_another_hash_seed(split):
    code = ("import json, sys; from coop.data.split import fewshot, read_split; "
            "t = read_split(sys.argv[1]).train; "
            "print(json.dumps({f'{s}:{k}:{m}': fewshot(t, k, s, m) for s in (1, 2) for k in (1, 4) "
            "for m in ('nested', 'coop')}))")
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    out = subprocess.run([sys.executable, "-c", code, str(SPLIT_FILE)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = json.loads(out.strip().splitlines()[-1])
    for key, items in theirs.items():
        s, k, m = key.split(":")
        assert fewshot(split.train, int(k), int(s), m) == items, key


def _dassl_generate_fewshot(data_source, num_shots, seed):
    """Transcription of CoOp's path to its few-shot train list: ``set_random_seed(seed)`` (global
    ``random.seed``), then Dassl's ``generate_fewshot_dataset(train, num_shots=num_shots)``
    (``repeat=False``): labels grouped by ``split_dataset_by_label`` in first-appearance order,
    ``random.sample(items, num_shots)`` per label if it has enough items, else all its items."""
    state = random.getstate()
    try:
        random.seed(seed)
        tracker = defaultdict(list)
        for item in data_source:
            tracker[item[1]].append(item)
        dataset = []
        for label, items in tracker.items():
            if len(items) >= num_shots:
                sampled_items = random.sample(items, num_shots)
            else:
                sampled_items = items
            dataset.extend(sampled_items)
        return dataset
    finally:
        random.setstate(state)


@pytest.mark.parametrize("k", SHOTS)
def test_coop_sampling_is_dassls_draw(split, k):
    for seed in SEEDS:
        assert fewshot(split.train, k, seed, "coop") == _dassl_generate_fewshot(split.train, k, seed)
        assert fewshot(SYNTH, k, seed, "coop") == _dassl_generate_fewshot(SYNTH, k, seed)


def test_coop_sampling_keeps_dassls_label_order():
    out = fewshot(SYNTH, 2, 1, "coop")
    assert list(dict.fromkeys(it[1] for it in out)) == [3, 0, 5, 1, 4, 2]  # first appearance, not sorted


def test_coop_sampling_ignores_the_global_random_state():
    random.seed(0)
    a = fewshot(SYNTH, 4, 2, "coop")
    random.seed(99)
    random.random()
    assert fewshot(SYNTH, 4, 2, "coop") == a


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_more_shots_than_a_class_has_is_one_clear_user_error(split, sampling):
    sizes = {(v[0][2], len(v)) for v in _by_label(SYNTH).values()}
    for k in (18, 100):  # 18: only "dog" (17 images) is too small; 100: every class is
        with pytest.raises(UserError) as err:
            fewshot(SYNTH, k, 1, sampling)
        msg = str(err.value)
        assert type(err.value) is UserError and "\n" not in msg
        assert f"--shots {k}" in msg, msg
        named = [(n, c) for n, c in sizes if f"{n!r}" in msg and f"({c} images)" in msg]
        assert len(named) == 1 and named[0][1] < k, msg  # names one class that is too small, with its count
        if k == 18:
            assert named == [("dog", 17)]
    assert len(fewshot(SYNTH, 17, 1, sampling)) == 17 * 6  # exactly as many as the smallest class: fine
    fewest = min(len(v) for v in _by_label(split.train).values())
    fewshot(split.train, fewest, 1, sampling)
    with pytest.raises(UserError, match=f"--shots {fewest + 1} is more than class"):
        fewshot(split.train, fewest + 1, 1, sampling)
