"""Train/val/test splits in CoOp's JSON format, and nested few-shot subsets.

A split file is ``{"train": [...], "val": [...], "test": [...]}``, each item
``[relpath, label, classname]`` with ``relpath`` relative to the data set's image folder (Caltech101's
``101_ObjectCategories``) -- the format of CoOp's ``split_zhou_Caltech101.json``, so either project reads
the other's splits.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..utils.atomic import atomic_path, write_text
from .dataset import load_dataset
from .folders import ClassInfo, Dataset, find_bad_images
from ..utils.errors import UserError
from ..utils.hashing import sha256_file

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")
Item = List  # [relpath: str, label: int, classname: str]


@dataclass
class Split:
    train: List[Item]
    val: List[Item]
    test: List[Item]
    path: str = ""
    sha256: str = ""

    @property
    def classnames(self) -> List[str]:
        """Class names in label order, from all parts."""
        names: Dict[int, str] = {}
        for part in PARTS:
            for _, label, name in getattr(self, part):
                names.setdefault(label, name)
        return [names[i] for i in range(len(names))]


def make_split(image_root: Path, seed: int = 1, p_train: float = 0.5, p_val: float = 0.2,
               dataset: Optional[Dataset] = None) -> Dict[str, List[Item]]:
    """Per class of ``dataset`` (default: Caltech101): sorted files, left-out unreadable ones, shuffled
    with a fixed seed, cut 50/20/30.

    Each class has its own random stream (seeded by ``seed`` and the folder name), so the split of a
    class does not depend on the other classes.
    """
    split: Dict[str, List[Item]] = {p: [] for p in PARTS}
    classes = load_dataset(dataset or "caltech101").discover(image_root)
    check_classes([c.classname for c, _ in classes], str(image_root), base2new_note=True)
    bad = find_bad_images(image_root, [r for _, files in classes for r in files])
    for c, files in classes:
        files = [f for f in files if f not in bad]
        if len(files) < 3:
            raise UserError(f"class folder {image_root / c.folder} has {len(files)} readable images; "
                            f"a split needs at least 3 per class")
        random.Random(f"{seed}:{c.folder}").shuffle(files)
        n_train = max(1, round(len(files) * p_train))
        n_val = max(1, round(len(files) * p_val))
        parts = {"train": files[:n_train], "val": files[n_train:n_train + n_val],
                 "test": files[n_train + n_val:]}
        for part, rels in parts.items():
            split[part] += [[r, c.label, c.classname] for r in sorted(rels)]
    return split


def _items_block(name: str, items: Sequence[Item]) -> str:
    lines = ",\n".join("    " + json.dumps(item) for item in items)
    return f'  "{name}": [\n{lines}\n  ]' if items else f'  "{name}": []'


def dumps_split(split: Dict[str, List[Item]]) -> str:
    """One item per line: small diffs, easy to read, still plain JSON."""
    return "{\n" + ",\n".join(_items_block(p, split[p]) for p in PARTS) + "\n}\n"


def write_split(split: Dict[str, List[Item]], path: str | os.PathLike) -> None:
    write_text(path, dumps_split(split))


def read_split(path: str | os.PathLike) -> Split:
    """Read a split in CoOp's format, with clear errors for files that are not one."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise UserError(f"split file {path} is {'a folder' if path.is_dir() else 'not a regular file (a device or a pipe)'}"
                        f", not a split: give the JSON file (--split-file), or make one with scripts/make_split.py "
                        f"--data-root DIR --out FILE")
    if not path.is_file():
        raise UserError(f"split file {path} does not exist; make one with "
                        f"scripts/make_split.py --data-root DIR --out {path}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"split file {path} is not valid JSON ({e}); regenerate it with scripts/make_split.py") from None
    if not isinstance(obj, dict) or any(p not in obj for p in PARTS):
        raise UserError(f"split file {path} is not in CoOp's format: it needs the keys {list(PARTS)}")
    for part in PARTS:
        if not isinstance(obj[part], list):
            raise UserError(f"split file {path}: {part!r} must be a list of [relpath, label, classname] items, "
                            f"not {type(obj[part]).__name__}")
        for item in obj[part]:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                    and isinstance(item[1], int) and isinstance(item[2], str)):
                raise UserError(f"split file {path}: item {item!r} in {part!r} is not [relpath, label, classname]")
    split = Split(obj["train"], obj["val"], obj["test"], str(path), sha256_file(path))
    labels, names, seen = {}, {}, {}
    for part in PARTS:
        for rel, label, name in getattr(split, part):
            if rel in seen:  # a training image in test, an image counted twice, one image under two labels
                raise UserError(f"split file {path}: image {rel!r} appears twice ({seen[rel]} and {part}); each "
                                f"image belongs to one part, once, or the test accuracy is not a test accuracy. "
                                f"Regenerate the split with scripts/make_split.py")
            seen[rel] = part
            if labels.setdefault(label, name) != name:
                raise UserError(f"split file {path}: label {label} is both {labels[label]!r} and {name!r}")
            if names.setdefault(name, label) != label:
                raise UserError(f"split file {path}: class name {name!r} has two labels ({names[name]} and "
                                f"{label}); two class folders give the same name: rename one folder and "
                                f"regenerate the split")
    if sorted(labels) != list(range(len(labels))):
        raise UserError(f"split file {path}: labels must be 0..{len(labels) - 1} without gaps")
    check_classes([labels[i] for i in sorted(labels)], f"split file {path}")
    return split


