#!/usr/bin/env python
"""Make the project's Caltech101 split (CoOp's JSON format) and its few-shot lists, or a split of your own images.

    python scripts/make_split.py --data-root data/caltech-101 --out splits/caltech101.json
    python scripts/make_split.py --dataset my_images.json     # the split that file names, from its images
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser, parse_int_list  # noqa: E402
from coop.data.dataset import load_dataset  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import SPLIT  # noqa: E402
from coop.data.split import fewshot_file, make_split, write_split_with_fewshot  # noqa: E402

log = logging.getLogger("make_split")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--dataset", default="caltech101",
                   help="caltech101 (default) or a dataset JSON file (docs/running.md#your-own-images)")
    p.add_argument("--data-root", default=None,
                   help="the dataset's image folder or a folder above it (default: the dataset JSON's images; "
                        "required for caltech101)")
    p.add_output("--out", kind="split", default=None,
                 help=f"split file to write (default: the dataset's; caltech101: {SPLIT})")
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
    dataset = load_dataset(args.dataset)
    if args.data_root is None and dataset.source == "registered":
        raise UserError(f"--data-root is required for {dataset.name}: the folder holding {dataset.image_dir} "
                        f"(e.g. --data-root data/caltech-101)")
    out = Path(args.out or dataset.split)
    if args.out is None:  # the dataset's own split: the same guard as a typed --out (the committed one needs --force)
        from coop.runs.outputs import claim

        claim(out, "split", args.force, "--out")
    taken = [p for p in (fewshot_file(out, k, s) for k in shots for s in seeds) if p.exists()]
    if taken and not args.force:
        raise UserError(f"{taken[0]} exists{f' (and {len(taken) - 1} more few-shot lists)' if len(taken) > 1 else ''}; "
                        f"pass --force to replace them, or --out in another folder")
    image_root = dataset.find_image_root(args.data_root or dataset.images)
    split = make_split(image_root, seed=args.seed, dataset=dataset)
    for path in write_split_with_fewshot(split, out, shots, seeds):
        log.info("wrote %s", path)
    log.info("%s: %s", out, ", ".join(f"{len(v)} {k}" for k, v in split.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
