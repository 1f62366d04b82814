"""Unpacking a Caltech101 archive safely and atomically into the layout :mod:`coop.data.caltech101` reads.

Every member is checked before anything is written (no absolute paths, no ``..``, no links leaving
the folder, no devices); torchvision's ``extract_archive`` then unpacks it into a hidden temporary
folder inside the output folder, and the content is moved into place only when complete -- the
image folder last, in one rename. The official zip holds ``caltech-101/101_ObjectCategories.tar.gz``:
that inner archive is unpacked too.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import List

from torchvision.datasets.utils import extract_archive

from .caltech101 import IMAGE_DIR, find_image_root
from ..utils.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"  # see coop.data.download
IMAGES_TAR = f"{IMAGE_DIR}.tar.gz"
EXTRACT_PREFIX = ".coop-extract-"
MACOS_JUNK = "__MACOSX"


def _check_member(name: str, archive: Path) -> None:
    """Refuse absolute member paths and ``..`` components (path traversal)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UserError(f"refusing to extract {archive}: member {name!r} has an absolute path "
                        f"(it would be written outside the output folder); the archive is not a genuine Caltech101 archive")
    if ".." in PurePosixPath(norm).parts:
        raise UserError(f"refusing to extract {archive}: member {name!r} contains '..' "
                        f"(path traversal: it would be written outside the output folder); "
                        f"the archive is not a genuine Caltech101 archive")


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> None:
    _check_member(member.name, archive)
    if member.issym() or member.islnk():
        target = member.linkname.replace("\\", "/")
        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
        if target.startswith("/") or ".." in (base / target).parts:
            raise UserError(f"refusing to extract {archive}: link {member.name!r} points to {member.linkname!r}, "
                            f"outside the output folder")
    elif not (member.isfile() or member.isdir()):
        raise UserError(f"refusing to extract {archive}: member {member.name!r} is a device or pipe, "
                        f"not a file or folder")


def _check_members(archive: Path) -> str:
    """Refuse unsafe members before anything is written; returns the archive's kind, "zip" or "tar"."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, archive)
        return "zip"
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                _check_tar_member(member, archive)
        return "tar"
    raise UserError(f"{archive} is not a zip or tar archive; expected caltech-101.zip from {DEFAULT_URL} "
                    f"(or its {IMAGES_TAR})")


def _extract_any(archive: Path, dest: Path) -> None:
    """Unpack a .zip, .tar or .tar.gz into ``dest`` with torchvision's ``extract_archive``, after
    checking every member; a damaged archive is a UserError."""
    try:
        kind = _check_members(archive)
        name = archive
        if not archive.name.lower().endswith((".zip", ".tar", ".tar.gz", ".tgz")):
            name = dest / f".archive.{kind}"  # torchvision picks the format by the file's suffix
            os.symlink(archive.resolve(), name)
        with warnings.catch_warnings():  # Python 3.12+: extraction without a filter; members were checked above
            warnings.simplefilter("ignore", DeprecationWarning)
            extract_archive(str(name), str(dest))
        if name != archive:
            name.unlink()
    except UserError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, RuntimeError) as e:
        raise UserError(f"{archive} is damaged or incomplete ({type(e).__name__}: {e}); delete it and "
                        f"download it again") from None
    except OSError as e:  # zlib/gzip errors, or the disk is full
        raise UserError(f"extracting {archive} into {dest} failed ({type(e).__name__}: {e}); the archive may be "
                        f"damaged (download it again) or the disk full") from None


def _image_dirs(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob(IMAGE_DIR) if p.is_dir() and MACOS_JUNK not in p.parts)


def _inner_archives(root: Path) -> List[Path]:
    return sorted(p for p in root.rglob(IMAGES_TAR) if p.is_file() and MACOS_JUNK not in p.parts)


def extract(archive: Path, dest: Path, keep_inner_archive: bool = False) -> Path:
    """Unpack a Caltech101 archive into ``dest`` and return its ``101_ObjectCategories`` folder.

    Accepts the official zip, ``101_ObjectCategories.tar.gz`` itself, or any .zip/.tar/.tar.gz
    holding the image folder. Members with absolute paths or ``..`` are refused (UserError). If the
    unpacked files hold ``101_ObjectCategories.tar.gz`` but no ``101_ObjectCategories/`` folder,
    that inner archive is unpacked next to itself and then deleted (unless ``keep_inner_archive``).
    A single top folder (the zip's ``caltech-101/``) is dropped, so the images end up in
    ``dest/101_ObjectCategories``. Everything happens in a hidden temporary folder inside ``dest``;
    its content is moved into place only when complete, the image folder last and in one rename.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UserError(f"archive {archive} does not exist or is not a file")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=EXTRACT_PREFIX, dir=dest))
    except OSError as e:
        raise UserError(f"cannot write into {dest}: {e}; choose another output folder (--out)") from None
    try:
        log.info("extracting %s into %s", archive, dest)
        _extract_any(archive, tmp)
        shutil.rmtree(tmp / MACOS_JUNK, ignore_errors=True)  # macOS resource forks, if the zip has them
        content = _drop_single_top_folder(tmp)
        if not _image_dirs(content):
            inner = _inner_archives(content)
            if len(inner) > 1:
                raise UserError(f"{archive} holds several {IMAGES_TAR}: {', '.join(map(str, inner))}")
            if inner:
                log.info("extracting the inner %s", inner[0].relative_to(content))
                _extract_any(inner[0], inner[0].parent)
                if not keep_inner_archive:
                    inner[0].unlink()
        try:
            image_root = find_image_root(content)
        except UserError:
            raise UserError(f"{archive} does not hold a {IMAGE_DIR} folder of class folders with images; "
                            f"is it the Caltech101 archive ({DEFAULT_URL})?") from None
        relative = image_root.relative_to(content)
        _move_into_place(content, dest, last=relative.parts[0])
        return dest / relative
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drop_single_top_folder(tmp: Path) -> Path:
    entries = list(tmp.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name != IMAGE_DIR:
        return entries[0]
    return tmp


def _move_into_place(content: Path, dest: Path, last: str) -> None:
    entries = sorted(content.iterdir(), key=lambda p: (p.name == last, p.name))
    conflicts = [dest / p.name for p in entries if (dest / p.name).exists() and ((dest / p.name).is_dir() or p.is_dir())]
    if conflicts:
        raise UserError(f"{', '.join(map(str, conflicts))} already exists but is not a complete Caltech101 image "
                        f"folder; move it away or delete it, then run again")
    for p in entries:  # same file system (tmp is inside dest): each rename is atomic
        os.replace(p, dest / p.name)