MIN_CLASSES = 2  # one class: every prediction is that class, every accuracy 100%, and the linear probe cannot fit
MIN_CLASSES_BASE2NEW = 4  # base-to-new: each half needs 2 (coop.data.base2new.halves)


def check_classes(classnames: Sequence[str], where: str, base2new_note: bool = False) -> None:
    """One check for every command that makes or reads a split (make_split, read_split): fewer than
    :data:`MIN_CLASSES` classes is refused; with ``base2new_note`` (make_split, the first command that
    can tell), fewer than :data:`MIN_CLASSES_BASE2NEW` is said once (the few-shot protocol runs,
    base-to-new refuses it: :func:`coop.data.base2new.halves`)."""
    n = len(classnames)
    if n == 0:
        raise UserError(f"{where} holds no image of any class: use the split made for your data, or make one with "
                        f"scripts/make_split.py --data-root DIR --out FILE")
    if n < MIN_CLASSES:
        raise UserError(f"{where} has 1 class ({classnames[0]!r}): with "
                        f"fewer than {MIN_CLASSES} every prediction is the one class and every accuracy 100%, "
                        f"which measures nothing; use data with at least {MIN_CLASSES} class folders")
    if base2new_note and n < MIN_CLASSES_BASE2NEW:
        log.warning("%s has %d classes: enough for the few-shot protocol, too few for base-to-new "
                    "(--protocol base2new needs %d, so that each half has 2)", where, n, MIN_CLASSES_BASE2NEW)


def check_split_matches_data(split: Split, image_root: Path, classes: Sequence[ClassInfo]) -> None:
    """Every image of the split exists under ``image_root``, in a folder of a known class."""
    absolute = [rel for p in PARTS for rel, _, _ in getattr(split, p) if rel.startswith("/") or rel[1:3] == ":\\"]
    if absolute:
        raise UserError(f"split file {split.path} holds absolute paths (e.g. {absolute[0]}, class folder "
                        f"{Path(absolute[0]).parent.name!r}); CoOp's format names images relative to {image_root.name}/, "
                        f"e.g. {Path(absolute[0]).parent.name}/{Path(absolute[0]).name}: rewrite them so, or regenerate "
                        f"the split with scripts/make_split.py")
    folders = {c.folder for c in classes}
    unknown = sorted({rel.split("/")[0] for p in PARTS for rel, _, _ in getattr(split, p)} - folders)
    if unknown:
        raise UserError(f"split file {split.path} names classes that are not in {image_root}: "
                        f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
                        f"use the split made for this data, or regenerate it with scripts/make_split.py")
    absent = sorted(folders - {rel.split("/")[0] for p in PARTS for rel, _, _ in getattr(split, p)})
    if absent:
        raise UserError(f"{image_root} has classes that split file {split.path} lacks: "
                        f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}; the split was made from "
                        f"other data: regenerate it with scripts/make_split.py, or check --data-root")
    no_train = sorted({n for _, _, n in split.val + split.test} - {n for _, _, n in split.train})
    if no_train:
        raise UserError(f"split file {split.path} has no training image of class {no_train[0]!r}"
                        f"{f' (and {len(no_train) - 1} more)' if len(no_train) > 1 else ''}; regenerate it")
    by_folder = {c.folder: c for c in classes}
    for part in PARTS:  # the prompts use the split's names: each must be its folder's, its label the sorted order's
        for rel, label, name in getattr(split, part):
            c = by_folder[rel.split("/")[0]]
            if (name, label) != (c.classname, c.label):
                raise UserError(f"split file {split.path}: {rel} is listed as class {name!r} (label {label}), but its "
                                f"folder {c.folder!r} is class {c.classname!r} (label {c.label} in sorted folder order"
                                f"{', CoOp renames the folder' if c.folder != c.classname else ''}); the prompts would "
                                f"use the wrong name: fix the file, or regenerate it with scripts/make_split.py")
    missing = [rel for p in PARTS for rel, _, _ in getattr(split, p) if not (image_root / rel).is_file()]
    if missing:
        raise UserError(f"{len(missing)} images of split file {split.path} are missing from {image_root}, "
                        f"e.g. {missing[0]}; check --data-root, or regenerate the split with scripts/make_split.py")


SAMPLINGS = ("nested", "coop")


