"""The base-to-new protocol (``coop.data.base2new``): halves, relabelling, H, and the error cases.

Expectations are written out by hand from CoOp's rule (``OxfordPets.subsample_classes`` in CoOp's own
``datasets/oxford_pets.py``, not Dassl's):
labels of the training list sorted, base = the first ceil(n/2), new = the rest, each relabelled
from 0 in order, every part filtered the same way.
"""
from __future__ import annotations

import math

import pytest

from coop.data.base2new import Half, half, halves, harmonic_mean, subsample, subsample_split
from coop.data.split import Split, fewshot
from coop.utils.errors import UserError

NAMES = ["ant", "bass", "car_side", "dalmatian", "emu"]


def _split(n_cls: int, per_part=(4, 2, 3)) -> Split:
    """n_cls classes; train/val/test lists interleaved across classes (order must be kept as given)."""
    parts = []
    for part, k in zip(("train", "val", "test"), per_part):
        parts.append([[f"{NAMES[c]}/{part}_{i}.jpg", c, NAMES[c]] for i in range(k) for c in range(n_cls)])
    return Split(*parts, path="toy.json", sha256="abc")


@pytest.mark.parametrize("n_cls,base,new", [(5, (0, 1, 2), (3, 4)), (4, (0, 1), (2, 3))])
def test_halves_split_the_labels_in_order(n_cls, base, new):
    b, n = halves(_split(n_cls))
    assert (b.name, b.labels, n.name, n.labels) == ("base", base, "new", new)
    assert b.classnames == tuple(NAMES[c] for c in base) and n.classnames == tuple(NAMES[c] for c in new)
    assert b.n_cls == math.ceil(n_cls / 2) and b.n_cls + n.n_cls == n_cls
    assert half(_split(n_cls), "new") == n


def test_each_part_keeps_its_halfs_items_in_order_relabelled_from_zero():
    split = _split(5)
    base, new = subsample_split(split, "base"), subsample_split(split, "new")
    for part in ("train", "val", "test"):
        items = getattr(split, part)
        assert getattr(base, part) == [[r, y, nm] for r, y, nm in items if y < 3]
        assert getattr(new, part) == [[r, y - 3, nm] for r, y, nm in items if y >= 3]
        assert len(getattr(base, part)) + len(getattr(new, part)) == len(items)
    assert base.classnames == ["ant", "bass", "car_side"] and new.classnames == ["dalmatian", "emu"]
    assert (new.path, new.sha256) == ("toy.json", "abc")
    assert split.train[0] == ["ant/train_0.jpg", 0, "ant"]  # the source is not modified


def test_fewshot_drawn_over_all_classes_then_subsampled_as_coop_does():
    """CoOp draws the 16-shot set over all classes, then keeps the base half: what subsample gives."""
    split = _split(5, per_part=(6, 1, 1))
    b = half(split, "base")
    for sampling in ("nested", "coop"):
        full = fewshot(split.train, 2, seed=1, sampling=sampling)
        got = subsample(full, b)
        assert got == [[r, y, nm] for r, y, nm in full if y in b.labels]
        assert sorted({y for _, y, _ in got}) == [0, 1, 2] and len(got) == 2 * 3


def test_a_halfs_labels_map_back_to_the_split():
    split = _split(5)
    n = half(split, "new")
    for (rel, y, name), (rel0, y0, name0) in zip(n.relabel(split.test), [it for it in split.test if it[1] >= 3]):
        assert (rel, name) == (rel0, name0) and n.labels[y] == y0


def test_harmonic_mean():
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)
    assert harmonic_mean(60.0, 80.0) == harmonic_mean(80.0, 60.0)
    assert harmonic_mean(70.0, 70.0) == pytest.approx(70.0)
    assert harmonic_mean(0.0, 0.0) == 0.0 and harmonic_mean(50.0, 0.0) == 0.0
    for bad in ((-1.0, 50.0), (50.0, float("nan")), (float("inf"), 1.0)):
        with pytest.raises(ValueError):
            harmonic_mean(*bad)


@pytest.mark.parametrize("n_cls", [1, 2, 3])
def test_a_half_of_one_class_is_a_user_error(n_cls):
    """Issue 36: halves of one class gave 100/100/100 and "[+0.00, +0.00]" verdicts without a word."""
    with pytest.raises(UserError, match="at least 4 classes, so that each half has 2"):
        halves(_split(n_cls))


@pytest.mark.parametrize("which,label", [("new", 4), ("base", 0)])
def test_a_class_without_test_images_is_a_user_error(which, label):
    split = _split(5)
    split.test = [it for it in split.test if it[1] != label]
    with pytest.raises(UserError, match=f"{which} class '{NAMES[label]}' has no test image"):
        halves(split)


def test_a_tested_class_without_training_images_is_a_user_error():
    split = _split(5)
    split.train = [it for it in split.train if it[1] != 2]
    with pytest.raises(UserError, match="no training image of it"):
        halves(split)


def test_unknown_half_and_too_many_shots_are_user_errors():
    with pytest.raises(UserError, match="base, new"):
        half(_split(4), "all")
    with pytest.raises(UserError, match="--shots 5 is more than class"):  # the few-shot sampler's own check
        fewshot(_split(4).train, 5, seed=1)


def test_errors_are_one_line():
    no_test = _split(4)
    no_test.test = [it for it in no_test.test if it[1] != 3]
    no_train = _split(4)
    no_train.train = [it for it in no_train.train if it[1] != 0]
    for bad in (_split(1), no_test, no_train):
        with pytest.raises(UserError) as e:
            halves(bad)
        assert "\n" not in str(e.value) and "toy.json" in str(e.value)


def test_half_is_a_value():
    h = Half("base", (0, 1), ("a", "b"))
    assert h.relabel([["x.jpg", 1, "b"], ["y.jpg", 2, "c"]]) == [["x.jpg", 1, "b"]]
