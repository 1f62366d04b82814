"""Download, verify and unpack Caltech101 into the layout :mod:`coop.data` reads.

The official copy lives on CaltechDATA (record ``mzrjq-6wc02``, doi:10.22002/D1.20086) as one
zip, ``caltech-101.zip`` (about 137 MB). The images are *not* loose in it: the zip holds a folder
``caltech-101/`` with ``101_ObjectCategories.tar.gz`` (the images), ``Annotations.tar`` and
``show_annotation.m``, so the images take two extractions. :func:`fetch_caltech101` does both and
leaves ``<out>/101_ObjectCategories/<class>/image_0001.jpg`` (plus ``Annotations.tar`` and
``show_annotation.m`` next to it).

Verification. By default the zip is checked against its **MD5 only**. That MD5 is the one
torchvision uses since it switched to the CaltechDATA zip (merged pull request pytorch/vision#9205)
and the same value appears independently in other dataset loaders. A SHA256 of the zip
(``CANDIDATE_SHA256`` below) appears only in a few third-party scripts, not in an authoritative
place, so it is not checked by default; the SHA256 of every file is logged so you can compare it.
Pass ``sha256=...`` (``--sha256``) to enforce one, and ``md5=None`` (``--md5 ''``) to skip the MD5.

Atomicity. Downloads go to a hidden temporary file next to the target and are renamed onto it only
after the checksum matched; extraction goes to a hidden temporary folder inside the output folder
and its content is moved into place (one rename for the image folder) only once every member is
out. A killed run therefore never leaves a file or image tree that looks complete; the hidden
leftovers of a killed run are removed by the next :func:`fetch_caltech101` in that folder (so do not
run two of them into the same folder at once).
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, List, Optional

from .data import IMAGE_DIR, find_image_root, list_classes
from .errors import UserError

log = logging.getLogger(__name__)

# Source: CaltechDATA record of "Caltech 101" (https://data.caltech.edu/records/mzrjq-6wc02); the same
# URL is used by torchvision's Caltech101 since pytorch/vision#9205 ("Fixed Caltech-101 and
# Caltech-256 broken links with the official ones", merged 2025), torchvision/datasets/caltech.py.
DEFAULT_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip"
# Source: the same torchvision change (pytorch/vision#9205): md5="3138e1922a9193bfa496528edbbc45d0"
# for filename "caltech-101.zip"; the identical value is in the R package mlverse/torchvision
# (caltech101_dataset resources) and in other loaders found by the search.
DEFAULT_MD5 = "3138e1922a9193bfa496528edbbc45d0"
# Not confirmed by an authoritative source: this SHA256 of caltech-101.zip appears only in a few
# unrelated third-party scripts (one says it is "the archive TFDS would download"). Hence the
# default is no SHA256 check; pass it explicitly (--sha256) if you trust it.
CANDIDATE_SHA256 = "331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91"
DEFAULT_SHA256: Optional[str] = None

# The image archive inside the zip (and the file the old vision.caltech.edu page served).
# Source of its MD5: torchvision/datasets/caltech.py before #9205 (filename="101_ObjectCategories.tar.gz",
# md5="b224c7392d521a49829488ab0f1120d9"). Used only when that file is passed as --archive with the
# default checksum; the copy inside the zip is covered by the zip's own checksum.
IMAGES_TAR = f"{IMAGE_DIR}.tar.gz"
IMAGES_TAR_MD5 = "b224c7392d521a49829488ab0f1120d9"

USER_AGENT = "coop-caltech101-download/0.1 (Python urllib)"
CHUNK_BYTES = 1 << 20
EXTRACT_PREFIX = ".coop-extract-"
PARTIAL_SUFFIX = ".partial-download"
MACOS_JUNK = "__MACOSX"


@dataclass(frozen=True)
class Digests:
    size: int
    md5: str
    sha256: str


# ----------------------------------------------------------------------------- checksums

def _normalize_hex(value: Optional[str], length: int, kind: str) -> Optional[str]:
    """``None``/``""`` -> ``None``; else the lower-case hex digest, or a UserError for a malformed one."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{{length}}}", v):
        flag = "--md5" if kind == "MD5" else "--sha256"
        raise UserError(f"{flag} {value!r} is not a {kind} checksum: give {length} hex digits, "
                        f"or an empty string ({flag} '') to skip this check")
    return v


def _new_hashers():
    return hashlib.md5(usedforsecurity=False), hashlib.sha256()


def file_digests(path: Path) -> Digests:
    """Size, MD5 and SHA256 of a file, read in chunks."""
    md5, sha = _new_hashers()
    size = 0
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise UserError(f"could not read {path}: {e}") from None
    return Digests(size, md5.hexdigest(), sha.hexdigest())


