#!/usr/bin/env python
"""Make the project's Caltech101 split (CoOp's JSON format) and its few-shot lists.

    python scripts/make_split.py --data-root data/caltech-101 --out splits/caltech101.json
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser, parse_int_list  # noqa: E402
from coop.data.caltech101 import find_image_root  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import SPLIT  # noqa: E402
from coop.data.split import fewshot_file, make_split, write_split_with_fewshot  # noqa: E402

log = logging.getLogger("make_split")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--data-root", required=True, help="101_ObjectCategories or a folder above it")
    p.add_output("--out", kind="split", default=str(SPLIT), help="split file to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of the per-class shuffle (default: %(default)s)")
    p.add_argument("--fewshot-shots", default="1 2 4 8 16", help="few-shot lists to save (default: %(default)s)")
    p.add_argument("--fewshot-seeds", default="1 2 3", help="seeds of the few-shot lists (default: %(default)s)")
    p.add_argument("--force", action="store_true",
                   help="set aside an existing split file (e.g. the committed one) and its few-shot lists, and write anew")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    shots = parse_int_list(args.fewshot_shots, "--fewshot-shots")
    seeds = parse_int_list(args.fewshot_seeds, "--fewshot-seeds", minimum=0)
    out = Path(args.out)
    taken = [p for p in (fewshot_file(out, k, s) for k in shots for s in seeds) if p.exists()]
    if taken and not args.force:
        raise UserError(f"{taken[0]} exists{f' (and {len(taken) - 1} more few-shot lists)' if len(taken) > 1 else ''}; "
                        f"pass --force to replace them, or --out in another folder")
    image_root = find_image_root(args.data_root)
    split = make_split(image_root, seed=args.seed)
    for path in write_split_with_fewshot(split, out, shots, seeds):
        log.info("wrote %s", path)
    log.info("%s: %s", out, ", ".join(f"{len(v)} {k}" for k, v in split.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
