"""The training recipe that CLAP's repository gives every adapter it trains on cached CLIP features.

Source: jusiro/CLAP (commit dbdf4095b3d824546474c725539b9f4efff3ca0e), ``trainers/adapters.py``
(``TrainerXCostume.run_epoch``, ``ADAPTER.forward_backward``, ``ADAPTER.train``, ``extract_features``,
``ADAPTER.reset_hyperparams``), ``configs/trainers/SGD_lr1e-1_B256_ep300.yaml``, and the Dassl defaults
that config inherits (KaiyangZhou/Dassl.pytorch c61a1b5: ``dassl/config/defaults.py``,
``dassl/optim/optimizer.py`` ``build_optimizer``, ``dassl/optim/lr_scheduler.py``
``build_lr_scheduler`` / ``ConstantWarmupScheduler``, ``dassl/data/data_manager.py``
``build_data_loader``). Re-implemented here from those facts, not copied:

* optimiser: ``torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.0, dampening=0, nesterov=False)``
  (config: LR 0.1, WEIGHT_DECAY 0.0; Dassl defaults: MOMENTUM 0.9, SGD_DAMPNING 0, SGD_NESTEROV False);
* schedule, stepped once per epoch after its last batch: epoch 0 at the constant warm-up lr 1e-5
  (WARMUP_EPOCH 1, WARMUP_TYPE constant, WARMUP_CONS_LR 1e-5), then ``CosineAnnealingLR(T_max=300.0)``
  recounted from 0 (Dassl's WARMUP_RECOUNT True): epoch e >= 1 runs at the cosine's step e - 1, so
  epoch 1 at 0.1 and the last epoch (299) at 0.1 * (1 + cos(pi * 298 / 300)) / 2, never 0;
* data: the features of 20 augmented views of each of the N few-shot images (``epochs_aumentation``;
  ``extract_features(reps=20, transforms=True)``) are pooled into one set of 20 * N features. Each
  epoch shuffles the whole pool and takes ``len(train_loader_x)`` batches of 256 from its start:
  Dassl's train loader has ``drop_last = N >= 256``, so that is floor(N / 256) batches when N >= 256,
  else one batch. At 1, 2 and 4 shots of 100 classes (N = 100 to 400) an epoch is ONE step on 256 of
  the pooled features: 300 steps in all. Loss: cross-entropy (plus CLAP's penalty); fp32
  (``TRAINER.ADAPTER.PREC`` fp16 only sets CLIP's dtype; the adapter is trained after ``.float()``);
  the last epoch's parameters are the result (``after_train`` keeps them);
* a non-finite loss stops training (Dassl's ``detect_anomaly``: FloatingPointError).

Departures: the pool is shuffled with ``torch.randperm`` and a seeded CPU ``torch.Generator``, not
``np.random.rand(n).argsort()``; the pool is view-major (view v of image i at v * N + i; the source's
order is the train loader's random one per pass, which the shuffle makes irrelevant). The grid search
(:func:`grid_search`) picks on the caller's validation set with the last epoch's parameters, where
``ADAPTER.train`` keeps the best *test* accuracy seen at any step of any grid point; every grid point
starts from the same seeded generator (the source's global RNG runs on across points), and the first
point is kept when every point scores 0% (the source would have no setting).
"""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

# configs/trainers/SGD_lr1e-1_B256_ep300.yaml
LR = 0.1
BATCH_SIZE = 256
EPOCHS = 300
WEIGHT_DECAY = 0.0
WARMUP_EPOCHS = 1
WARMUP_LR = 1e-5  # WARMUP_TYPE "constant", WARMUP_CONS_LR
# Dassl defaults the config does not override (dassl/config/defaults.py)
MOMENTUM = 0.9
DAMPENING = 0.0
NESTEROV = False
# trainers/adapters.py AdapterMethod.__init__: epochs_aumentation (augmented passes over the few-shot set)
N_VIEWS = 20
# CLIP's logit_scale.exp(); adapters.py uses the loaded model's value (100 for the released CLIP weights,
# up to the rounding of the stored parameter): callers pass model.logit_scale.exp().item()
LOGIT_SCALE = 100.0


