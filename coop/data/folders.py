"""A data set of images in class folders, as one record: :class:`Dataset`, and reading such a tree.

A data set is ``<image_dir>/<class folder>/<image>`` somewhere under ``--data-root``. Its record says
which folder that is, which class folders are left out, which are renamed (the class name the prompts
and the split use), how a class name becomes the words of a prompt, the zero-shot prompt template,
its default image folder and split file, and the key of its published numbers (or none). Labels
follow the sorted folder order. Caltech101 is one record (:mod:`coop.data.caltech101`); a user's own
images are another, read from a small JSON file (:mod:`coop.data.dataset`). Nothing here is specific
to one data set.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..utils.errors import UserError
from ..utils.hashing import sha256_json

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def underscores_as_spaces(classname: str) -> str:
    """CoOp's reading of a class name in a prompt: ``car_side`` -> ``car side``."""
    return classname.replace("_", " ")


# How a class name becomes the words of a prompt, by the name a dataset record gives (``prompt_words``).
PROMPT_WORDS: Dict[str, Callable[[str], str]] = {
    "underscores_as_spaces": underscores_as_spaces,  # CoOp's (every data set of its repository)
    "as_is": lambda classname: classname,
}


@dataclass(frozen=True)
class ClassInfo:
    label: int
    folder: str       # folder name on disk, e.g. "airplanes"
    classname: str    # the class name the split and the records use, e.g. "airplane" or "car_side"
    prompt_name: str  # the words a prompt uses, e.g. "car side"


@dataclass(frozen=True)
class Dataset:
    """One data set: where its images are, which classes, and how its prompts read.

    Only :meth:`settings` decide numbers (the template and the class names' words; the left-out and
    renamed folders decide which classes there are): they enter every run's identity as
    :meth:`identity`, ``name@hash``. Folders and files are places, identified by their content
    (the split's hash, the images' hashes), never by their path.
    """

    name: str
    image_dir: str  # the folder of class folders, found at or below --data-root (Caltech101: 101_ObjectCategories)
    template: str = "a photo of a {}."  # the zero-shot prompt ("single"); CoOp's for Caltech101
    left_out: Tuple[str, ...] = ()  # class folders that are not classes (Caltech101: BACKGROUND_Google, Faces_easy)
    renamed: Tuple[Tuple[str, str], ...] = ()  # (folder, class name) pairs (CoOp's: airplanes -> airplane ...)
    prompt_words: str = "underscores_as_spaces"  # a key of PROMPT_WORDS
    images: Optional[str] = None  # the default --data-root
    split: Optional[str] = None  # the default --split-file (CoOp's JSON format)
    published: Optional[str] = None  # the key of published numbers to set beside ours (coop.report.published)
    source: str = ""  # where the record was read from: "registered", or its JSON file
    layout: str = ""  # what a user is told the tree should look like, when it is not found

    # -- what decides numbers ----------------------------------------------------------------------
    def settings(self) -> Dict:
        """The record's fields that change a run's numbers."""
        return {"template": self.template, "prompt_words": self.prompt_words, "left_out": sorted(self.left_out),
                "renamed": dict(sorted(self.renamed))}

    def identity(self) -> str:
        """The data set in a run's identity: its name and a hash of :meth:`settings` (a path is a place)."""
        return f"{self.name}@{sha256_json(self.settings())[:12]}"

    def record(self) -> Dict:
        """The data set as a result record names it."""
        return {"name": self.name, "identity": self.identity(), **self.settings(), "image_dir": self.image_dir,
                "published": self.published, "source": self.source}

    def prompt_name(self, classname: str) -> str:
        """The words a prompt uses for ``classname``."""
        return PROMPT_WORDS[self.prompt_words](classname)

    def class_name(self, folder: str) -> str:
        return dict(self.renamed).get(folder, folder)

    # -- the tree on disk --------------------------------------------------------------------------
    def expected_layout(self) -> str:
        return self.layout or (f"expected <data-root>/.../{self.image_dir}/<class>/<image>.jpg (the dataset "
                               f"{self.name}{f', {self.source}' if self.source != 'registered' else ''})")

    def find_image_root(self, data_root: str | os.PathLike, max_depth: int = 3) -> Path:
        """The folder of class folders: ``data_root`` itself or the one named ``image_dir`` found below it."""
        root, name, layout = Path(data_root).expanduser(), self.image_dir, self.expected_layout()
        if not root.exists():
            raise UserError(f"--data-root {root} does not exist; {layout}")
        if not root.is_dir():
            raise UserError(f"--data-root {root} is not a folder; {layout}")
        if root.name == name:
            return self._check_not_empty(root)
        found: List[Path] = []
        level = [root]
        for _ in range(max_depth):  # breadth first: the shallowest match wins
            found = sorted(p for d in level for p in d.glob(name) if p.is_dir())
            if found:
                break
            level = sorted(p for d in level for p in d.iterdir() if p.is_dir())
        if not found:
            archives = sorted(str(p) for p in root.rglob(f"{name}.tar.gz"))
            hint = f"; found {archives[0]}: extract it first (tar xzf)" if archives else ""
            raise UserError(f"no {name} folder in --data-root {root}{hint}; {layout}")
        if len(found) > 1:
            raise UserError(f"several {name} folders below --data-root {root}: "
                            f"{', '.join(map(str, found))}; point --data-root at the one to use")
        return self._check_not_empty(found[0])

    def _check_not_empty(self, image_root: Path) -> Path:
        if not any(self.class_folders(image_root)):
            raise UserError(f"{image_root} holds no class folders with images; {self.expected_layout()}")
        return image_root

    def class_folders(self, image_root: Path) -> List[str]:
        return sorted(
            d.name for d in image_root.iterdir()
            if d.is_dir() and d.name not in self.left_out and not d.name.startswith(".")
            and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())
        )

    def list_classes(self, image_root: Path) -> List[ClassInfo]:
        """The classes in label order (sorted folder names, left-out folders left out)."""
        classes = [ClassInfo(i, f, self.class_name(f), self.prompt_name(self.class_name(f)))
                   for i, f in enumerate(self.class_folders(image_root))]
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

    def discover(self, image_root: Path) -> List[Tuple[ClassInfo, List[str]]]:
        """Every class with its sorted image paths."""
        return [(c, list_images(image_root, c.folder)) for c in self.list_classes(image_root)]


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
