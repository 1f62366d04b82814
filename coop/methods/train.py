"""Training CoOp on cached image features with CoOp's recipe, and evaluating the last epoch.

Defaults are CoOp's (configs/trainers/CoOp/rn50_ep*.yaml and Dassl's optimiser/scheduler): SGD,
lr 0.002, momentum 0.9, weight decay 5e-4, batch 32; one warm-up epoch at a constant 1e-5, then
cosine annealing with ``T_max`` = the number of epochs (Dassl's ``ConstantWarmupScheduler`` around
``CosineAnnealingLR``); 50 epochs at 1 shot, 100 at 2-4, 200 at 8-16. An epoch is one pass over
the few-shot set in batches of 32, the incomplete last batch dropped when there is at least one
full batch (Dassl's train loader). The model of the last epoch is evaluated on the whole test
split: nothing is chosen by test accuracy.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from dataclasses import asdict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from . import departures
from .context import kept_in_temp, load_context, read_context  # noqa: F401 (public here too)
from ..utils.atomic import torch_save
from ..utils.errors import UserError
from ..runs.experiment import Experiment, TestSet, TrainSet
from ..runs.protocol import Clock, evaluation, record
from ..model.precision import autocast, grad_scaler
from ..model.prompt_learner import CoOp
from ..utils.progress import bar
from ..utils.seed import set_seed

log = logging.getLogger(__name__)


def training_set(exp: Experiment, cfg: "TrainConfig") -> TrainSet:
    """The run's few-shot images with the features of the crops each epoch sees."""
    crop_seed, plan = cfg.crop_plan()
    return exp.train_set(cfg.train_items(exp.split), plan, crop_seed)


