"""TaskRes, Task Residual tuning (Yu et al., CVPR 2023), on cached CLIP features, as CLAP's repository trains it.

Source: jusiro/CLAP (commit dbdf4095b3d824546474c725539b9f4efff3ca0e), ``trainers/adapters.py``
(itself built on geekyutao/TaskRes): ``AdapterMethod.init_TR`` (the residual, a [C, D] parameter
initialised at zero; alpha 0.5; grid ``{"lr": [1e-1, 1e-2, 1e-3], "alpha": np.arange(0.2, 1.2, 0.2)}``),
``CustomCLIP.forward_task_residual`` and the training recipe of :mod:`coop.methods.adapter_recipe`.
Re-implemented here, not copied. Forward, on raw image features f [B, D]::

    prototypes = text_w + alpha * residual        # text_w [C, D] frozen, residual [C, D] learned
    logits = logit_scale * normalise(f) @ normalise(prototypes).T

With the residual at zero the first logits are zero-shot CLIP's. The residual is added BEFORE
normalising, so the size of ``text_w`` matters: adapters.py adds it to CLIP's raw text features (the
mean over the prompt templates of ``encode_text`` outputs, one template "a photo of a {}." for
Caltech101, computed in fp16), not to normalised ones. Pass those raw features to train as the source
does; with normalised ``text_w`` the same alpha moves the prototypes further (a departure).

Protocols: ``"fewshot-validation"`` (default): the 15-point grid (sklearn's ParameterGrid order:
alpha outer, lr inner), chosen on the caller's validation set after the last epoch (adapters.py
chose by the best test accuracy over all steps); ``"fixed"`` (``grid=None``): alpha 0.5, lr 0.1, as
``experiment_baselines.txt`` runs ``TR``. Departures: those of the recipe; fp32 on the inputs' device;
TaskRes's "enhanced base" (``TRenh``, a pre-trained text projection) is not available here.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from . import adapter_recipe as recipe
from . import adapter_methods as wired
from .method import Method

log = logging.getLogger(__name__)

ALPHA = 0.5  # adapters.py init_TR(alpha=0.5) (TaskRes's residual scale)
LR = recipe.LR
GRID: Dict[str, Tuple[float, ...]] = {"lr": (1e-1, 1e-2, 1e-3),
                                      "alpha": tuple(float(a) for a in np.arange(0.2, 1.2, 0.2))}


def taskres_logits(features: Tensor, residual: Tensor, text_w: Tensor, alpha: float = ALPHA,
                   logit_scale: float = recipe.LOGIT_SCALE) -> Tensor:
    """Logits [B, C] of raw image features [B, D] with prototypes ``text_w + alpha * residual``."""
    return recipe.cosine_logits(features, text_w + alpha * residual, logit_scale)


def train_taskres(pool_x: Tensor, pool_y: Tensor, text_w: Tensor, residual: Optional[Tensor] = None, *,
                  n_images: int, alpha: float = ALPHA, lr: float = LR, epochs: int = recipe.EPOCHS,
                  generator: torch.Generator, batch_size: int = recipe.BATCH_SIZE,
                  logit_scale: float = recipe.LOGIT_SCALE) -> Tuple[Tensor, List[float]]:
    """Train the residual (default: zeros, as ``init_TR``) with the recipe; returns (residual, epoch losses)."""
    text = text_w.to(pool_x)
    start = torch.zeros_like(text) if residual is None else residual.to(pool_x)
    res = start.detach().clone().requires_grad_(True)
    losses = recipe.train([res], lambda f: taskres_logits(f, res, text, alpha, logit_scale), pool_x, pool_y,
                          n_images=n_images, epochs=epochs, lr=lr, generator=generator, batch_size=batch_size)
    return res.detach(), losses


def run_taskres(train_views: Tensor, train_labels: Tensor, val_x: Optional[Tensor], val_y: Optional[Tensor],
                test_x: Tensor, text_w: Tensor, *, seed: int, epochs: int = recipe.EPOCHS,
                grid: Optional[Mapping[str, Sequence[float]]] = GRID, alpha: float = ALPHA, lr: float = LR,
                logit_scale: float = recipe.LOGIT_SCALE, batch_size: int = recipe.BATCH_SIZE) -> Dict[str, Any]:
    """TaskRes on raw view features ``train_views`` [V, N, D] and labels [N]; test ``test_x`` [M, D].

    With ``grid`` (default :data:`GRID`) the points are searched on (``val_x``, ``val_y``); with
    ``grid=None`` the fixed ``alpha``/``lr`` are trained. Every point shuffles with a generator seeded
    with ``seed``.

    Returns ``predictions`` (test, LongTensor on the inputs' device), ``val_accuracy`` (%), ``alpha``,
    ``lr``, ``epochs``, ``protocol``, ``searched`` ([{alpha, lr, val_accuracy}], empty when fixed) and
    ``train_loss`` (mean loss per epoch of the chosen point).
    """
    recipe.check_inputs(train_views, text_w, epochs)
    pool_x, pool_y = recipe.feature_pool(train_views, train_labels)
    text = text_w.to(pool_x)
    n_images = train_views.shape[-2]

    def fit(point: Dict[str, float]) -> Tuple[Callable[[Tensor], Tensor], List[float]]:
        res, losses = train_taskres(pool_x, pool_y, text, n_images=n_images, alpha=point["alpha"], lr=point["lr"],
                                    epochs=epochs, generator=recipe.seeded(seed), batch_size=batch_size,
                                    logit_scale=logit_scale)
        return (lambda f: taskres_logits(f.to(pool_x), res, text, point["alpha"], logit_scale)), losses

    point, fn, losses, searched, protocol = recipe.search_or_fixed(
        fit, grid, {"alpha": float(alpha), "lr": float(lr)}, val_x, val_y, pool_x)
    out = recipe.result(fn, val_x, val_y, test_x, **point, epochs=epochs, protocol=protocol, searched=searched,
                        train_loss=losses)
    log.info("TaskRes (%s): alpha %.2f, lr %g, val accuracy %s", protocol, point["alpha"], point["lr"],
             "-" if out["val_accuracy"] is None else f"{out['val_accuracy']:.2f}%")
    return out


def fit(data, options: Dict[str, Any]) -> Dict[str, Any]:
    return wired.fit_method(run_taskres, data, options, validation=True, hyper=("lr", "alpha", "protocol"))


METHOD = Method(
    key="taskres", name="TaskRes", name_zh="TaskRes", folder="taskres", fit=fit,
    options={"views": recipe.N_VIEWS, "epochs": recipe.EPOCHS, "grid": {k: list(v) for k, v in GRID.items()}},
    demo={**wired.DEMO, "grid": {"lr": [LR], "alpha": [0.2, 1.0]}}, views=wired.VIEWS, group="adapters",
    style=("tab:brown", "--", "h"), source="jusiro/CLAP trainers/adapters.py (init_TR)",
    departures=wired.departures("adapters_views_coop_crops", "adapters_shuffle_torch", "adapters_fp32",
                                 "adapters_grid_on_val"))
