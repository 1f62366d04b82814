"""Content hashes that key caches and identify weights, splits and images in result files."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

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


_digests: Dict[Tuple[str, int, int], str] = {}


def cached_file_digest(path: str | os.PathLike) -> str:
    """:func:`file_digest`, computed once per process for an unchanged file (same path, mtime, size):
    the feature cache and the result provenance both ask for every image's hash."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _digests:
        _digests[key] = file_digest(path)
    return _digests[key]


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
