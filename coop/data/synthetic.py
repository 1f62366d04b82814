"""A small Caltech101-shaped image tree for tests and the offline demo.

``101_ObjectCategories/<class>/image_0001.jpg`` with real Caltech101 folder names (including the
renamed ones and the ignored ``BACKGROUND_Google`` / ``Faces_easy``), one grayscale image, and
classes a tiny random model can tell apart: each class has its own colour and stripe pattern.
Another data set's tree is the same with its own ``image_dir``, classes and ``left_out`` folders.
"""
from __future__ import annotations

import colorsys
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from .caltech101 import IMAGE_DIR
from ..utils.errors import UserError

DEFAULT_CLASSES = ("Faces", "Leopards", "Motorbikes", "accordion", "airplanes", "anchor", "car_side",
                   "dollar_bill", "yin_yang", "water_lilly")


def _draw(label: int, n_classes: int, rng: random.Random, size: tuple[int, int]) -> Image.Image:
    hue = label / n_classes
    r, g, b = (int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.9))
    img = Image.new("RGB", size, (r, g, b))
    d = ImageDraw.Draw(img)
    w, h = size
    period = 6 + 4 * (label % 4)  # stripes whose spacing and direction depend on the class
    for i in range(-h, w + h, period):
        if label % 2:
            d.line([(i, 0), (i + h, h)], fill=(255 - r, 255 - g, 255 - b), width=2)
        else:
            d.line([(i, 0), (i, h)], fill=(255 - r, 255 - g, 255 - b), width=2)
    for _ in range(8):  # a little clutter so views differ
        x, y = rng.randrange(w), rng.randrange(h)
        d.ellipse([x, y, x + rng.randrange(3, 12), y + rng.randrange(3, 12)], fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def make_synthetic_data(out: str | os.PathLike, classes: Sequence[str] = DEFAULT_CLASSES,
                        per_class: int = 12, seed: int = 0, image_dir: str = IMAGE_DIR,
                        left_out: Sequence[str] = ("BACKGROUND_Google", "Faces_easy")) -> Path:
    """Write the tree under ``out`` and return its ``image_dir`` folder (Caltech101's ``101_ObjectCategories``);
    the ``left_out`` folders hold images too, as Caltech101's do.

    The tree is built in a temporary folder beside ``out/101_ObjectCategories`` and renamed into
    place when complete, so a killed run never leaves a tree with missing classes.
    """
    if not classes or per_class < 1:
        raise UserError(f"a synthetic tree needs classes and images; got {len(classes)} classes x {per_class}")
    final = Path(out) / image_dir
    if final.exists():
        raise UserError(f"{final} already exists; remove it or choose another --out")
    Path(out).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic.", dir=out))
    try:
        _write_tree(tmp, classes, per_class, seed, left_out)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_tree(root: Path, classes: Sequence[str], per_class: int, seed: int, left_out: Sequence[str]) -> None:
    rng = random.Random(seed)
    for label, name in enumerate(sorted(classes)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (rng.randrange(72, 128), rng.randrange(64, 112))
            img = _draw(label, len(classes), rng, size)
            if label == 0 and i == 0:
                img = img.convert("L")  # Caltech101 has grayscale images
            img.save(folder / f"image_{i + 1:04d}.jpg", quality=90)
    for ignored in left_out:  # present in the real data, left out by it
        (root / ignored).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            _draw(i, 2, rng, (80, 80)).save(root / ignored / f"image_{i + 1:04d}.jpg")
