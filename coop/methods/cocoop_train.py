"""Training CoCoOp on cached image features, and the two recipes of the base-to-new protocol.

CoCoOp's recipe (CoOp repository, ``configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml``,
run by ``scripts/cocoop/base2new_train.sh`` with 16 shots on the base classes): batch size 1,
10 epochs, SGD lr 0.002 (Dassl's momentum 0.9 and weight decay 5e-4 on every trainable tensor,
meta-net biases included), one warm-up epoch at a constant 1e-5, then cosine with T_max = 10;
M = 4 context vectors initialised from "a photo of a"; random resized crop + flip. The model of the
last epoch is tested (``--load-epoch 10``; Dassl's ``TEST.FINAL_MODEL`` is ``last_step``).

CoOp in the same protocol (``configs/trainers/CoOp/vit_b16_ctxv1.yaml``, the ``CFG`` that
``base2new_train.sh`` names for ``TRAINER=CoOp``): batch 32, 200 epochs, the same optimiser and
schedule, ``CTX_INIT`` "a photo of a" (so M = 4 although ``N_CTX`` keeps train.py's default 16),
class token at the end, one shared context.

Both official configs train in fp16 (CoCoOp's ``PREC: "fp16"``; CoOp's default ``PREC``); our
default is fp32 (``precision``), and our backbone is RN50 rather than ViT-B/16.

The training loop is CoOp's (:func:`coop.methods.train.fit`): with batch 1 no batch is dropped,
every few-shot image is one step (Caltech101's base half, 16 shots: 800 steps an epoch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from ..model.cocoop import CoCoOp
from ..model.prompt_learner import underscores_as_spaces
from ..runs.experiment import TrainSet
from ..utils.errors import UserError
from . import train as coop_train
from .train_config import TrainConfig

COCOOP_EPOCHS = 10
BASE2NEW_SHOTS = 16  # base2new_train.sh: SHOTS=16
COOP_BASE2NEW_EPOCHS = 200  # vit_b16_ctxv1.yaml: MAX_EPOCH 200
EVAL_BATCH = 100  # both configs: DATALOADER.TEST.BATCH_SIZE 100


@dataclass
class CoCoOpConfig(TrainConfig):
    """A CoCoOp run's settings: :class:`TrainConfig` with CoCoOp's defaults and ``method`` recorded
    (so a CoCoOp run's identity never equals a CoOp run's)."""

    shots: int = BASE2NEW_SHOTS
    n_ctx: int = 4
    ctx_init: Optional[str] = "a photo of a"
    epochs: Optional[int] = COCOOP_EPOCHS
    batch_size: int = 1
    method: str = "cocoop"

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = COCOOP_EPOCHS

    def check(self) -> None:
        super().check()
        if self.method != "cocoop":
            raise UserError(f"a CoCoOpConfig is for method 'cocoop', got {self.method!r}")
        if self.csc or self.block_mod is not None or self.class_token_position != "end":
            raise UserError("CoCoOp has one shared context before the class name: drop --csc, --block-mod "
                            "and --class-token-position (CoCoOp's code has none of them)")

    def settings(self) -> Dict:
        out = {k: v for k, v in self.identity().items() if k not in ("shots", "seed")}
        if self.epochs == COCOOP_EPOCHS:
            out["epochs"] = "CoCoOp's"
        return out


def cocoop_config(**overrides) -> CoCoOpConfig:
    """CoCoOp's base-to-new recipe (16 shots, batch 1, 10 epochs, M = 4 from "a photo of a"), with overrides."""
    return CoCoOpConfig(**overrides)


def coop_base2new_config(**overrides) -> TrainConfig:
    """CoOp's recipe in the base-to-new protocol (vit_b16_ctxv1.yaml): 16 shots, batch 32, 200 epochs,
    M = 4 from "a photo of a", class token at the end; with overrides."""
    base = dict(shots=BASE2NEW_SHOTS, n_ctx=4, ctx_init="a photo of a", epochs=COOP_BASE2NEW_EPOCHS, batch_size=32)
    return TrainConfig(**{**base, **overrides})


def build(clip_model, classnames, cfg: CoCoOpConfig, prompt_name=underscores_as_spaces) -> CoCoOp:
    """The CoCoOp a run of ``cfg`` trains (seed first: the context and meta-net init follow the seed);
    ``prompt_name``: the data set's words for a class name (``exp.dataset.prompt_name``)."""
    return CoCoOp(clip_model, classnames, n_ctx=cfg.n_ctx, ctx_init=cfg.ctx_init, fast=cfg.fast,
                  prompt_name=prompt_name)


def fit(model: CoCoOp, train: TrainSet, cfg: CoCoOpConfig, progress: bool = True) -> Dict[str, List[float]]:
    """Train ``model`` in place on cached crop features (``train.features`` [U, N, D], epoch ``e``
    seeing crop ``train.crop_of_epoch[e]``); returns the per-epoch history (epoch, loss, train_acc, lr).

    CoOp's loop exactly (:func:`coop.methods.train.fit`: shuffled batches from torch's global
    generator, the warm-up + cosine LR of :func:`coop.methods.train.lr_at_epoch`, divergence checks);
    call :func:`coop.utils.seed.set_seed` before :func:`build` for a reproducible run.
    """
    if not isinstance(model, CoCoOp):
        raise TypeError(f"fit trains a CoCoOp, got {type(model).__name__}")
    if train.labels.numel() and int(train.labels.max()) >= model.n_cls:
        raise UserError(f"the training labels go up to {int(train.labels.max())} but the model has {model.n_cls} "
                        f"classes; relabel the training set to its half (coop.data.base2new.subsample)")
    return coop_train.fit(model, train, cfg, progress)


@torch.no_grad()
def predict(model: CoCoOp, features: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits [N, n_cls] of raw image features [N, D], in batches (every image has its own prompts,
    so a whole test split at once would hold N x n_cls prompts' activations)."""
    model.eval()
    device = model.ctx.device
    return torch.cat([model(features[i: i + batch_size].to(device)).cpu()
                      for i in range(0, len(features), batch_size)])
