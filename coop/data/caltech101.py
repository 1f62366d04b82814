"""Caltech101 as users download it: its record (:class:`coop.data.folders.Dataset`) and what only it has.

The image folder is ``101_ObjectCategories/<class>/image_NNNN.jpg``. As CoOp does, the
``BACKGROUND_Google`` and ``Faces_easy`` folders are left out (100 classes remain), four folder
names are made readable (``airplanes`` -> ``airplane``, ``Faces`` -> ``face``, ``Leopards`` ->
``leopard``, ``Motorbikes`` -> ``motorbike``), labels follow the sorted folder order, and the
zero-shot prompt is CoOp's ``"a photo of a {}."``. Its download is :mod:`coop.data.download`.

Only ``coop/data/`` imports this module: the rest of the package reaches a data set through
:func:`coop.data.dataset.load_dataset` (``--dataset caltech101``, the default).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

from ..utils.paths import DATA, SPLIT
from .folders import (IMAGE_EXTENSIONS, ClassInfo, Dataset, check_image, find_bad_images, list_images,  # noqa: F401
                      load_image, prompt_tokens)

IMAGE_DIR = "101_ObjectCategories"
IGNORED_FOLDERS = ("BACKGROUND_Google", "Faces_easy")
RENAMED_FOLDERS = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
# CoOp's template for Caltech101 (CoOp's trainers/zsclip.py and trainers/coop.py: CUSTOM_TEMPLATES["Caltech101"]).
TEMPLATE = "a photo of a {}."

EXPECTED_LAYOUT = (f"expected <data-root>/.../{IMAGE_DIR}/<class>/image_0001.jpg, e.g. "
                   f"data/caltech-101/{IMAGE_DIR}/accordion/image_0001.jpg "
                   f"(scripts/download_caltech101.py puts it there)")

CALTECH101 = Dataset(
    name="caltech101", image_dir=IMAGE_DIR, template=TEMPLATE, left_out=IGNORED_FOLDERS,
    renamed=tuple(sorted(RENAMED_FOLDERS.items())), prompt_words="underscores_as_spaces",
    images=str(DATA), split=str(SPLIT), published="caltech101", source="registered", layout=EXPECTED_LAYOUT)


def prompt_name(classname: str) -> str:
    """The words used in a prompt: ``car_side`` -> ``car side``."""
    return CALTECH101.prompt_name(classname)


def find_image_root(data_root: str | os.PathLike, max_depth: int = 3) -> Path:
    """The ``101_ObjectCategories`` folder: ``data_root`` itself or the one found below it."""
    return CALTECH101.find_image_root(data_root, max_depth)


def list_classes(image_root: Path) -> List[ClassInfo]:
    """The classes in label order (sorted folder names, ignored folders left out)."""
    return CALTECH101.list_classes(image_root)


def discover(image_root: Path) -> List[Tuple[ClassInfo, List[str]]]:
    """Every class with its sorted image paths."""
    return CALTECH101.discover(image_root)
