#!/usr/bin/env python
"""Write a small synthetic Caltech101-shaped image tree (for tests and the offline demo).

    python scripts/make_synthetic_data.py --out data/synthetic
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.data.synthetic import DEFAULT_CLASSES, make_synthetic_data  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_output("--out", kind="folder", required=True, help="folder to create 101_ObjectCategories in")
    p.add_argument("--per-class", type=int, default=12, help="images per class (default: %(default)s)")
    p.add_argument("--classes", type=int, default=len(DEFAULT_CLASSES),
                   help=f"number of classes, at most {len(DEFAULT_CLASSES)} (default: %(default)s)")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    if not 2 <= args.classes <= len(DEFAULT_CLASSES):
        raise UserError(f"--classes {args.classes}: give 2 to {len(DEFAULT_CLASSES)} (the synthetic class names)")
    if args.per_class < 3:
        raise UserError(f"--per-class {args.per_class}: give at least 3 (a split takes train, val and test images "
                        f"from every class)")
    from coop.runs.preflight import check_writable_dir

    check_writable_dir(args.out, "--out")  # a file there, or a folder that cannot be written: one line
    root = make_synthetic_data(args.out, DEFAULT_CLASSES[: args.classes], per_class=args.per_class)
    logging.getLogger("make_synthetic_data").info("wrote %s", root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
