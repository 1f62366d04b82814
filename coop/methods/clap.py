"""ZS-LP and CLAP (Silva-Rodriguez et al., CVPR 2024, arXiv 2312.12730) on cached CLIP features.

Source: jusiro/CLAP (commit dbdf4095b3d824546474c725539b9f4efff3ca0e), ``trainers/adapters.py``:
``AdapterMethod`` with INIT "ZS" (``prototypes = nn.Parameter(base_text_features.clone())``),
``zero_shot_constraint``, ``init_lagrangian_multipliers``, ``outer_step`` (and its ``phr``),
``CustomCLIP.forward_lp``, ``ADAPTER.train``/``forward_backward``; runs as
``experiments/experiment_ZSLP.txt`` (``ZS none``) and ``experiment_CLAP.txt`` (``ZS l2``), with the
training recipe of :mod:`coop.methods.adapter_recipe`. Re-implemented here, not copied.

* **ZS-LP**: a linear probe whose class prototypes W [C, D] start at the text prototypes t = ``text_w``;
  logits ``logit_scale * normalise(f) @ normalise(W).T`` (W itself is never renormalised); loss:
  cross-entropy.
* **CLAP**: the same plus ``mean_c(lambda_c * ||W_c - t_c||^2)`` (constraint "l2": squared distance of
  the unnormalised vectors, averaged over classes). The multipliers lambda_c are set once, before
  training, to the zero-shot model's mean softmax probability of class c over the augmented training
  features of class c (all 20 views: ``extract_features(reps=20)`` gives the zero-shot logits of every
  view): ``diag(softmax(zs_logits).T @ onehot(y)) / count_c``.
* **Outer step** (augmented Lagrangian, ``outer_step``): with h_c = ||W_c - t_c||^2, multipliers
  lambda and penalties rho (rho starts at 0), the PHR function's gradient gives the new
  lambda_c = max(lambda_c + rho_c * h_c, 0) (0 where lambda_c + rho_c * h_c < 0), and the new
  rho_c = h_c; it runs after every epoch ONLY when the constraint name contains "adaptative". The
  published runs use "l2", so CLAP as published keeps its initial multipliers fixed
  (``adaptive=False``, the default here); ``adaptive=True`` is the outer-step variant of the code.

Both are validation-free: fixed settings (lr 0.1, 300 epochs, batch 256), no search; the validation
accuracy is reported, never used. Departures: those of the recipe; fp32 on the inputs' device; a class
without training features would give the source a 0/0 multiplier (NaN): here it is an error. The text
prototypes are the caller's ``text_w``: adapters.py starts from CLIP's raw text features of "a photo of
a {}." (fp16, unnormalised). Their norm changes the training (the gradient through ``normalise(W)``
scales as 1 / ||W||, and the constraint measures unnormalised distances), so pass the raw features to
train as the source does; normalised ones are a departure (same zero-shot logits, other steps).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import adapter_recipe as recipe
from . import adapter_methods as wired
from .method import Method

log = logging.getLogger(__name__)

LR = recipe.LR
CONSTRAINT = "l2"  # experiment_CLAP.txt: TRAINER.ADAPTER.CONSTRAINT l2 (ZS-LP: "none")
ADAPTIVE = False  # outer_step only when "adaptative" is in the constraint name: not in the published runs
MULTIPLIER_MODES = ("l2", "balanced", "corrected", "constant")  # init_lagrangian_multipliers' branches


def lp_logits(features: Tensor, prototypes: Tensor, logit_scale: float = recipe.LOGIT_SCALE) -> Tensor:
    """``forward_lp``: logits [B, C] of raw features [B, D] against prototypes [C, D], both normalised."""
    return recipe.cosine_logits(features, prototypes, logit_scale)


def zero_shot_multipliers(zs_logits: Tensor, labels: Tensor, mode: str = CONSTRAINT) -> Tensor:
    """The initial multipliers [C] from zero-shot logits [M, C] of the labelled features.

    "l2": per class, the mean softmax probability of that class over its features; "balanced": ones;
    "corrected": the "l2" values scaled to sum to C; "constant": their mean for every class.
    """
    n_classes = zs_logits.shape[-1]
    if mode == "balanced":
        return torch.ones(n_classes, dtype=torch.float32, device=zs_logits.device)
    onehot = F.one_hot(labels.to(zs_logits.device).long(), n_classes).to(torch.float32)  # [M, C]
    counts = onehot.sum(0)
    if bool((counts == 0).any()):
        raise ValueError(f"classes without training features: {torch.nonzero(counts == 0).flatten().tolist()}")
    with torch.no_grad():
        perf = torch.diag(torch.softmax(zs_logits.float(), -1).t() @ onehot) / counts
    if mode == "corrected":
        perf = perf * (n_classes / torch.sum(perf).item())
    elif mode == "constant":
        perf = torch.ones_like(perf) * torch.mean(perf).item()
    elif mode != "l2":
        raise ValueError(f"unknown multiplier mode {mode!r}; use one of {MULTIPLIER_MODES}")
    return perf


def distances(prototypes: Tensor, base: Tensor) -> Tensor:
    """h [C]: squared L2 distance of each prototype from its zero-shot prototype (unnormalised)."""
    return (prototypes - base).pow(2).sum(-1)


def constraint_penalty(prototypes: Tensor, base: Tensor, multipliers: Tensor) -> Tensor:
    """CLAP's penalty ``mean_c(lambda_c * ||W_c - t_c||^2)`` (``zero_shot_constraint``, "l2")."""
    return torch.mean(multipliers * distances(prototypes, base))


