"""Download, verify and unpack Caltech101 into the layout :mod:`coop.data.caltech101` reads.

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
after the checksum matched; extraction (:mod:`coop.data.archive`) goes to a hidden temporary folder and
is moved into place only when complete. A killed run therefore never leaves a file or image tree
that looks complete; the hidden leftovers of a killed run are removed by the next
:func:`fetch_caltech101` in that folder.

Built on torchvision's ``calculate_md5`` and ``extract_archive`` (the same CaltechDATA zip and MD5
as torchvision's own ``Caltech101``). The download itself is ours: torchvision's ``download_url``
has no timeout, writes into the final file while downloading, and retries a failed ``https://`` URL
over plain ``http://``.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from .archive import EXTRACT_PREFIX, extract  # noqa: F401 (part of this module's interface)
from .caltech101 import IMAGE_DIR, find_image_root, list_classes
from .checksums import mismatches, normalize_hex
from ..utils.errors import UserError

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
IMAGES_TAR = f"{IMAGE_DIR}.tar.gz"  # == coop.data.archive.IMAGES_TAR
IMAGES_TAR_MD5 = "b224c7392d521a49829488ab0f1120d9"

USER_AGENT = "coop-caltech101-download/0.1 (Python urllib)"
CHUNK_BYTES = 1 << 20
PARTIAL_SUFFIX = ".partial-download"


# ----------------------------------------------------------------------------- checksums

def verify_file(path: Path, md5: Optional[str] = None, sha256: Optional[str] = None) -> None:
    """Check a local file against the given checksum(s); a mismatch is a UserError (the file is kept)."""
    bad = mismatches(path, normalize_hex(md5, 32, "MD5"), normalize_hex(sha256, 64, "SHA256"))
    if bad:
        raise UserError(f"checksum mismatch for {path}: {'; '.join(bad)}. It is not the expected file or it is "
                        f"damaged (an interrupted copy?): fetch it again from {DEFAULT_URL}, or, if you trust "
                        f"this file, skip the check with --md5 '' --sha256 ''")


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


def _stream(url: str, out: BinaryIO, out_path: Path, timeout: float, desc: str) -> int:
    """Copy ``url`` into ``out`` with a progress bar and a timeout on every read; returns the size."""
    from ..utils.progress import bar

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
    size = 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with bar(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
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
                size += len(chunk)
                bar.update(len(chunk))
    if total is not None and size != total:
        raise _network_error(url, f"the transfer stopped after {size} of {total} bytes")
    return size


def download(url: str, dest: Path, expected_md5: Optional[str] = None, expected_sha256: Optional[str] = None,
             timeout: float = 60.0) -> Path:
    """Download ``url`` (http, https or file) to ``dest``, verify it, and only then put it in place.

    The bytes go to a hidden ``.<name>.*.partial-download`` file in ``dest``'s folder, which is
    renamed onto ``dest`` after the checksum(s) matched and deleted on any failure (network error,
    checksum mismatch, full disk, Ctrl-C). Problems the user can fix raise :class:`UserError`.
    ``timeout`` (seconds) applies to connecting and to each read.
    """
    dest = Path(dest)
    md5 = normalize_hex(expected_md5, 32, "MD5")
    sha256 = normalize_hex(expected_sha256, 64, "SHA256")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
    except OSError as e:
        raise UserError(f"cannot write into {dest.parent}: {e}; choose another output folder (--out)") from None
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s -> %s", url, dest)
        with os.fdopen(fd, "wb") as out:
            size = _stream(url, out, tmp, timeout, desc=dest.name)
            out.flush()
            os.fsync(out.fileno())
        bad = mismatches(tmp, md5, sha256)
        if bad:
            raise UserError(f"checksum mismatch for {url} ({size} bytes downloaded): {'; '.join(bad)}. "
                            f"The download is damaged or the file changed on the server; it was deleted. Try "
                            f"again; if the file changed on purpose and you trust it, skip the check with "
                            f"--md5 '' (and --sha256 '')")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


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


@contextlib.contextmanager
def _made_folders_removed_on_failure(folder: Path) -> Iterator[None]:
    """The folders a failed fetch made (``folder`` and its missing parents) are removed again when it
    leaves them empty: a failed download must not leave an empty ``data/caltech-101/`` behind, which
    looks like data that is not there. A folder holding anything (a verified archive kept for the next
    try, a user's file) stays."""
    made, p = [], folder
    while not p.exists():
        made.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:  # not empty, or gone: keep what is there
                break
        raise


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
    md5 = normalize_hex(md5, 32, "MD5")
    sha256 = normalize_hex(sha256, 64, "SHA256")
    _remove_leftovers(out_dir)
    existing = _existing_image_root(out_dir)
    if existing is not None:
        log.info("%s already holds the images (%d classes); nothing to download", existing, len(list_classes(existing)))
        return existing
    with _made_folders_removed_on_failure(out_dir):
        return _fetch(out_dir, url, archive, md5, sha256, keep_archive, timeout)


def _fetch(out_dir: Path, url: str, archive: Optional[Path], md5: Optional[str], sha256: Optional[str],
           keep_archive: bool, timeout: float) -> Path:
    """:func:`fetch_caltech101` once it is known that ``out_dir`` holds no images yet."""
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
        if target.is_file() and (md5 or sha256) and not mismatches(target, md5, sha256):
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