def normalise(x: Tensor) -> Tensor:
    """``x / x.norm(dim=-1, keepdim=True)``, as every forward of adapters.py divides."""
    return x / x.norm(dim=-1, keepdim=True)


def cosine_logits(features: Tensor, prototypes: Tensor, logit_scale: float = LOGIT_SCALE) -> Tensor:
    """``logit_scale * normalise(features) @ normalise(prototypes).T``: [B, D] x [C, D] -> [B, C]."""
    return normalise(features) @ normalise(prototypes).t() * logit_scale


def batches_per_epoch(n_images: int, batch_size: int = BATCH_SIZE) -> int:
    """``len(train_loader_x)`` for N few-shot images: Dassl drops the last batch only when N >= batch."""
    if n_images < 1:
        raise ValueError("no training images")
    return n_images // batch_size if n_images >= batch_size else 1


def feature_pool(train_views: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """[V, N, D] raw view features + [N] labels -> the fp32 pool [V * N, D] and its labels [V * N]."""
    views = train_views.to(torch.float32)
    if views.dim() == 2:
        views = views.unsqueeze(0)
    v, n, d = views.shape
    y = labels.to(views.device).long()
    if y.shape != (n,):
        raise ValueError(f"{n} images in the views but {tuple(y.shape)} labels")
    return views.reshape(v * n, d), y.repeat(v)  # view-major: row v * N + i is view v of image i


def sgd(params: Iterable[Tensor], lr: float = LR) -> torch.optim.SGD:
    """Dassl's ``build_optimizer`` for OPTIM.NAME "sgd" with the recipe's settings."""
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                           dampening=DAMPENING, nesterov=NESTEROV)