def outer_step(prototypes: Tensor, base: Tensor, multipliers: Tensor, rho: Tensor) -> Tuple[Tensor, Tensor]:
    """One augmented-Lagrangian outer step: returns (new multipliers, new penalties rho), both [C]."""
    h = distances(prototypes, base).detach()
    x = multipliers + rho * h
    return torch.where(x >= 0, x, torch.zeros_like(x)), h.clone()


def train_lp(pool_x: Tensor, pool_y: Tensor, text_w: Tensor, *, n_images: int, lr: float = LR,
             epochs: int = recipe.EPOCHS, generator: torch.Generator, batch_size: int = recipe.BATCH_SIZE,
             logit_scale: float = recipe.LOGIT_SCALE, multipliers: Optional[Tensor] = None,
             adaptive: bool = ADAPTIVE) -> Tuple[Tensor, List[float], Optional[Tensor]]:
    """Train prototypes initialised at ``text_w`` with the recipe: ZS-LP, or CLAP when ``multipliers``
    [C] are given (``adaptive``: outer step after every epoch). Returns (prototypes, epoch losses,
    final multipliers or None)."""
    base = text_w.to(pool_x).detach()
    w = base.clone().requires_grad_(True)
    state: Dict[str, Tensor] = {}
    penalty = after = None
    if multipliers is not None:
        state["lambda"] = multipliers.to(pool_x).detach().clone()
        state["rho"] = torch.zeros_like(state["lambda"])
        penalty = lambda: constraint_penalty(w, base, state["lambda"])  # noqa: E731

        def after(epoch: int) -> None:
            if adaptive:
                state["lambda"], state["rho"] = outer_step(w, base, state["lambda"], state["rho"])

    losses = recipe.train([w], lambda f: lp_logits(f, w, logit_scale), pool_x, pool_y, n_images=n_images,
                          epochs=epochs, lr=lr, generator=generator, batch_size=batch_size, penalty=penalty,
                          after_epoch=after)
    return w.detach(), losses, state.get("lambda")


def _run(train_views: Tensor, train_labels: Tensor, val_x: Optional[Tensor], val_y: Optional[Tensor],
         test_x: Tensor, text_w: Tensor, *, seed: int, epochs: int, lr: float, logit_scale: float,
         batch_size: int, constraint: Optional[str], adaptive: bool) -> Dict[str, Any]:
    recipe.check_inputs(train_views, text_w, epochs)
    pool_x, pool_y = recipe.feature_pool(train_views, train_labels)
    text = text_w.to(pool_x)
    extra: Dict[str, Any] = {}
    mult = None
    if constraint is not None:
        with torch.no_grad():
            mult = zero_shot_multipliers(lp_logits(pool_x, text, logit_scale), pool_y, constraint)
        extra = {"constraint": constraint, "adaptive": adaptive, "multipliers": [float(m) for m in mult]}
    w, losses, final = train_lp(pool_x, pool_y, text, n_images=train_views.shape[-2], lr=lr, epochs=epochs,
                                generator=recipe.seeded(seed), batch_size=batch_size, logit_scale=logit_scale,
                                multipliers=mult, adaptive=adaptive)
    if adaptive and final is not None:
        extra["final_multipliers"] = [float(m) for m in final]
    return recipe.result(lambda f: lp_logits(f.to(pool_x), w, logit_scale), val_x, val_y, test_x, lr=float(lr),
                         epochs=epochs, protocol="validation-free", **extra, train_loss=losses)


