"""Tip-Adapter and Tip-Adapter-F (Zhang et al., ECCV 2022) on precomputed CLIP features.

Source: gaopengcuhk/Tip-Adapter, ``main.py`` (``run_tip_adapter``, ``run_tip_adapter_F``),
``utils.py`` (``build_cache_model``, ``pre_load_features``, ``search_hp``, ``cls_acc``) and
``configs/caltech101.yaml``; re-implemented here, not copied. Every ``*_f``/``view_feats``
argument is a raw CLIP image-encoder output; the functions normalise as the source does:

* cache keys (``build_cache_model``): the raw features of each image are averaged over the
  augmented views and the mean is L2-normalised once. The views are *not* normalised before the
  average (the source does not). Values: one-hot labels.
* val/test features (``pre_load_features``) and Tip-Adapter-F's training features are normalised.
* ``text_w`` [C, D] is used as given: pass the normalised class text features (``clip_classifier``
  normalises them); the source's ``clip_weights`` is its transpose.
* logits: ``100 * f @ text_w.T + alpha * exp(-(beta - beta * f @ keys.T)) @ values``.
* ``search_hp``: beta_i = i * (scale_beta - 0.1) / step_beta + 0.1 for i < step_beta (same for
  alpha), beta in the outer loop, alpha inner, kept only when strictly better than the best so far
  (which starts at 0): the first grid point of the maximal accuracy wins.

Departures: everything is float32 on the inputs' device (the source runs fp16 on CUDA, with fp16
one-hot values). Tip-Adapter-F trains on precomputed views (epoch e uses view e % n_views) instead
of re-encoding fresh random crops, shuffled by a seeded generator. The source keeps the epoch of
the best *test* accuracy and reports max(best test, final test); here the keys after the last
epoch are kept and nothing looks at the test set before the final prediction. Top-1 uses argmax.
What the functions are given is the caller's choice: :mod:`coop.methods.baselines` passes the views
of the CoOp run's few-shot images, seeded by the image only (shared by every seed and shot count);
the full list, with these, is :data:`coop.methods.departures.BASELINE_DEPARTURES`.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .method import Method, Views

log = logging.getLogger(__name__)

# gaopengcuhk/Tip-Adapter configs/caltech101.yaml
SEARCH_SCALE: Tuple[float, float] = (12, 5)  # (beta, alpha) upper ends of the search grid
SEARCH_STEP: Tuple[int, int] = (200, 20)  # (beta, alpha) number of grid points
INIT_BETA = 1
INIT_ALPHA = 3
LR = 0.001
AUGMENT_EPOCH = 10  # augmented views per image averaged into the cache keys
TRAIN_EPOCH = 20
# gaopengcuhk/Tip-Adapter main.py (train_loader_F, AdamW) and utils.py (clip logits)
BATCH_SIZE = 256
ADAMW_EPS = 1e-4
CLIP_SCALE = 100.0


def _normalise(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def _float(x: Tensor, like: Optional[Tensor] = None) -> Tensor:
    return x.to(device=x.device if like is None else like.device, dtype=torch.float32)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent, as ``cls_acc`` computes it (100 * correct / n)."""
    correct = float((logits.argmax(dim=1) == labels.to(logits.device)).sum())
    return 100 * correct / labels.shape[0]


def cache_model(view_feats: Tensor, labels: Tensor, n_classes: int) -> Tuple[Tensor, Tensor]:
    """Cache keys [N, D] and values [N, C] from raw features ``view_feats`` [V, N, D] (or [N, D]).

    Keys: mean over the V views of the raw features, then L2-normalised (views not normalised
    first, as in ``build_cache_model``). Values: float32 one-hot of ``labels``.
    """
    feats = _float(view_feats)
    if feats.dim() == 2:
        feats = feats.unsqueeze(0)
    keys = _normalise(feats.mean(dim=0))
    values = F.one_hot(labels.to(feats.device).long(), n_classes).to(keys.dtype)
    return keys, values


def tip_logits(test_f: Tensor, text_w: Tensor, keys: Tensor, values: Tensor, alpha: float, beta: float,
               *, normalise: bool = True) -> Tensor:
    """``100 * f @ text_w.T + alpha * exp(-(beta - beta * f @ keys.T)) @ values``.

    ``test_f`` (raw features) is L2-normalised here unless ``normalise=False``; ``text_w``, ``keys``
    and ``values`` are used as given (fine-tuned keys are not renormalised, as in the source).
    """
    f = _normalise(test_f) if normalise else test_f
    clip_logits = CLIP_SCALE * f @ text_w.t()
    affinity = f @ keys.t()
    cache_logits = ((-1) * (beta - beta * affinity)).exp() @ values
    return clip_logits + cache_logits * alpha