def lr_at_epoch(epoch: int, cfg: "TrainConfig") -> float:
    """Learning rate of ``epoch`` (0-based): constant warm-up, then cosine with T_max = epochs."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / cfg.epochs))


def batches(n: int, batch_size: int, generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """A shuffled epoch of indices; the incomplete last batch is dropped when a full one exists."""
    perm = torch.randperm(n, generator=generator, device="cpu")  # the CPU generator: the same order on every device
    out = [perm[i: i + batch_size] for i in range(0, n, batch_size)]
    if n >= batch_size and len(out[-1]) < batch_size:
        out.pop()
    return out


class TrainingDiverged(UserError):
    pass


def fit(coop: CoOp, train: TrainSet, cfg: "TrainConfig", progress: bool = True) -> Dict[str, List[float]]:
    """Train ``coop`` in place on cached features; returns the per-epoch history."""
    device = coop.ctx.device
    feats = train.features.to(device)  # [U, N, D]: U distinct crops of N images
    labels = train.labels.to(device)
    N = feats.shape[1]
    if len(train.crop_of_epoch) < cfg.epochs:
        raise ValueError(f"the training set has crops for {len(train.crop_of_epoch)} epochs, not {cfg.epochs}")
    params = coop.trainable_parameters()
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = grad_scaler(cfg.precision, device)
    history: Dict[str, List[float]] = {"epoch": [], "loss": [], "train_acc": [], "lr": []}
    epochs = bar(range(cfg.epochs), desc=f"CoOp {cfg.shots} shot{'s' if cfg.shots != 1 else ''}, seed {cfg.seed}", unit="epoch",
               disable=not progress, mininterval=1.0)
    for epoch in epochs:
        lr = lr_at_epoch(epoch, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum, correct, seen = 0.0, 0, 0
        crop = train.crop_of_epoch[epoch]
        for step, idx in enumerate(batches(N, cfg.batch_size)):
            idx = idx.to(device)
            x, y = feats[crop, idx], labels[idx]  # this epoch's crop of each image in the batch
            with autocast(cfg.precision, device):
                logits = coop(x)
                loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"({cfg.shots} shots, seed {cfg.seed}); no result was written. "
                    f"Try a smaller --lr (now {cfg.lr}) or check the model weights")
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:  # CoOp's amp on CUDA: fp16 autocast with a gradient scaler
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(-1) == y).sum().item()
            seen += len(idx)
        history["epoch"].append(epoch + 1)
        history["loss"].append(round(loss_sum / seen, 6))
        history["train_acc"].append(round(100.0 * correct / seen, 4))
        history["lr"].append(lr)
        epochs.set_postfix(loss=f"{loss_sum / seen:.4f}", train_acc=f"{100.0 * correct / seen:.1f}%", refresh=False)
    if not all(torch.isfinite(p).all() for p in params):  # the last step is after the last loss check
        raise TrainingDiverged(
            f"the learned parameters became inf/nan in the last step, though the loss was finite "
            f"({cfg.shots} shots, seed {cfg.seed}); no result was written. Try a smaller --lr (now {cfg.lr})")
    return history


@torch.no_grad()
def nearest_words(coop: CoOp, clip_model: torch.nn.Module, k: int = 3) -> List[List[Tuple[str, float]]]:
    """For each learned context vector, the ``k`` vocabulary tokens nearest in Euclidean distance
    (the CoOp paper's way of reading a learned context)."""
    import clip

    tok = clip.clip._tokenizer
    vocab = clip_model.token_embedding.weight.float()  # [V, d]
    ctx = coop.ctx.detach().float()
    ctx = ctx if ctx.dim() == 2 else ctx.mean(0)  # class-specific: the class average
    dist = torch.cdist(ctx, vocab)  # [n_ctx, V]
    out = []
    for row in dist:
        d, idx = row.topk(k, largest=False)
        words = [bytearray(tok.byte_decoder[c] for c in tok.decoder[i]).decode("utf-8", "replace")
                 .replace("</w>", "") for i in idx.tolist()]
        out.append([(w, round(v, 4)) for w, v in zip(words, d.tolist())])
    return out


@torch.no_grad()
def context_moved(ctx: torch.Tensor, init: torch.Tensor) -> List[float]:
    """Per context vector, ||ctx - init|| / ||init|| (class-specific contexts: averaged over the classes)."""
    ctx, init = ctx.detach().float(), init.float()
    rel = (ctx - init).norm(dim=-1) / init.norm(dim=-1).clamp_min(1e-12)
    return [round(float(v), 4) for v in (rel if rel.dim() == 1 else rel.mean(0))]


@torch.no_grad()
def zeroshot_reference(exp: Experiment) -> torch.Tensor:
    """Zero-shot CLIP's normalised classifier [C, D] (the data set's one template, as ``scripts/zeroshot.py``):
    :func:`fit_view` scores it on the run's own training images in the test view, the reference the report
    reads the trained model's accuracy there against -- the same images, the same view."""
    from .zeroshot import zeroshot_weights

    template = exp.dataset.template
    return exp.once(("zeroshot_weights", (template,)), lambda: zeroshot_weights(
        exp.model, exp.classnames, [template], exp.precision, exp.dataset.prompt_name)).float()


def run_coop(cfg: "TrainConfig", exp: Optional[Experiment] = None, progress: bool = True) -> Dict:
    """Train one CoOp run, save its context, and return the result record (not yet written)."""
    cfg.check()
    clock = Clock()
    t0 = clock.t0
    exp = exp or cfg.experiment()
    if exp.precision != cfg.precision:
        raise ValueError(f"the experiment runs in {exp.precision}, the run asks for {cfg.precision}")
    log.info("CoOp %d shot%s, seed %d: %s; %s", cfg.shots, "s" if cfg.shots != 1 else "", cfg.seed,
             cfg.describe_augmentation(), cfg.precision)
    set_seed(cfg.seed)  # before any encoding: the numeric switches (no TF32, deterministic kernels) hold throughout
    train = training_set(exp, cfg)
    test = exp.test_set()
    plan = cfg.validation_plan(exp.split)
    val = exp.view_set(plan["items"], "few-shot validation") if plan["items"] else None
    if val is None:
        log.info("%s has no val images: the run records no validation accuracy (the bonus's guard needs one)",
                 exp.split.path)
    reference = zeroshot_reference(exp)
    seen = exp.view_set(train.items, "few-shot training (test view)")
    t_features = time.time() - t0

    set_seed(cfg.seed)  # again after feature extraction: the context's init depends on the seed only, cached or not
    coop = CoOp(exp.model, exp.classnames, n_ctx=cfg.n_ctx, class_token_position=cfg.class_token_position,
                ctx_init=cfg.ctx_init, csc=cfg.csc, block_mod=cfg.block_mod, fast=cfg.fast,
                prompt_name=exp.dataset.prompt_name).to(exp.device)
    start = (nearest_words(coop, exp.model), coop.ctx.detach().clone())  # to read the trained context against
    t1 = time.time()
    history = fit(coop, train, cfg, progress)
    t_train = time.time() - t1

    result_path = cfg.result_path()
    context_path = result_path.with_suffix(".pt")
    payload = {"config": asdict(cfg), "classnames": exp.classnames, "model": exp.model_record(),
               "state": coop.learned_state()}
    rec = None
    try:  # from here on, whatever fails, the trained context is kept (kept_in_temp)
        rec = _record(cfg, exp, coop, train, test, history, context_path,
                      {"features": round(t_features, 3), "train": round(t_train, 3)}, clock,
                      validation(coop, val, plan), fit_view(coop, seen, reference), start)
        payload["run_id"] = rec["run_id"]
        torch_save(payload, context_path)
    except Exception as e:
        raise kept_in_temp(payload, rec, context_path, result_path, e) from None
    return rec


@torch.no_grad()
def validation(coop: CoOp, val: Optional[TestSet], plan: Dict) -> Optional[Dict]:
    """The trained model's predictions and top-1 on the few-shot validation set (``plan``: how it was drawn),
    for the record's ``validation``; nothing is chosen on it here. None without val images."""
    if val is None:
        return None
    coop.eval()
    pred = coop(val.features.to(coop.ctx.device)).argmax(-1).cpu()
    correct = int((pred == val.labels).sum())
    return {"images": len(val.labels), "correct": correct, "accuracy": round(100.0 * correct / len(val.labels), 4),
            "per_class": plan["per_class"], "requested_per_class": plan["requested_per_class"],
            "short_classes": plan["short_classes"], "skipped": val.skipped, "items": plan["items"],
            "predictions": {"index": list(val.index), "pred": pred.tolist()}}  # index: the item each pred is of


@torch.no_grad()
def fit_view(coop: CoOp, seen: TestSet, reference: torch.Tensor) -> Dict:
    """Top-1 of the trained model and of zero-shot CLIP (``reference``, its normalised classifier) on the run's
    own few-shot training images in the test view (the centre crop the test images are seen through): the
    report reads over-fitting and under-training from these against the test accuracy, the same view on both
    sides (the last epoch's ``train_acc`` is on random crops, counted while training)."""
    coop.eval()
    feats = seen.features.to(coop.ctx.device)
    pred = coop(feats).argmax(-1).cpu()
    zs = (feats.float() @ reference.to(feats.device).t()).argmax(-1).cpu()
    n, correct, zs_correct = len(seen.labels), int((pred == seen.labels).sum()), int((zs == seen.labels).sum())
    return {"images": n, "correct": correct, "accuracy": round(100.0 * correct / n, 4),
            "zeroshot_correct": zs_correct, "zeroshot_accuracy": round(100.0 * zs_correct / n, 4),
            # per image (the run's fewshot_train order): which of the two got it right, for a paired reading
            "right": (pred == seen.labels).int().tolist(), "zeroshot_right": (zs == seen.labels).int().tolist()}


def _record(cfg: "TrainConfig", exp: Experiment, coop: CoOp, train: TrainSet, test, history: Dict, context_path: Path,
            times: Dict[str, float], clock: Clock, val: Optional[Dict] = None, fit: Optional[Dict] = None,
            start: Optional[tuple] = None) -> Dict:
    """The result record of a trained run: its test accuracy (last epoch) and everything it was made from
    (``start``: the context's nearest words and values before training)."""
    coop.eval()
    with torch.no_grad():
        logits = coop(test.features.to(exp.device)).cpu()
    ev = evaluation(logits, test, exp.classnames)
    log.info("CoOp %d-shot seed %d: top-1 %.2f%% (last epoch, %d test images)%s", cfg.shots, cfg.seed, ev["accuracy"],
             len(test.labels), "  (RANDOM WEIGHTS: not a CoOp accuracy)" if exp.info.random_weights else "")
    return record(
        cfg, exp, clock, method=cfg.method(), shots=cfg.shots, seed=cfg.seed,
        departures=departures.active(asdict(cfg)),
        skipped={**train.skipped, **test.skipped, **((val or {}).get("skipped") or {})}, **ev,
        n_trainable=sum(p.numel() for p in coop.trainable_parameters()),
        augmentation=cfg.augmentation_record(), history=history, nearest_words=nearest_words(coop, exp.model),
        # the same reading of the initial context, and how far training moved each vector (relative to its initial
        # norm): nearest words that did not change may show the initialisation rather than what was learned
        nearest_words_init=start[0] if start else None,
        context_moved=context_moved(coop.ctx, start[1]) if start else None,
        validation=val,  # top-1 on the few-shot validation set; nothing is chosen on it here: the bonus's guard reads it
        fit_view=fit,  # the trained model and zero-shot CLIP on the training images in the test view
        # per text block: the adapter's gate g or LoRA's |B| (0 = plain CoOp), for the bonus's test
        block_mod_size=[b.mod.size() for b in coop.encoder.blocks] if cfg.block_mod else None,
        fewshot_train=train.items, context_file=context_path.name, time_s=times)