def run_zs_lp(train_views: Tensor, train_labels: Tensor, val_x: Optional[Tensor], val_y: Optional[Tensor],
              test_x: Tensor, text_w: Tensor, *, seed: int, epochs: int = recipe.EPOCHS, lr: float = LR,
              logit_scale: float = recipe.LOGIT_SCALE, batch_size: int = recipe.BATCH_SIZE) -> Dict[str, Any]:
    """ZS-LP on raw view features [V, N, D] and labels [N]; test ``test_x`` [M, D]; no search.

    Returns ``predictions`` (test, LongTensor on the inputs' device), ``val_accuracy`` (% or None; not
    used), ``lr``, ``epochs``, ``protocol`` ("validation-free") and ``train_loss`` (per epoch)."""
    out = _run(train_views, train_labels, val_x, val_y, test_x, text_w, seed=seed, epochs=epochs, lr=lr,
               logit_scale=logit_scale, batch_size=batch_size, constraint=None, adaptive=False)
    log.info("ZS-LP: lr %g, %d epochs, val accuracy %s", lr, epochs,
             "-" if out["val_accuracy"] is None else f"{out['val_accuracy']:.2f}%")
    return out


def run_clap(train_views: Tensor, train_labels: Tensor, val_x: Optional[Tensor], val_y: Optional[Tensor],
             test_x: Tensor, text_w: Tensor, *, seed: int, epochs: int = recipe.EPOCHS, lr: float = LR,
             logit_scale: float = recipe.LOGIT_SCALE, batch_size: int = recipe.BATCH_SIZE,
             constraint: str = CONSTRAINT, adaptive: bool = ADAPTIVE) -> Dict[str, Any]:
    """CLAP: ZS-LP plus the class-adaptive constraint (multipliers from the zero-shot probabilities of
    the augmented training features); ``adaptive=True`` adds the outer step after every epoch.

    Returns the keys of :func:`run_zs_lp` plus ``constraint``, ``adaptive``, ``multipliers`` (the
    initial lambda per class) and, when adaptive, ``final_multipliers``."""
    out = _run(train_views, train_labels, val_x, val_y, test_x, text_w, seed=seed, epochs=epochs, lr=lr,
               logit_scale=logit_scale, batch_size=batch_size, constraint=constraint, adaptive=adaptive)
    log.info("CLAP (%s%s): lr %g, %d epochs, mean multiplier %.3f, val accuracy %s", constraint,
             ", outer step" if adaptive else "", lr, epochs, sum(out["multipliers"]) / len(out["multipliers"]),
             "-" if out["val_accuracy"] is None else f"{out['val_accuracy']:.2f}%")
    return out


def fit_zs_lp(data, options: Dict[str, Any]) -> Dict[str, Any]:
    return wired.fit_method(run_zs_lp, data, options, validation=False, hyper=("lr", "epochs", "protocol"))


def fit_clap(data, options: Dict[str, Any]) -> Dict[str, Any]:
    out = wired.fit_method(run_clap, data, options, validation=False, adaptive=options["adaptive"],
                            hyper=("lr", "epochs", "protocol", "constraint", "adaptive", "multipliers",
                                   "final_multipliers"))
    return out


_SHARED = wired.departures("adapters_views_coop_crops", "adapters_shuffle_torch", "adapters_fp32")
ZS_LP = Method(
    key="zs_lp", name="ZS-LP", name_zh="ZS-LP", folder="zs_lp", fit=fit_zs_lp,
    options={"views": recipe.N_VIEWS, "epochs": recipe.EPOCHS}, demo=dict(wired.DEMO), views=wired.VIEWS,
    protocol="validation-free", style=("tab:olive", "-.", "<"),
    source="jusiro/CLAP trainers/adapters.py (INIT ZS, constraint none)", departures=_SHARED)
CLAP = Method(
    key="clap", name="CLAP", name_zh="CLAP", folder="clap", fit=fit_clap,
    options={"views": recipe.N_VIEWS, "epochs": recipe.EPOCHS, "adaptive": ADAPTIVE}, demo=dict(wired.DEMO),
    views=wired.VIEWS, protocol="validation-free", style=("tab:cyan", "-", ">"),  # ZS-LP's "<" mirrored; a filled "P" reads as "+" at seed size
    source="jusiro/CLAP trainers/adapters.py (INIT ZS, constraint l2)", departures=_SHARED)