def _mismatches(got: Digests, md5: Optional[str], sha256: Optional[str]) -> List[str]:
    bad = []
    if md5 is not None and got.md5 != md5:
        bad.append(f"MD5 expected {md5}, got {got.md5}")
    if sha256 is not None and got.sha256 != sha256:
        bad.append(f"SHA256 expected {sha256}, got {got.sha256}")
    return bad


def _log_verified(name: str, got: Digests, md5: Optional[str], sha256: Optional[str]) -> None:
    checked = [k for k, v in (("MD5", md5), ("SHA256", sha256)) if v is not None]
    log.info("%s: %d bytes, MD5 %s, SHA256 %s (%s)", name, got.size, got.md5, got.sha256,
             "checked: " + " and ".join(checked) + " match" if checked else "no checksum given, not verified")


def verify_file(path: Path, md5: Optional[str] = None, sha256: Optional[str] = None) -> Digests:
    """Check a local file against the given checksum(s); a mismatch is a UserError (the file is kept)."""
    md5 = _normalize_hex(md5, 32, "MD5")
    sha256 = _normalize_hex(sha256, 64, "SHA256")
    got = file_digests(path)
    bad = _mismatches(got, md5, sha256)
    if bad:
        raise UserError(f"checksum mismatch for {path} ({got.size} bytes): {'; '.join(bad)}. It is not the "
                        f"expected file or it is damaged (an interrupted copy?): fetch it again from "
                        f"{DEFAULT_URL}, or, if you trust this file, skip the check with --md5 '' --sha256 ''")
    _log_verified(path.name, got, md5, sha256)
    return got


# ----------------------------------------------------------------------------- download

def _network_error(url: str, what: str) -> UserError:
    return UserError(
        f"could not download {url}: {what}. Check the network connection and the URL (--url); or, on a "
        f"machine with network access, download {url} by hand, copy it here and pass it with --archive FILE; "
        f"or extract it yourself so that data/caltech-101/{IMAGE_DIR}/<class>/image_0001.jpg exists")


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError)


def _describe(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"the server answered HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{e.reason}"
    if isinstance(e, TimeoutError):
        return f"timed out ({e})" if str(e) else "timed out"
    return f"{type(e).__name__}: {e}"


def _stream(url: str, out: BinaryIO, out_path: Path, timeout: float, desc: str) -> Digests:
    """Copy ``url`` into ``out`` with a progress bar, hashing on the way."""
    from tqdm import tqdm

    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise UserError(f"--url {url!r}: only http://, https:// and file:// URLs are supported; "
                        f"for a file on this machine pass --archive FILE")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise _network_error(url, _describe(e)) from None
    except _NETWORK_ERRORS as e:
        raise _network_error(url, _describe(e)) from None
    except ValueError as e:  # a malformed URL
        raise UserError(f"--url {url!r} is not a valid URL: {e}") from None
    md5, sha = _new_hashers()
    size = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                  mininterval=0.5, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except _NETWORK_ERRORS as e:
                    raise _network_error(url, f"the transfer broke off after {size} bytes ({_describe(e)})") from None
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as e:
                    raise UserError(f"could not write {out_path}: {e}; free some disk space or choose "
                                    f"another output folder (--out)") from None
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
    if total is not None and size != total:
        raise _network_error(url, f"the transfer stopped after {size} of {total} bytes")
    return Digests(size, md5.hexdigest(), sha.hexdigest())


def download(url: str, dest: Path, expected_md5: Optional[str] = None, expected_sha256: Optional[str] = None,
             timeout: float = 60.0) -> Path:
    """Download ``url`` (http, https or file) to ``dest``, verify it, and only then put it in place.

    The bytes go to a hidden ``.<name>.*.partial-download`` file in ``dest``'s folder, which is
    renamed onto ``dest`` after the checksum(s) matched and deleted on any failure (network error,
    checksum mismatch, full disk, Ctrl-C). Problems the user can fix raise :class:`UserError`.
    ``timeout`` (seconds) applies to connecting and to each read.
    """
    dest = Path(dest)
    md5 = _normalize_hex(expected_md5, 32, "MD5")
    sha256 = _normalize_hex(expected_sha256, 64, "SHA256")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
    except OSError as e:
        raise UserError(f"cannot write into {dest.parent}: {e}; choose another output folder (--out)") from None
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s -> %s", url, dest)
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, tmp, timeout, desc=dest.name)
            out.flush()
            os.fsync(out.fileno())
        bad = _mismatches(got, md5, sha256)
        if bad:
            raise UserError(f"checksum mismatch for {url} ({got.size} bytes downloaded): {'; '.join(bad)}. "
                            f"The download is damaged or the file changed on the server; it was deleted. Try "
                            f"again; if the file changed on purpose and you trust it, skip the check with "
                            f"--md5 '' (and --sha256 '')")
        _log_verified(dest.name, got, md5, sha256)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


