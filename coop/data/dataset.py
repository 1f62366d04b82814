"""Which data set a run uses: a registered name (``caltech101``) or a small JSON file of a user's own.

``--dataset`` takes either. A user's own images in class folders, with a split in CoOp's JSON format,
are described by a file such as::

    {
      "name": "shapes",                      (letters, digits, . _ -: it names the data set in every record)
      "images": "images",                    (the folder of class folders; relative to this file, or absolute)
      "split": "split.json",                 (CoOp's format; scripts/make_split.py --dataset FILE makes one)
      "template": "a drawing of a {}.",      (the zero-shot prompt, one {} for the class)
      "left_out": ["BACKGROUND"],            (optional: class folders that are not classes)
      "renamed": {"cars": "car"},            (optional: folder -> class name)
      "prompt_words": "underscores_as_spaces",  (optional, the default; or "as_is")
      "published": null                      (optional: the key of published numbers, if any)
    }

``images`` and ``split`` are the defaults of ``--data-root`` and ``--split-file``; the image folder is
also found by its name below another ``--data-root``. Every problem is one :class:`UserError` line
saying what is wrong, in which file, and how to fix it.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Tuple

from ..utils.errors import UserError
from .caltech101 import CALTECH101
from .folders import PROMPT_WORDS, Dataset

REGISTERED: Dict[str, Dataset] = {d.name: d for d in (CALTECH101,)}
DEFAULT = "caltech101"
HELP = "docs/running.md#your-own-images"

REQUIRED = ("name", "images", "split", "template")
OPTIONAL = ("left_out", "renamed", "prompt_words", "published")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def load_dataset(spec: str | os.PathLike | Dataset) -> Dataset:
    """The record of ``spec``: a registered name, or the path of a dataset JSON file."""
    if isinstance(spec, Dataset):
        return spec
    text = str(spec)
    if text in REGISTERED:
        return REGISTERED[text]
    path = Path(text).expanduser()
    if path.is_file():
        return read_dataset(path)
    if path.suffix.lower() == ".json" or os.sep in text or "/" in text:
        raise UserError(f"--dataset {text}: no such file; give the path of a dataset JSON (see {HELP}) "
                        f"or one of {', '.join(REGISTERED)}")
    raise UserError(f"--dataset {text!r} is unknown: use one of {', '.join(REGISTERED)}, or the path of a JSON file "
                    f"describing your own images (see {HELP})")


def read_dataset(path: str | os.PathLike) -> Dataset:
    """A user's data set from its JSON file (see the module's docstring)."""
    path = Path(path).expanduser()
    where = f"dataset file {path}"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{where} is not valid JSON ({e}); fix it (its fields: {HELP})") from None
    except OSError as e:
        raise UserError(f"{where} cannot be read ({e.strerror or e}); check the path and its permissions") from None
    if not isinstance(obj, dict):
        raise UserError(f"{where} must hold one JSON object with the keys {', '.join(REQUIRED)} (see {HELP})")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise UserError(f"{where} lacks {', '.join(repr(k) for k in missing)}; it needs {', '.join(REQUIRED)} "
                        f"(see {HELP})")
    unknown = sorted(set(obj) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(REQUIRED + OPTIONAL)}")
    name = _string(obj, "name", where)
    if not NAME.fullmatch(name):
        raise UserError(f"{where}: name {name!r} must be letters, digits, '.', '_' or '-' (it names the data set "
                        f"in every record), e.g. \"my_photos\"")
    template = _string(obj, "template", where)
    if template.count("{}") != 1:
        raise UserError(f"{where}: template {template!r} needs exactly one '{{}}' where the class name goes, "
                        f"e.g. \"a photo of a {{}}.\"")
    base = path.resolve().parent
    images, split = (str((base / _string(obj, k, where)).resolve()) for k in ("images", "split"))
    left_out = obj.get("left_out", [])
    if not (isinstance(left_out, list) and all(isinstance(f, str) and f for f in left_out)):
        raise UserError(f"{where}: left_out must be a list of folder names, e.g. [\"BACKGROUND\"]")
    renamed = obj.get("renamed", {})
    if not (isinstance(renamed, dict) and all(isinstance(v, str) and v for v in renamed.values())):
        raise UserError(f"{where}: renamed must map folder names to class names, e.g. {{\"cars\": \"car\"}}")
    words = obj.get("prompt_words", "underscores_as_spaces")
    if words not in PROMPT_WORDS:
        raise UserError(f"{where}: prompt_words {words!r} is unknown; use one of {', '.join(PROMPT_WORDS)}")
    published = obj.get("published")
    if published is not None and not isinstance(published, str):
        raise UserError(f"{where}: published must be null or the key of published numbers, not {published!r}")
    return Dataset(name=name, image_dir=Path(images).name, template=template, left_out=tuple(left_out),
                   renamed=tuple(sorted(renamed.items())), prompt_words=words, images=images, split=split,
                   published=published, source=str(path.resolve()))


def _string(obj: Dict[str, Any], key: str, where: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: {key!r} must be a non-empty string, not {value!r}")
    return value


def default_places(spec: str) -> Tuple[str, str]:
    """The data set's own ``--data-root`` and ``--split-file``."""
    ds = load_dataset(spec)
    return ds.images, ds.split