def search_grid(search_scale: Sequence[float], search_step: Sequence[int]) -> Tuple[List[float], List[float]]:
    """The (beta list, alpha list) of ``search_hp``; the upper end itself is not included."""
    betas = [i * (search_scale[0] - 0.1) / search_step[0] + 0.1 for i in range(search_step[0])]
    alphas = [i * (search_scale[1] - 0.1) / search_step[1] + 0.1 for i in range(search_step[1])]
    return betas, alphas


def search_alpha_beta(val_f: Tensor, val_y: Tensor, text_w: Tensor, keys: Tensor, values: Tensor,
                      search_scale: Sequence[float] = SEARCH_SCALE,
                      search_step: Sequence[int] = SEARCH_STEP) -> Dict[str, float]:
    """``search_hp`` on raw validation features (normalised here): best (alpha, beta) on the grid.

    Ties keep the first grid point in (beta outer, alpha inner) order. As in the source, if no
    point beats 0% the result is alpha = beta = 0. Also returned, for the report: ``tied`` (how many grid
    points reach the best accuracy, of ``grid_points``: more than 1 and the choice is the grid's order, not
    the data; all of them and the validation set told no point from another) and
    ``edge`` (which of alpha, beta was chosen at an end of its grid: the search may have wanted a value beyond).
    """
    f = _normalise(_float(val_f))
    text_w, keys, values = _float(text_w, f), _float(keys.detach(), f), _float(values, f)
    y = val_y.to(f.device)
    clip_logits = CLIP_SCALE * f @ text_w.t()
    affinity = f @ keys.t()
    best_acc, best_beta, best_alpha, tied = 0.0, 0.0, 0.0, 0
    betas, alphas = search_grid(search_scale, search_step)
    a = torch.tensor(alphas, dtype=clip_logits.dtype, device=f.device)[:, None, None]
    with torch.no_grad():
        for beta in betas:  # the cache logits depend on beta only: computed once per beta
            cache_logits = ((-1) * (beta - beta * affinity)).exp() @ values
            # every alpha at once: the same element-wise products and sums as one alpha at a time
            right = ((clip_logits + cache_logits * a).argmax(dim=2) == y).sum(dim=1).tolist()
            for alpha, correct in zip(alphas, right):
                acc = 100 * float(correct) / y.shape[0]  # as accuracy() / cls_acc
                if acc > best_acc:
                    best_acc, best_beta, best_alpha, tied = acc, beta, alpha, 1
                elif acc == best_acc:
                    tied += 1
    log.info("Tip-Adapter search: beta=%.2f alpha=%.2f, val accuracy %.2f%%", best_beta, best_alpha, best_acc)
    edge = [n for n, v, grid in (("alpha", best_alpha, alphas), ("beta", best_beta, betas)) if tied and v in (grid[0], grid[-1])]
    return {"alpha": best_alpha, "beta": best_beta, "val_accuracy": best_acc, "tied": tied, "edge": edge,
            "grid_points": len(alphas) * len(betas)}


def _predict(test_f: Tensor, text_w: Tensor, keys: Tensor, values: Tensor, alpha: float, beta: float) -> Tensor:
    f = _float(test_f)
    with torch.no_grad():
        return tip_logits(f, _float(text_w, f), _float(keys, f), _float(values, f), alpha, beta).argmax(dim=1)


def run_tip_adapter(view_feats: Tensor, labels: Tensor, val_f: Tensor, val_y: Tensor, test_f: Tensor,
                    text_w: Tensor, *, search_scale: Sequence[float] = SEARCH_SCALE,
                    search_step: Sequence[int] = SEARCH_STEP) -> Dict[str, Any]:
    """Training-free Tip-Adapter: cache from ``view_feats`` [V, N, D], alpha/beta searched on val.

    Returns ``predictions`` (test, on the inputs' device), ``alpha``, ``beta``, ``val_accuracy``.
    """
    keys, values = cache_model(view_feats, labels, text_w.shape[0])
    found = search_alpha_beta(val_f, val_y, text_w, keys, values, search_scale, search_step)
    preds = _predict(test_f, text_w, keys, values, found["alpha"], found["beta"])
    return {"predictions": preds, **found}


