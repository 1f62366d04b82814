"""CLIP-Adapter (Gao et al., arXiv 2110.04544) on cached CLIP features, trained as CLAP's repository does.

Sources, re-implemented here (not copied):

* gaopengcuhk/CLIP-Adapter (commit 08d07f8b2ecafc6f1479fe636b26d464d7a5574e), ``clip_adapter.py``:
  ``Adapter(c_in=1024, reduction=4)`` = Linear(1024, 256, bias=False), ReLU, Linear(256, 1024,
  bias=False), ReLU; ``CustomCLIP.forward`` with ``ratio = 0.2``.
* jusiro/CLAP (commit dbdf4095b3d824546474c725539b9f4efff3ca0e), ``trainers/adapters.py``:
  ``AdapterMethod.init_clipA`` (the same MLP, ratio 0.2, the text prototypes frozen, and the grid
  ``{"lr": [1e-1, 1e-2, 1e-3], "ratio": np.arange(0.2, 1, 0.2)}``), ``CustomCLIP.forward_clipadapter``
  and the training recipe of :mod:`coop.methods.adapter_recipe`.

Forward, on RAW image features f [B, D] (the MLP sees them unnormalised)::

    x  = relu(relu(f @ W1.T) @ W2.T)              # W1 [D/4, D], W2 [D, D/4]
    f' = ratio * x + (1 - ratio) * f              # the residual ratio mixes the adapted and raw features
    logits = logit_scale * normalise(f') @ normalise(text_w).T

Initialisation: ``nn.Linear``'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_ with
a = sqrt(5)), drawn from the run's seeded generator (W1 first). adapters.py moves the new MLP to CLIP's
dtype (fp16 under its default ``PREC``) before the trainer's ``.float()``, so its initial weights are
fp16-rounded; so are ours (``fp16_init``; CLIP-Adapter's own file keeps them fp32).

Protocols: ``"fewshot-validation"`` (default): the 12-point grid of adapters.py, each point trained
with the recipe, chosen by the caller's validation accuracy after the last epoch (adapters.py chose
by the best test accuracy over all steps: see adapter_recipe's departures); ``"fixed"`` (``grid=None``):
ratio 0.2, lr 0.1, as ``experiment_baselines.txt`` runs ``ClipA`` (no search).
Departures: those of the recipe; fp32 on the inputs' device; the text prototypes are the caller's
``text_w`` (adapters.py: CLIP's raw fp16 text features of "a photo of a {}."; normalised in the
forward, so their norm does not change CLIP-Adapter).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from . import adapter_recipe as recipe
from . import adapter_methods as wired
from .method import Method

log = logging.getLogger(__name__)

RATIO = 0.2  # gaopengcuhk/CLIP-Adapter clip_adapter.py CustomCLIP.forward; adapters.py init_clipA(ratio=0.2)
REDUCTION = 4  # Adapter(c_in, reduction=4): 1024 -> 256 -> 1024
LR = recipe.LR
# adapters.py init_clipA: grid_search_param (np.arange values kept as they are: 0.6000000000000001)
GRID: Dict[str, Tuple[float, ...]] = {"lr": (1e-1, 1e-2, 1e-3),
                                      "ratio": tuple(float(r) for r in np.arange(0.2, 1, 0.2))}
FP16_INIT = True


def init_adapter(dim: int, generator: torch.Generator, *, reduction: int = REDUCTION,
                 fp16_init: bool = FP16_INIT) -> Tuple[Tensor, Tensor]:
    """(W1 [dim // reduction, dim], W2 [dim, dim // reduction]) as ``nn.Linear(bias=False)`` initialises them."""
    hidden = dim // reduction
    weights = []
    for fan_out, fan_in in ((hidden, dim), (dim, hidden)):
        w = torch.empty(fan_out, fan_in)
        torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
        weights.append(w.half().float() if fp16_init else w)
    return weights[0], weights[1]


def clip_adapter_logits(features: Tensor, w1: Tensor, w2: Tensor, text_w: Tensor, ratio: float = RATIO,
                        logit_scale: float = recipe.LOGIT_SCALE) -> Tensor:
    """Logits [B, C] of raw image features [B, D] (see the module docstring)."""
    x = torch.relu(torch.relu(features @ w1.t()) @ w2.t())
    mixed = ratio * x + (1 - ratio) * features
    return recipe.cosine_logits(mixed, text_w, logit_scale)


def train_clip_adapter(pool_x: Tensor, pool_y: Tensor, text_w: Tensor, w1: Tensor, w2: Tensor, *, n_images: int,
                       ratio: float = RATIO, lr: float = LR, epochs: int = recipe.EPOCHS,
                       generator: torch.Generator, batch_size: int = recipe.BATCH_SIZE,
                       logit_scale: float = recipe.LOGIT_SCALE) -> Tuple[Tensor, Tensor, List[float]]:
    """Train copies of (W1, W2) on the pooled features with the recipe; returns (W1, W2, epoch losses)."""
    p1 = w1.detach().clone().to(pool_x.device).requires_grad_(True)
    p2 = w2.detach().clone().to(pool_x.device).requires_grad_(True)
    text = text_w.to(pool_x)
    losses = recipe.train([p1, p2], lambda f: clip_adapter_logits(f, p1, p2, text, ratio, logit_scale),
                          pool_x, pool_y, n_images=n_images, epochs=epochs, lr=lr, generator=generator,
                          batch_size=batch_size)
    return p1.detach(), p2.detach(), losses


def run_clip_adapter(train_views: Tensor, train_labels: Tensor, val_x: Optional[Tensor], val_y: Optional[Tensor],
                     test_x: Tensor, text_w: Tensor, *, seed: int, epochs: int = recipe.EPOCHS,
                     grid: Optional[Mapping[str, Sequence[float]]] = GRID, ratio: float = RATIO, lr: float = LR,
                     logit_scale: float = recipe.LOGIT_SCALE, batch_size: int = recipe.BATCH_SIZE,
                     fp16_init: bool = FP16_INIT) -> Dict[str, Any]:
    """CLIP-Adapter on raw view features ``train_views`` [V, N, D] and labels [N]; test ``test_x`` [M, D].

    With ``grid`` (default :data:`GRID`) the points are searched on (``val_x``, ``val_y``); with
    ``grid=None`` the fixed ``ratio``/``lr`` are trained. Each point starts from a generator seeded with
    ``seed`` (same initial MLP and batch order for every point).

    Returns ``predictions`` (test, LongTensor on the inputs' device), ``val_accuracy`` (%), ``ratio``,
    ``lr``, ``epochs``, ``protocol``, ``searched`` ([{lr, ratio, val_accuracy}], empty when fixed) and
    ``train_loss`` (mean loss per epoch of the chosen point).
    """
    recipe.check_inputs(train_views, text_w, epochs)
    pool_x, pool_y = recipe.feature_pool(train_views, train_labels)
    text = text_w.to(pool_x)
    n_images = train_views.shape[-2]

    def fit(point: Dict[str, float]) -> Tuple[Callable[[Tensor], Tensor], List[float]]:
        g = recipe.seeded(seed)
        w1, w2 = init_adapter(pool_x.shape[1], g, fp16_init=fp16_init)
        w1, w2, losses = train_clip_adapter(pool_x, pool_y, text, w1, w2, n_images=n_images, ratio=point["ratio"],
                                            lr=point["lr"], epochs=epochs, generator=g, batch_size=batch_size,
                                            logit_scale=logit_scale)
        return (lambda f: clip_adapter_logits(f.to(pool_x), w1, w2, text, point["ratio"], logit_scale)), losses

    point, fn, losses, searched, protocol = recipe.search_or_fixed(
        fit, grid, {"lr": float(lr), "ratio": float(ratio)}, val_x, val_y, pool_x)
    out = recipe.result(fn, val_x, val_y, test_x, **point, epochs=epochs, protocol=protocol, searched=searched,
                        train_loss=losses)
    log.info("CLIP-Adapter (%s): ratio %.2f, lr %g, val accuracy %s", protocol, point["ratio"], point["lr"],
             "-" if out["val_accuracy"] is None else f"{out['val_accuracy']:.2f}%")
    return out


def fit(data, options: Dict[str, Any]) -> Dict[str, Any]:
    return wired.fit_method(run_clip_adapter, data, options, validation=True, hyper=("lr", "ratio", "protocol"))


METHOD = Method(
    key="clip_adapter", name="CLIP-Adapter", name_zh="CLIP-Adapter", folder="clip_adapter", fit=fit,
    options={"views": recipe.N_VIEWS, "epochs": recipe.EPOCHS, "grid": {k: list(v) for k, v in GRID.items()}},
    demo={**wired.DEMO, "grid": {"lr": [LR], "ratio": [0.2, 0.6]}}, views=wired.VIEWS, group="adapters",
    style=("tab:orange", ":", "o"), source="jusiro/CLAP trainers/adapters.py (init_clipA); gaopengcuhk/CLIP-Adapter",
    departures=wired.departures("adapters_views_coop_crops", "adapters_shuffle_torch", "adapters_fp32",
                                 "adapters_grid_on_val"))