# ----------------------------------------------------------------------------- extraction

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


def _extract_tar(archive: Path, dest: Path) -> None:
    from tqdm import tqdm

    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(archive, "r:*") as tf:
        # one pass over the stream: a member is checked right before it is written
        for member in tqdm(tf, desc=f"extracting {archive.name}", unit=" files", mininterval=1.0, leave=False):
            _check_tar_member(member, archive)
            tf.extract(member, dest, **extra)


def _extract_zip(archive: Path, dest: Path) -> None:
    from tqdm import tqdm

    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check every name before writing anything
            _check_member(info.filename, archive)
        for info in tqdm(infos, desc=f"extracting {archive.name}", unit=" files", mininterval=1.0, leave=False):
            zf.extract(info, dest)


def _is_zip(archive: Path) -> bool:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return True
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return False
    return zipfile.is_zipfile(archive)


def _extract_any(archive: Path, dest: Path) -> None:
    """Unpack a .zip, .tar or .tar.gz into ``dest`` safely; a damaged archive is a UserError."""
    try:
        if _is_zip(archive):
            _extract_zip(archive, dest)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest)
        else:
            raise UserError(f"{archive} is not a zip or tar archive; expected caltech-101.zip from {DEFAULT_URL} "
                            f"(or its {IMAGES_TAR})")
    except UserError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as e:
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


# ----------------------------------------------------------------------------- the whole job

def _remove_leftovers(out_dir: Path) -> None:
    """Delete the hidden temporaries a killed run left in ``out_dir`` (they must not look like data)."""
    if not out_dir.is_dir():
        return
    for p in sorted(out_dir.glob(f"{EXTRACT_PREFIX}*")):
        if p.is_dir():
            log.info("removing %s, left over by an interrupted extraction", p)
            shutil.rmtree(p, ignore_errors=True)
    for p in sorted(out_dir.glob(f".*{PARTIAL_SUFFIX}")):
        if p.is_file():
            log.info("removing %s, left over by an interrupted download", p)
            p.unlink()


def _existing_image_root(out_dir: Path) -> Optional[Path]:
    if not out_dir.is_dir():
        return None
    try:
        return find_image_root(out_dir)
    except UserError as e:
        log.debug("no usable image folder yet: %s", e)
        return None


def _archive_name(url: str) -> str:
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    return name or "caltech-101.zip"


def fetch_caltech101(out_dir: Path, url: str = DEFAULT_URL, archive: Optional[Path] = None,
                     md5: Optional[str] = DEFAULT_MD5, sha256: Optional[str] = DEFAULT_SHA256,
                     keep_archive: bool = False, timeout: float = 60.0) -> Path:
    """Make sure ``out_dir`` holds Caltech101's images and return its ``101_ObjectCategories`` folder.

    If ``out_dir`` already holds the image folder, nothing is downloaded. Otherwise the archive is
    downloaded from ``url`` into ``out_dir`` (or the local ``archive`` file is used), checked against
    ``md5``/``sha256`` (``None`` skips a check) and extracted. A downloaded archive is deleted once
    extraction succeeded unless ``keep_archive``; if extraction fails it stays, verified, and the next
    run reuses it. A local ``archive`` is never deleted.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")
    md5 = _normalize_hex(md5, 32, "MD5")
    sha256 = _normalize_hex(sha256, 64, "SHA256")
    _remove_leftovers(out_dir)
    existing = _existing_image_root(out_dir)
    if existing is not None:
        log.info("%s already holds the images (%d classes); nothing to download", existing, len(list_classes(existing)))
        return existing

    if archive is not None:
        archive = Path(archive).expanduser()
        if not archive.is_file():
            raise UserError(f"--archive {archive} does not exist or is not a file; download it from {DEFAULT_URL}")
        if archive.name == IMAGES_TAR and md5 == DEFAULT_MD5:
            log.info("%s is the image archive alone: checking it against its own MD5 %s", archive, IMAGES_TAR_MD5)
            md5 = IMAGES_TAR_MD5
        verify_file(archive, md5, sha256)
        image_root = extract(archive, out_dir, keep_inner_archive=keep_archive)
    else:
        target = out_dir / _archive_name(url)
        if target.is_file() and (md5 or sha256) and not _mismatches(file_digests(target), md5, sha256):
            log.info("reusing %s, already downloaded and verified", target)
        else:
            download(url, target, md5, sha256, timeout=timeout)
        image_root = extract(target, out_dir, keep_inner_archive=keep_archive)
        if keep_archive:
            log.info("kept %s", target)
        else:
            target.unlink()
            log.info("deleted %s (extracted; pass --keep-archive to keep it)", target)
    log.info("images ready in %s (%d classes)", image_root, len(list_classes(image_root)))
    return image_root
