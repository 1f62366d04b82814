"""Base-to-new generalisation (CoCoOp, Zhou et al. CVPR 2022, section 4.1): train on half the classes,
test on both halves.

The protocol is CoOp's ``OxfordPets.subsample_classes`` (a static method in CoOp's own
``datasets/oxford_pets.py``, not part of Dassl; called by CoOp's ``datasets/caltech101.py`` with
``DATASET.SUBSAMPLE_CLASSES`` = ``base`` or ``new``):

- the classes are the labels found in the *training* list, sorted (our labels are the split's
  0..n-1, so this is the split's class order); base = the first ``ceil(n/2)``, new = the rest
  (Caltech101: 50 base, 50 new);
- every part (train, val, test) keeps only the items of the chosen half, in their order, and each
  half is relabelled from 0 in the original label order; its class names are listed in that order
  (Dassl's ``get_lab2cname`` on the relabelled training list);
- CoOp draws the few-shot training set (16 shots) and the few-shot val set (``min(shots, 4)``) over
  *all* classes first, and subsamples afterwards: :func:`subsample` applies to any list of items,
  so ``subsample(fewshot(split.train, 16, seed), base)`` is CoOp's base training set;
- training (``base2new_train.sh``, ``SUBSAMPLE_CLASSES base``) sees the base half of train (and of
  val, which CoCoOp's config never uses: Dassl's ``TEST.FINAL_MODEL`` is ``last_step``); at its end
  the last epoch's model is tested on the base half of test -- the *base* accuracy;
  ``base2new_test.sh`` (``SUBSAMPLE_CLASSES new``, ``--eval-only --load-epoch 10``) rebuilds the
  prompts from the new half's class names and tests the same learned weights on the new half of
  test -- the *new* accuracy. H is their harmonic mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from ..utils.errors import UserError
from .split import PARTS, Item, Split

HALVES = ("base", "new")
MIN_CLASSES = 4  # 2 per half (coop.data.split.MIN_CLASSES_BASE2NEW, make_split's note, is the same number)


@dataclass(frozen=True)
class Half:
    """One half of the classes: ``labels`` are the split's labels in it, in order; class ``i`` of
    the half is the split's label ``labels[i]``, named ``classnames[i]``."""

    name: str  # "base" or "new"
    labels: Tuple[int, ...]
    classnames: Tuple[str, ...]

    @property
    def n_cls(self) -> int:
        return len(self.labels)

    def relabel(self, items: Sequence[Item]) -> List[Item]:
        """The items of this half, in their order, with labels 0..n_cls-1 (``subsample_classes``'s ``relabeler``)."""
        new = {y: i for i, y in enumerate(self.labels)}
        return [[rel, new[label], name] for rel, label, name in items if label in new]


def _classes(split: Split) -> List[Tuple[int, str]]:
    """(label, name) of every class of the training list, sorted by label (``subsample_classes`` reads
    ``args[0]``, the training list)."""
    names = {}
    for _, label, name in split.train:
        names.setdefault(label, name)
    untrained = sorted({label for part in ("val", "test") for _, label, _ in getattr(split, part)} - set(names))
    if untrained:  # subsample_classes would silently drop their images from both halves
        raise UserError(f"split file {split.path or '(in memory)'} has val/test images of label {untrained[0]} "
                        f"but no training image of it; base-to-new takes its classes from train: regenerate the split")
    return sorted(names.items())


def halves(split: Split) -> Tuple[Half, Half]:
    """The base and the new half of ``split``'s classes: the first ``ceil(n/2)`` labels, and the rest.

    Raises :class:`UserError` for fewer than :data:`MIN_CLASSES` classes (a half of one class scores
    100% whatever the model does), or for a class of either half without a test image (its half's
    accuracy would silently leave it out).
    """
    classes = _classes(split)
    n = len(classes)
    if n < MIN_CLASSES:
        raise UserError(f"base-to-new needs at least {MIN_CLASSES} classes, so that each half has 2 (a half of one "
                        f"class is 100% whatever the model does, and every verdict a tie); split file "
                        f"{split.path or '(in memory)'} has {n}: use a split with more classes, or the few-shot "
                        f"protocol (leave out --protocol base2new)")
    m = math.ceil(n / 2)
    out = tuple(Half(name, tuple(c for c, _ in part), tuple(nm for _, nm in part))
                for name, part in (("base", classes[:m]), ("new", classes[m:])))
    tested = {label for _, label, _ in split.test}
    for h in out:
        missing = [nm for c, nm in zip(h.labels, h.classnames) if c not in tested]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UserError(f"{h.name} class {missing[0]!r}{more} has no test image in split file "
                            f"{split.path or '(in memory)'}, so the {h.name} accuracy would leave it out; "
                            f"regenerate the split (scripts/make_split.py gives every class test images)")
    return out  # type: ignore[return-value]


def half(split: Split, which: str) -> Half:
    """``halves(split)`` by name: ``"base"`` or ``"new"``."""
    if which not in HALVES:
        raise UserError(f"the class half must be one of {', '.join(HALVES)}, got {which!r}")
    return halves(split)[HALVES.index(which)]


def subsample(items: Sequence[Item], which: Half) -> List[Item]:
    """The items of one half, relabelled (for a few-shot list, or any part of a split)."""
    return which.relabel(items)


def subsample_split(split: Split, which: str) -> Split:
    """``split`` restricted to one half: train, val and test of its classes only, relabelled from 0.

    The result keeps the source file's ``path`` and ``sha256`` (it is derived from that file); its
    ``classnames`` are the half's. Few-shot sets are drawn from the *full* train list and then
    subsampled (see the module docstring), so use :func:`subsample` on them rather than drawing from
    this split's train.
    """
    h = half(split, which)
    return Split(*(h.relabel(getattr(split, p)) for p in PARTS), path=split.path, sha256=split.sha256)


def harmonic_mean(base: float, new: float) -> float:
    """H = 2 b n / (b + n), CoCoOp's summary of base and new accuracy (0 when both are 0)."""
    for v in (base, new):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"accuracies must be finite and >= 0, got base={base}, new={new}")
    return 0.0 if base + new == 0 else 2.0 * base * new / (base + new)