class WarmupCosine:
    """Constant warm-up for ``warmup_epochs`` epochs, then PyTorch's cosine counted from 0 (see the
    module docstring). ``step()`` once at the end of every epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int, warmup_epochs: int = WARMUP_EPOCHS,
                 warmup_lr: float = WARMUP_LR):
        self.optimizer, self.warmup_epochs, self.warmup_lr = optimizer, warmup_epochs, warmup_lr
        self.cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(epochs))
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.epoch = 0
        if warmup_epochs > 0:
            self._set([warmup_lr] * len(self.base_lrs))

    def _set(self, lrs: Sequence[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def step(self) -> None:
        self.epoch += 1
        if self.epoch == self.warmup_epochs:
            self._set(self.base_lrs)  # the cosine's own first value (its step 0)
        elif self.epoch > self.warmup_epochs:
            self.cosine.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def train(params: Sequence[Tensor], logits_fn: Callable[[Tensor], Tensor], pool_x: Tensor, pool_y: Tensor, *,
          n_images: int, epochs: int, lr: float, generator: torch.Generator, batch_size: int = BATCH_SIZE,
          penalty: Optional[Callable[[], Tensor]] = None,
          after_epoch: Optional[Callable[[int], None]] = None) -> List[float]:
    """Train ``params`` in place with the recipe; returns the mean loss of each epoch.

    ``logits_fn`` maps a batch of pooled features [B, D] to logits [B, C]; ``penalty()`` (CLAP's
    constraint) is added to the cross-entropy of every batch; ``after_epoch(epoch)`` runs after the
    epoch's lr step (where ``ADAPTER.train`` calls CLAP's outer step). ``generator`` (CPU) shuffles.
    """
    params = list(params)
    optimizer = sgd(params, lr)
    schedule = WarmupCosine(optimizer, epochs)
    n_batches = batches_per_epoch(n_images, batch_size)
    losses: List[float] = []
    for epoch in range(epochs):
        order = torch.randperm(pool_x.shape[0], generator=generator).to(pool_x.device)
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss = F.cross_entropy(logits_fn(pool_x[idx]), pool_y[idx])
            if penalty is not None:
                loss = loss + penalty()
            if not torch.isfinite(loss).all():
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, batch {b}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        schedule.step()
        if after_epoch is not None:
            after_epoch(epoch)
        losses.append(total / n_batches)
        if epoch == 0 or (epoch + 1) % 50 == 0 or epoch + 1 == epochs:
            log.debug("epoch %d/%d: loss %.4f, next lr %.6f", epoch + 1, epochs, losses[-1], schedule.lr)
    return losses


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float((logits.argmax(dim=1) == labels.to(logits.device)).sum()) / labels.shape[0]


def evaluate(logits_fn: Callable[[Tensor], Tensor], x: Optional[Tensor], y: Optional[Tensor] = None,
             ) -> Tuple[Optional[Tensor], Optional[float]]:
    """(predictions, accuracy in % when ``y`` is given) of ``logits_fn`` on raw features ``x``."""
    if x is None:
        return None, None
    with torch.no_grad():
        logits = logits_fn(x.to(torch.float32))
    return logits.argmax(dim=1), (accuracy(logits, y) if y is not None else None)


def param_grid(grid: Mapping[str, Sequence[float]]) -> List[Dict[str, float]]:
    """The points of ``sklearn.model_selection.ParameterGrid(grid)`` in its order (keys sorted, the
    last key varying fastest), as ``ADAPTER.train`` walks them (without importing sklearn)."""
    keys = sorted(grid)
    return [dict(zip(keys, (float(v) for v in values))) for values in itertools.product(*(grid[k] for k in keys))]


def grid_search(fit: Callable[[Dict[str, float]], Tuple[Callable[[Tensor], Tensor], List[float]]],
                grid: Mapping[str, Sequence[float]], val_x: Tensor, val_y: Tensor,
                ) -> Tuple[Dict[str, float], Callable[[Tensor], Tensor], List[float], List[Dict[str, float]]]:
    """Train one model per grid point (``fit(point) -> (logits_fn, losses)``) and keep the one with the
    best validation accuracy after its last epoch; ties keep the first point in grid order.

    Returns (point, logits_fn, losses, searched: every point with its ``val_accuracy``)."""
    best: Optional[Tuple[float, Dict[str, float], Callable[[Tensor], Tensor], List[float]]] = None
    searched: List[Dict[str, float]] = []
    for point in param_grid(grid):
        fn, losses = fit(point)
        _, acc = evaluate(fn, val_x, val_y)
        searched.append({**point, "val_accuracy": acc})
        log.debug("grid point %s: val accuracy %.2f%%", point, acc)
        if best is None or acc > best[0]:
            best = (acc, point, fn, losses)
    assert best is not None, "empty grid"
    return best[1], best[2], best[3], searched


def seeded(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (initialisation and batch order of one training)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def search_or_fixed(fit: Callable[[Dict[str, float]], Tuple[Callable[[Tensor], Tensor], List[float]]],
                    grid: Optional[Mapping[str, Sequence[float]]], fixed: Dict[str, float],
                    val_x: Optional[Tensor], val_y: Optional[Tensor], like: Tensor,
                    ) -> Tuple[Dict[str, float], Callable[[Tensor], Tensor], List[float], List[Dict[str, float]], str]:
    """The ``fixed`` point trained alone (``grid`` None: protocol "fixed"), or :func:`grid_search` on the
    validation set (protocol "fewshot-validation"). Returns (point, logits_fn, losses, searched, protocol)."""
    if grid is None:
        fn, losses = fit(fixed)
        return fixed, fn, losses, [], "fixed"
    if val_x is None or val_y is None:
        raise ValueError("the grid search needs a validation set (val_x, val_y); or pass grid=None")
    point, fn, losses, searched = grid_search(fit, grid, val_x.to(like), val_y)
    return point, fn, losses, searched, "fewshot-validation"


def check_inputs(train_views: Tensor, text_w: Tensor, epochs: int) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if train_views.shape[-1] != text_w.shape[-1]:
        raise ValueError(f"feature dim {train_views.shape[-1]} != text dim {text_w.shape[-1]}")


def result(logits_fn: Callable[[Tensor], Tensor], val_x: Optional[Tensor], val_y: Optional[Tensor],
           test_x: Tensor, **extra: Any) -> Dict[str, Any]:
    """The common part of every ``run_<method>`` dict: test ``predictions`` and ``val_accuracy``."""
    preds, _ = evaluate(logits_fn, test_x)
    _, val_acc = evaluate(logits_fn, val_x, val_y)
    return {"predictions": preds, "val_accuracy": val_acc, **extra}
