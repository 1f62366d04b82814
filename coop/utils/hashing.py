"""Content hashes that key caches and identify weights, splits and images in result files."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """Short content hash of a file (blake2b, 80 bits): the identity of an image in caches and results."""
    h = hashlib.blake2b(digest_size=10)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


_digests: Dict[Tuple[int, int, int, int], str] = {}


def cached_file_digest(path: str | os.PathLike) -> str:
    """:func:`file_digest`, computed once per process for an unchanged file (the same file -- device and
    inode, whatever path names it -- with the same mtime and size): the feature cache and the result
    provenance both ask for every image's hash."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _digests:
        _digests[key] = file_digest(path)
    return _digests[key]


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # coop/


def clip_source_files() -> List[Path]:
    """The files of the installed ``clip`` package that run (its model and loader): an edit there
    changes numbers as surely as an edit of ours."""
    import importlib.util

    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    return [root / name for name in ("clip.py", "model.py") if (root / name).is_file()]


def source_sha256(modules: Sequence[str], salt: str = "") -> str:
    """Hash of the source of ``modules`` (dotted names under ``coop``, e.g. ``"features.views"``)
    and of the installed ``clip`` package's code."""
    h = hashlib.sha256(salt.encode())
    for name in modules:
        h.update(name.encode() + b"\0" + (PACKAGE_DIR / (name.replace(".", "/") + ".py")).read_bytes())
    for f in clip_source_files():
        h.update(b"clip/" + f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def source_file_sha256(module: str) -> str:
    """Hash of an importable module's source file (a method kept outside ``coop``)."""
    import importlib

    return sha256_file(importlib.import_module(module).__file__)


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Hash of a model's weights (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
