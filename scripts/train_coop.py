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

from coop.model.block_mods import BLOCK_MODS  # noqa: E402
from coop.runs.cli_args import ArgumentParser, add_common_args, add_encoder_args  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402
from coop.model.prompt_learner import CLASS_TOKEN_POSITIONS  # noqa: E402
from coop.data.split import SAMPLINGS  # noqa: E402
from coop.methods.train import TrainConfig  # noqa: E402

log = logging.getLogger("train_coop")
D = TrainConfig()



def add_train_args(p: argparse.ArgumentParser) -> None:
    """CoOp's settings, shared with scripts/sweep.py."""
    p.add_argument("--n-ctx", type=int, default=D.n_ctx, help="context vectors M (default: %(default)s)")
    p.add_argument("--class-token-position", default=D.class_token_position,
                   help=f"one of {', '.join(CLASS_TOKEN_POSITIONS)} (default: %(default)s)")
    p.add_argument("--ctx-init", default=None, help='initialise the context from words, e.g. "a photo of a" with --n-ctx 4')
    p.add_argument("--csc", action="store_true", help="class-specific context")
    p.add_argument("--block-mod", default=None, help=f"text-block modification: {', '.join(BLOCK_MODS)}")
    p.add_argument("--epochs", type=int, default=None, help="default: CoOp's, 50 at 1 shot, 100 at 2-4, 200 at 8-16")
    p.add_argument("--lr", type=float, default=D.lr, help="(default: %(default)s)")
    p.add_argument("--momentum", type=float, default=D.momentum, help="(default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=D.weight_decay, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=D.batch_size, help="(default: %(default)s)")
    p.add_argument("--warmup-epochs", type=int, default=D.warmup_epochs, help="(default: %(default)s)")
    p.add_argument("--warmup-lr", type=float, default=D.warmup_lr, help="(default: %(default)s)")
    p.add_argument("--views", type=int, default=None, metavar="N",
                   help="APPROXIMATE mode: N cached crops per training image, cycled over the epochs (cheaper: "
                        "N instead of EPOCHS crops per image to encode). Default: a fresh crop of every image "
                        "in every epoch, as CoOp")
    p.add_argument("--crop-seed", type=int, default=None, help="seed of the training crops (default: the run's --seed)")
    p.add_argument("--independent-crops", action="store_true",
                   help="do not share crops with the runs of other shot counts of the same seed (costs more encoding)")
    p.add_argument("--sampling", default=D.sampling, choices=SAMPLINGS,
                   help="few-shot sets: nested across shots (default), or coop: CoOp/Dassl's random.sample per shot count")
    add_encoder_args(p)
    p.add_argument("--no-fast", dest="fast", action="store_false",
                   help="use the plain full-length text encoder (same results, much slower)")


def train_config(args: argparse.Namespace, shots: int, seed: int, **over) -> TrainConfig:
    keys = ("model", "data_root", "split_file", "n_ctx", "class_token_position", "ctx_init", "csc", "block_mod",
            "epochs", "lr", "momentum", "weight_decay", "batch_size", "warmup_epochs", "warmup_lr", "views",
            "crop_seed", "independent_crops", "sampling", "precision", "workers", "encode_batch_size",
            "fast", "device", "results", "cache_dir", "clip_dir")
    return TrainConfig(shots=shots, seed=seed, **{**{k: getattr(args, k) for k in keys}, **over})


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--shots", type=int, required=True, help="labelled training images per class")
    p.add_argument("--seed", type=int, default=1, help="(default: %(default)s)")
    add_common_args(p)
    add_train_args(p)
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from coop.utils.atomic import remove_stale_temp_files
    from coop.runs.preflight import check_run
    from coop.runs.results import write_result
    from coop.pipeline.sweep import already_done, result_path, single_run
    from coop.methods.train import run_coop

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
