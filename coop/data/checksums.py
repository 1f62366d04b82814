"""Checksums of a downloaded or given file: a user's --md5/--sha256 read strictly, and the comparison.

The digests are computed with torchvision's ``calculate_md5`` and our ``sha256_file`` and logged, so that a
user can compare them by hand with a value published elsewhere.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import List, Optional

from torchvision.datasets.utils import calculate_md5

from ..utils.errors import UserError
from ..utils.hashing import sha256_file

log = logging.getLogger(__name__)


def normalize_hex(value: Optional[str], length: int, kind: str) -> Optional[str]:
    """``None``/``""`` -> ``None``; else the lower-case hex digest, or a UserError for a malformed one."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{{length}}}", v):
        flag = "--md5" if kind == "MD5" else "--sha256"
        raise UserError(f"{flag} {value!r} is not a {kind} checksum: give {length} hex digits, "
                        f"or an empty string ({flag} '') to skip this check")
    return v


def mismatches(path: Path, md5: Optional[str], sha256: Optional[str]) -> List[str]:
    """What does not match, checked with torchvision's ``calculate_md5`` (and SHA256, which it lacks);
    the digests are logged so that a user can compare them by hand."""
    try:
        got_md5, got_sha = calculate_md5(path), sha256_file(path)
    except OSError as e:
        raise UserError(f"could not read {path}: {e}") from None
    log.info("%s: %d bytes, MD5 %s, SHA256 %s", path.name, path.stat().st_size, got_md5, got_sha)
    return ([f"MD5 expected {md5}, got {got_md5}"] if md5 and got_md5 != md5 else []) + \
           ([f"SHA256 expected {sha256}, got {got_sha}"] if sha256 and got_sha != sha256 else [])
