#!/usr/bin/env python
"""Download Caltech101 from CaltechDATA, verify it and unpack it to <out>/101_ObjectCategories.

    python scripts/download_caltech101.py                          # -> data/caltech-101/101_ObjectCategories
    python scripts/download_caltech101.py --archive caltech-101.zip   # no network: use a copied zip

Nothing is downloaded when <out> already holds the images. The zip (about 137 MB) is checked
against its MD5 (--md5 '' skips that), deleted after a successful extraction unless --keep-archive,
and kept for the next run if extraction fails. The project's split (splits/caltech101.json) is
committed, so afterwards only --data-root <out> has to be passed to the other scripts.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.data.download import CANDIDATE_SHA256, DEFAULT_MD5, DEFAULT_URL, fetch_caltech101  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import DATA  # noqa: E402

log = logging.getLogger("download_caltech101")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_output("--out", kind="folder", default=str(DATA / "caltech-101"), help="folder to put the images in (default: %(default)s)")
    p.add_argument("--url", default=DEFAULT_URL, help="where to download the zip from: http(s):// or file:// "
                                                      "(default: %(default)s)")
    p.add_argument("--archive", metavar="FILE", default=None,
                   help="use this local caltech-101.zip (or 101_ObjectCategories.tar.gz) instead of downloading")
    p.add_argument("--md5", default=DEFAULT_MD5, help="expected MD5 of the archive; '' skips the check "
                                                      "(default: %(default)s, the CaltechDATA zip's)")
    p.add_argument("--sha256", default="", help="expected SHA256 of the archive; '' (the default) skips the check. "
                                                f"Unconfirmed value seen for the zip: {CANDIDATE_SHA256}")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extracting it")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    if not args.timeout > 0:
        raise UserError(f"--timeout {args.timeout} must be a positive number of seconds")
    image_root = fetch_caltech101(
        Path(args.out),
        url=args.url,
        archive=Path(args.archive) if args.archive else None,
        md5=args.md5 or None,
        sha256=args.sha256 or None,
        keep_archive=args.keep_archive,
        timeout=args.timeout,
    )
    log.info("image folder: %s", image_root)
    log.info("data ready: pass --data-root %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
