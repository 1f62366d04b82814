#!/usr/bin/env python
"""Train CoOp (M learnable context vectors, class token at the end) at K shots for one seed.

CoOp's hyper-parameters are the defaults; every one can be changed by a flag.

    python scripts/train_coop.py --shots 1 --seed 1        # results/coop/shots1_seed1.json (+ .pt)
    python scripts/train_coop.py --shots 4 --seed 2 --block-mod adapter
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.methods.train_flags import add_train_args, train_config  # noqa: E402
from coop.runs.cli_args import ArgumentParser, add_common_args  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402

log = logging.getLogger("train_coop")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--shots", type=int, required=True, help="labelled training images per class")
    p.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    add_common_args(p)
    add_train_args(p)
    return p.parse_args(argv)


ACTS_ON = ("force", "verbose")  # every other flag must change the run (coop.runs.flags)


def runs_of(args: argparse.Namespace) -> list:
    return [train_config(args, args.shots, args.seed)]


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from coop.utils.atomic import remove_stale_temp_files
    from coop.runs.preflight import check_run
    from coop.runs.results import write_result
    from coop.pipeline.sweep import already_done, result_path, single_run
    from coop.methods.train import run_coop

    from coop.runs.flags import refuse_ignored

    refuse_ignored(args, runs_of, ACTS_ON, what="a CoOp run")
    cfg = train_config(args, args.shots, args.seed)
    check_run(cfg)
    remove_stale_temp_files(args.results)
    with single_run(cfg):
        if already_done(cfg, force=args.force):
            log.info("%s is already done (pass --force to redo it)", result_path(cfg))
            return 0
        from coop.utils.progress import run_log

        with run_log(result_path(cfg).with_suffix(".log")) as log_file:
            write_result(result_path(cfg), run_coop(cfg))
    log.info("log: %s", log_file)
    return 0

if __name__ == "__main__":
    sys.exit(main())