def run_tip_adapter_f(view_feats: Tensor, labels: Tensor, val_f: Tensor, val_y: Tensor, test_f: Tensor,
                      text_w: Tensor, epochs: int = TRAIN_EPOCH, lr: float = LR, seed: int = 0, *,
                      train_feats: Optional[Tensor] = None, batch_size: int = BATCH_SIZE,
                      init_alpha: float = INIT_ALPHA, init_beta: float = INIT_BETA,
                      search_scale: Sequence[float] = SEARCH_SCALE,
                      search_step: Sequence[int] = SEARCH_STEP) -> Dict[str, Any]:
    """Tip-Adapter-F: fine-tune the cache keys, then search alpha/beta on val with them.

    The keys [N, D] (cache of ``view_feats``) are the weight of a bias-free linear layer trained
    with AdamW(lr, eps=1e-4) and a cosine schedule over ``epochs * n_batches`` steps, batches of
    ``batch_size`` shuffled by a generator seeded with ``seed``; loss: cross-entropy of the total
    logits with alpha/beta at ``init_alpha``/``init_beta``. Epoch e trains on the normalised view
    ``train_feats[e % n_views]`` (raw features [n_views, N, D]; default ``view_feats``).

    Returns ``predictions``, ``alpha``, ``beta``, ``val_accuracy``, ``losses`` (mean loss per
    epoch) and the fine-tuned ``keys``. With ``epochs=0`` this is Tip-Adapter.
    """
    cache_keys, values = cache_model(view_feats, labels, text_w.shape[0])
    dev = cache_keys.device
    train = _float(view_feats if train_feats is None else train_feats, cache_keys)
    if train.dim() == 2:
        train = train.unsqueeze(0)
    y = labels.to(dev).long()
    text = _float(text_w, cache_keys)
    n = y.shape[0]
    n_batches = math.ceil(n / batch_size)

    weight = torch.nn.Parameter(cache_keys.clone())
    losses: List[float] = []
    if epochs > 0:
        optimizer = torch.optim.AdamW([weight], lr=lr, eps=ADAMW_EPS)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * n_batches)
        generator = torch.Generator(device=dev)
        generator.manual_seed(seed)
        for epoch in range(epochs):
            feats = _normalise(train[epoch % train.shape[0]])
            order = torch.randperm(n, generator=generator, device=dev)
            batch_losses = []
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                logits = tip_logits(feats[idx], text, weight, values, init_alpha, init_beta, normalise=False)
                loss = F.cross_entropy(logits, y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                batch_losses.append(loss.item())
            losses.append(sum(batch_losses) / len(batch_losses))
            log.info("Tip-Adapter-F epoch %d/%d: loss %.4f, lr %.6f", epoch + 1, epochs, losses[-1],
                     scheduler.get_last_lr()[0])

    keys = weight.detach()
    found = search_alpha_beta(val_f, val_y, text, keys, values, search_scale, search_step)
    preds = _predict(test_f, text, keys, values, found["alpha"], found["beta"])
    return {"predictions": preds, **found, "losses": losses, "keys": keys}


def _args(data) -> tuple:
    views, labels = data.views()
    dev = data.device
    return (views.to(dev), labels.to(dev), data.val_x.to(dev), data.val_y.to(dev), data.test_x.to(dev),
            data.text_w.to(dev))


def _hyper(out: Dict[str, Any]) -> Dict[str, Any]:
    hyper = {k: out[k] for k in ("alpha", "beta", "val_accuracy", "tied", "edge", "grid_points")}
    if "losses" in out:
        hyper["train_loss"] = [round(float(x), 6) for x in out["losses"]]
    return hyper


def fit_tip(data, options: Dict[str, Any]) -> Dict[str, Any]:
    out = run_tip_adapter(*_args(data))
    return {"predictions": out["predictions"], "hyperparameters": _hyper(out)}


def fit_tip_f(data, options: Dict[str, Any]) -> Dict[str, Any]:
    out = run_tip_adapter_f(*_args(data), epochs=options["epochs"], seed=data.seed)
    return {"predictions": out["predictions"], "hyperparameters": _hyper(out)}


# Tip-Adapter's train transform: RandomResizedCrop(224, scale=(0.5, 1), bicubic) + flip; its views depend on
# the image only, so runs that share an image share them (Tip-Adapter and -F alike)
VIEWS = Views("tip-adapter", (0.5, 1.0))
TIP = Method(
    key="tip", name="Tip-Adapter", name_zh="Tip-Adapter", folder="tip_adapter", fit=fit_tip,
    options={"views": AUGMENT_EPOCH, "search": "fewshot"}, demo={"views": 4}, views=VIEWS, group="tip",
    style=("tab:green", ":", "^"), source="gaopengcuhk/Tip-Adapter main.py run_tip_adapter")
TIP_F = Method(
    key="tip_f", name="Tip-Adapter-F", name_zh="Tip-Adapter-F", folder="tip_adapter_f", fit=fit_tip_f,
    options={"views": AUGMENT_EPOCH, "epochs": TRAIN_EPOCH, "search": "fewshot"}, demo={"views": 4}, views=VIEWS,
    group="tip", style=("tab:red", "-.", "D"), source="gaopengcuhk/Tip-Adapter main.py run_tip_adapter_F")
