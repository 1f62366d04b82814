"""Caltech101 as users download it: finding the image folder, its 100 classes, reading images.

The image folder is ``101_ObjectCategories/<class>/image_NNNN.jpg``. As CoOp does, the
``BACKGROUND_Google`` and ``Faces_easy`` folders are left out (100 classes remain), four folder
names are made readable (``airplanes`` -> ``airplane``, ``Faces`` -> ``face``, ``Leopards`` ->
``leopard``, ``Motorbikes`` -> ``motorbike``) and labels follow the sorted folder order.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..utils.errors import UserError

log = logging.getLogger(__name__)

IMAGE_DIR = "101_ObjectCategories"
IGNORED_FOLDERS = ("BACKGROUND_Google", "Faces_easy")
RENAMED_FOLDERS = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

EXPECTED_LAYOUT = (f"expected <data-root>/.../{IMAGE_DIR}/<class>/image_0001.jpg, e.g. "
                   f"data/caltech-101/{IMAGE_DIR}/accordion/image_0001.jpg "
                   f"(scripts/download_caltech101.py puts it there)")


@dataclass(frozen=True)
class ClassInfo:
    label: int
    folder: str     # folder name on disk, e.g. "airplanes"
    classname: str  # CoOp's class name, e.g. "airplane" or "car_side"

    @property
    def prompt_name(self) -> str:
        """The words used in a prompt: ``car_side`` -> ``car side``."""
        return prompt_name(self.classname)


def prompt_name(classname: str) -> str:
    return classname.replace("_", " ")


def find_image_root(data_root: str | os.PathLike, max_depth: int = 3) -> Path:
    """The ``101_ObjectCategories`` folder: ``data_root`` itself or the one found below it."""
    root = Path(data_root).expanduser()
    if not root.exists():
        raise UserError(f"--data-root {root} does not exist; {EXPECTED_LAYOUT}")
    if not root.is_dir():
        raise UserError(f"--data-root {root} is not a folder; {EXPECTED_LAYOUT}")
    if root.name == IMAGE_DIR:
        return _check_not_empty(root)
    found: List[Path] = []
    level = [root]
    for _ in range(max_depth):  # breadth first: the shallowest match wins
        found = sorted(p for d in level for p in d.glob(IMAGE_DIR) if p.is_dir())
        if found:
            break
        level = sorted(p for d in level for p in d.iterdir() if p.is_dir())
    if not found:
        archives = sorted(str(p) for p in root.rglob(f"{IMAGE_DIR}.tar.gz"))
        hint = f"; found {archives[0]}: extract it first (tar xzf)" if archives else ""
        raise UserError(f"no {IMAGE_DIR} folder in --data-root {root}{hint}; {EXPECTED_LAYOUT}")
    if len(found) > 1:
        raise UserError(f"several {IMAGE_DIR} folders below --data-root {root}: "
                        f"{', '.join(map(str, found))}; point --data-root at the one to use")
    return _check_not_empty(found[0])


def _check_not_empty(image_root: Path) -> Path:
    if not any(_class_folders(image_root)):
        raise UserError(f"{image_root} holds no class folders with images; {EXPECTED_LAYOUT}")
    return image_root


def _class_folders(image_root: Path) -> List[str]:
    return sorted(
        d.name for d in image_root.iterdir()
        if d.is_dir() and d.name not in IGNORED_FOLDERS and not d.name.startswith(".")
        and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())
    )


def list_classes(image_root: Path) -> List[ClassInfo]:
    """The classes in label order (sorted folder names, ignored folders left out)."""
    classes = [ClassInfo(i, f, RENAMED_FOLDERS.get(f, f)) for i, f in enumerate(_class_folders(image_root))]
    by_name: Dict[str, str] = {}
    for c in classes:
        if by_name.setdefault(c.classname, c.folder) != c.folder:
            raise UserError(f"{image_root}: the folders {by_name[c.classname]!r} and {c.folder!r} are both class "
                            f"{c.classname!r}; merge or rename one of them")
    by_tokens: Dict[Tuple[int, ...], str] = {}
    for c in classes:  # what CLIP reads: case, '_' vs ' ' and Unicode forms (NFC/NFD) all vanish in its tokenizer
        tokens = prompt_tokens(c.prompt_name)
        if by_tokens.setdefault(tokens, c.folder) != c.folder:
            raise UserError(f"{image_root}: the folders {by_tokens[tokens]!r} and {c.folder!r} give CLIP the same "
                            f"prompt words ({c.prompt_name.lower()!r}), so one of them could never be predicted; "
                            f"merge them or rename one")
    return classes


def prompt_tokens(words: str) -> Tuple[int, ...]:
    """The BPE tokens CLIP's tokenizer makes of ``words`` (it lower-cases, fixes Unicode, folds white space)."""
    import clip

    return tuple(clip.clip._tokenizer.encode(words))


def list_images(image_root: Path, folder: str) -> List[str]:
    """Sorted paths of one class's images, relative to ``image_root`` with '/' separators."""
    return sorted(f"{folder}/{f.name}" for f in (image_root / folder).iterdir()
                  if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith("."))


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image fully and return it as RGB (Caltech101 has grayscale images).

    16-bit and 32-bit integer images (PIL modes ``I;16*`` and ``I``) are scaled to 8 bits by the
    range of their type (65535 -> 255, 2**31 - 1 -> 255; a 16-bit PNG may open as ``I``), never by
    their content, so
    one bright pixel does not darken the rest; PIL's own ``convert("RGB")`` would clip every value
    above 255 to white.
    """
    with Image.open(path) as img:
        img.load()  # decode now, so a truncated file fails here and not in a worker later
        if img.mode.startswith("I;16") or img.mode == "I":
            arr = np.asarray(img, dtype=np.float64)
            sixteen = img.mode.startswith("I;16") or img.format == "PNG"  # PNG holds at most 16 bits
            top = 65535.0 if sixteen else 2147483647.0  # PIL's "I" is signed 32-bit
            return Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
        return img.convert("RGB")


def check_image(path: str | os.PathLike) -> Optional[str]:
    """None if the image decodes, else the reason it does not."""
    try:
        load_image(path)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def find_bad_images(image_root: Path, relpaths: List[str]) -> Dict[str, str]:
    """Map of unreadable or truncated images to their reason; each is named in a warning."""
    from ..utils.progress import bar

    bad: Dict[str, str] = {}
    for rel in bar(relpaths, desc="checking images", unit="img", leave=False, mininterval=1.0):
        reason = check_image(image_root / rel)
        if reason is not None:
            log.warning("unreadable image left out: %s (%s)", image_root / rel, reason)
            bad[rel] = reason
    return bad


def discover(image_root: Path) -> List[Tuple[ClassInfo, List[str]]]:
    """Every class with its sorted image paths."""
    return [(c, list_images(image_root, c.folder)) for c in list_classes(image_root)]