def fewshot(train: Sequence[Item], shots: int, seed: int, sampling: str = "nested", flag: str = "--shots") -> List[Item]:
    """``shots`` training items per class for ``seed``.

    ``nested`` (default): each class's items are put in one seeded random order and the first
    ``shots`` are taken, so the 1-shot set is inside the 2-shot set, inside the 4-shot set.
    ``coop``: CoOp's own draw (Dassl's ``generate_fewshot_dataset`` after ``random.seed(seed)``):
    ``random.sample(items, shots)`` per label, labels in order of first appearance in ``train``.
    ``flag`` is the flag that set ``shots`` in the command the user ran (base-to-new's is
    ``--base2new-shots``, make_split's ``--fewshot-shots``): the error names it.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise UserError(f"{flag} must be a positive integer, got {shots!r}")
    if sampling not in SAMPLINGS:
        raise UserError(f"--sampling {sampling!r} is unknown; use one of {', '.join(SAMPLINGS)}")
    if sampling == "coop":
        return _fewshot_coop(train, shots, seed, flag)
    by_label: Dict[int, List[Item]] = {}
    for item in sorted(train, key=lambda it: (it[1], it[0])):
        by_label.setdefault(item[1], []).append(item)
    out: List[Item] = []
    for label, items in sorted(by_label.items()):
        if shots > len(items):
            raise UserError(f"{flag} {shots} is more than class {items[0][2]!r} has in train "
                            f"({len(items)} images); use {flag} {min(len(v) for v in by_label.values())} or fewer")
        order = list(items)
        random.Random(f"fewshot:{seed}:{label}").shuffle(order)
        out += order[:shots]
    return out


def fewshot_validation(val: Sequence[Item], shots: int, seed: int, sampling: str = "nested",
                       per_class: Optional[int] = None) -> Dict:
    """The few-shot validation set of a run of ``shots`` and ``seed``: K images per class from ``val``
    (K = ``per_class``, default min(shots, 4) as CoOp's lpclip), drawn like the training set
    (:func:`fewshot`). When a class has fewer than K, K is lowered to the smallest class's count for every
    class, and ``short_classes`` names the classes below the K asked for with their counts. An empty
    ``val`` gives no items. Returns ``{"items", "per_class", "requested_per_class", "short_classes"}``."""
    want = per_class or min(shots, 4)
    if not val:
        return {"items": [], "per_class": 0, "requested_per_class": want, "short_classes": {}}
    counts: Dict[int, int] = {}
    names: Dict[int, str] = {}
    for it in val:
        counts[it[1]] = counts.get(it[1], 0) + 1
        names.setdefault(it[1], it[2] if len(it) > 2 else str(it[1]))
    k = min(want, min(counts.values()))
    short = {names[c]: n for c, n in sorted(counts.items()) if n < want}
    return {"items": fewshot(val, k, seed, sampling), "per_class": k, "requested_per_class": want,
            "short_classes": short}


def _fewshot_coop(train: Sequence[Item], shots: int, seed: int, flag: str = "--shots") -> List[Item]:
    by_label: Dict[int, List[Item]] = {}
    for item in train:  # insertion order, as Dassl's split_dataset_by_label
        by_label.setdefault(item[1], []).append(item)
    rng = random.Random(seed)  # the same stream as random.seed(seed) then random.sample
    out: List[Item] = []
    for items in by_label.values():
        if shots > len(items):
            raise UserError(f"{flag} {shots} is more than class {items[0][2]!r} has in train ({len(items)} images); "
                            f"use {flag} {min(len(v) for v in by_label.values())} or fewer")
        out += rng.sample(items, shots)
    return out


def fewshot_file(split_path: str | os.PathLike, shots: int, seed: int) -> Path:
    """Where the few-shot list of a split is saved: ``splits/fewshot/<split>_shots{K}_seed{S}.json``."""
    split_path = Path(split_path)
    return split_path.parent / "fewshot" / f"{split_path.stem}_shots{shots}_seed{seed}.json"


def _fewshot_text(split: Split, shots: int, seed: int, flag: str = "--shots") -> str:
    meta = {"split_file": os.path.basename(split.path), "split_sha256": split.sha256, "shots": shots, "seed": seed}
    head = "".join(f'  "{k}": {json.dumps(v)},\n' for k, v in meta.items())
    return "{\n" + head + _items_block("train", fewshot(split.train, shots, seed, flag=flag)) + "\n}\n"


def write_fewshot(split: Split, shots: int, seed: int) -> Path:
    """Save the few-shot list of ``split`` next to it, for transparency."""
    path = fewshot_file(split.path, shots, seed)
    write_text(path, _fewshot_text(split, shots, seed))
    return path


def write_split_with_fewshot(split: Dict[str, List[Item]], out: Path, shots: Sequence[int],
                             seeds: Sequence[int], shots_flag: str = "--fewshot-shots") -> List[Path]:
    """Write a split and its few-shot lists as one set: every file is made in full first (temporary
    files beside their targets), then all are renamed into place, so a failure half-way leaves the
    old set, not a mix of old and new."""
    import hashlib

    text = dumps_split(split)
    made = Split(split["train"], split["val"], split["test"], str(out), hashlib.sha256(text.encode()).hexdigest())
    files = {Path(out): text}
    files.update({fewshot_file(out, k, s): _fewshot_text(made, k, s, shots_flag) for k in shots for s in seeds})
    with contextlib.ExitStack() as stack:
        for path, content in files.items():
            stack.enter_context(atomic_path(path)).write_text(content, encoding="utf-8")
    return list(files)
