"""CoOp's settings as command-line flags, beside their config: ``train_coop.py`` and ``run_all.py`` share them.

Every field of :class:`coop.methods.train_config.TrainConfig` that a user sets has a flag of the same name
(``n_ctx`` is ``--n-ctx``); :func:`train_config` reads them by the config's own field list, so a new
field without a flag is an error here, not a setting silently left at its default.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from ..data.split import SAMPLINGS
from ..model.block_mods import BLOCK_MODS
from ..model.prompt_learner import CLASS_TOKEN_POSITIONS
from ..runs.cli_args import add_encoder_args
from .train_config import TrainConfig

D = TrainConfig()
NOT_FLAGS = ("shots", "seed", "demo", "variant")  # each script takes shots and seeds its own way; demo and variant are run_all's


def add_train_args(p: argparse.ArgumentParser) -> None:
    """CoOp's settings (defaults: CoOp's recipe), shared by scripts/train_coop.py and scripts/run_all.py."""
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


def train_config(args: argparse.Namespace, shots: int, seed: int, **over: Any) -> TrainConfig:
    """The config of one CoOp run from the parsed flags (every field but shots, seed and demo is a flag)."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in NOT_FLAGS}
    return TrainConfig(shots=shots, seed=seed, **{**values, **over})
