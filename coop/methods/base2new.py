"""Base-to-new generalisation, run as CoOp's repository runs it: zero-shot CLIP, CoOp and CoCoOp trained
on the base half of the classes (16 shots) and tested on both halves (:mod:`coop.data.base2new`).

One run = one method and seed: it trains on the base half (nothing to train for zero-shot), tests the
last epoch on the base half's test images with the base classes' prompts, then the same learned
weights on the new half's test images with the new classes' prompts, and records both halves (each
with its per-image predictions, for the report's paired tests) and H, their harmonic mean.
Records live in ``RESULTS/base2new/`` (never beside the all-class records, never averaged with them):
``zeroshot.json``, ``coop/shots16_seed{S}.json``, ``cocoop/shots16_seed{S}.json`` (+ the learned ``.pt``).
Defaults are the official configs (:mod:`coop.methods.cocoop_train`); ``--epochs`` and ``--shots``
override them (the demo's tiny run says so in its records).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ..data.base2new import Half, halves, harmonic_mean
from ..data.split import fewshot
from ..model.prompt_learner import CoOp
from ..runs.experiment import Experiment, TestSet, accuracy, predictions_record
from ..runs.protocol import Clock, RunConfig
from ..runs.protocol import record as protocol_record
from ..utils.atomic import torch_save
from ..utils.errors import UserError
from ..utils.seed import set_seed
from . import cocoop_train, departures
from .train_config import TrainConfig, augmentation_record, crop_plan

log = logging.getLogger(__name__)

METHODS = {"zeroshot": "Zero-shot CLIP", "coop": "CoOp", "cocoop": "CoCoOp"}


@dataclass
class Base2NewConfig(TrainConfig):
    """A base-to-new run: ``method`` zeroshot, coop or cocoop; the recipe defaults are the official
    configs' (CoOp: batch 32, 200 epochs; CoCoOp: batch 1, 10 epochs; both M = 4 from "a photo of a")."""

    method: str = "cocoop"
    protocol: str = "base2new"

    KIND: ClassVar[str] = "base2new"
    SHOTS_FLAG: ClassVar[str] = "--base2new-shots"
    shots: int = cocoop_train.BASE2NEW_SHOTS
    n_ctx: int = 4
    ctx_init: Optional[str] = "a photo of a"
    batch_size: int = 0  # 0: the method's own (CoOp 32, CoCoOp 1)

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = cocoop_train.COCOOP_EPOCHS if self.method == "cocoop" else cocoop_train.COOP_BASE2NEW_EPOCHS
        if not self.batch_size:
            self.batch_size = 1 if self.method == "cocoop" else 32

    def check(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"base-to-new method {self.method!r} is unknown; use one of {', '.join(METHODS)}")
        super().check()
        if self.csc or self.block_mod is not None or self.class_token_position != "end":
            raise UserError("the base-to-new protocol runs CoOp and CoCoOp as CoOp's repository does: one shared "
                            "context, class token at the end; drop --csc, --block-mod and --class-token-position")

    def settings(self) -> Dict:
        return RunConfig.settings(self)  # the protocol's own epochs, not CoOp's per-shots default

    def result_path(self) -> Path:
        return base2new_result_path(self.results, self.method, self.shots, self.seed)

    def describe(self) -> str:
        return f"base-to-new, {METHODS[self.method]}" + (f", seed {self.seed}" if self.method != "zeroshot" else "")

    def run(self, exp: Experiment) -> Dict:
        return run_base2new(self, exp)

    def check_split(self, split) -> None:
        halves(split)  # issue 36: too few classes for two halves of 2 is refused before any run
        if self.method != "zeroshot":
            super().check_split(split)

    def work(self, budget) -> float:
        return 1.0 if self.method == "zeroshot" else super().work(budget)


def base2new_result_path(results: str | os.PathLike, method: str, shots: int, seed: int) -> Path:
    folder = Path(results) / "base2new"
    return folder / "zeroshot.json" if method == "zeroshot" else folder / method / f"shots{shots}_seed{seed}.json"


def half_test(test: TestSet, half: Half) -> TestSet:
    """The test images of one half, relabelled 0..n-1 as the half's classes."""
    new = {y: i for i, y in enumerate(half.labels)}
    keep = [i for i, y in enumerate(test.labels.tolist()) if y in new]
    if not keep:
        raise UserError(f"no test image of the {half.name} half could be read: base-to-new needs both halves' test images")
    labels = torch.tensor([new[int(test.labels[i])] for i in keep])
    return TestSet(test.features[keep], labels, {}, [test.index[i] for i in keep])


def _zeroshot_logits(exp: Experiment, half: Half, test: TestSet) -> torch.Tensor:
    from .zeroshot import zeroshot_weights

    weights = zeroshot_weights(exp.model, half.classnames, [exp.dataset.template], exp.precision,
                               exp.dataset.prompt_name).cpu()
    return exp.model.logit_scale.exp().item() * F.normalize(test.features, dim=-1) @ weights.t()


def _train(cfg: Base2NewConfig, exp: Experiment, base: Half):
    """The trained model on the base half, its history and training set."""
    items = base.relabel(fewshot(exp.split.train, cfg.shots, cfg.seed, cfg.sampling))  # drawn over all, then halved
    crop_seed, plan = crop_plan(cfg)
    train = exp.train_set(items, plan, crop_seed)
    set_seed(cfg.seed)  # after the features: the init depends on the seed only, cached or not
    if cfg.method == "cocoop":
        model = cocoop_train.build(exp.model, list(base.classnames), cfg, exp.dataset.prompt_name).to(exp.device)
        history = cocoop_train.fit(model, train, cfg)
    else:
        from .train import fit

        model = CoOp(exp.model, list(base.classnames), n_ctx=cfg.n_ctx, ctx_init=cfg.ctx_init, fast=cfg.fast,
                     prompt_name=exp.dataset.prompt_name).to(exp.device)
        history = fit(model, train, cfg)
    return model, history, train


def _logits(cfg: Base2NewConfig, exp: Experiment, model, half: Half, test: TestSet, trained_on: Half) -> torch.Tensor:
    """The trained weights on ``half``'s classes (the same context; the prompts of this half's names)."""
    if cfg.method == "cocoop":
        from ..model.cocoop import CoCoOp

        if half is not trained_on:
            model = CoCoOp.restore(exp.model, model.checkpoint(), list(half.classnames),
                                   trained_on=list(trained_on.classnames), fast=cfg.fast,
                                   prompt_name=exp.dataset.prompt_name).to(exp.device)
        return cocoop_train.predict(model, test.features)
    if half is not trained_on:
        other = CoOp(exp.model, list(half.classnames), n_ctx=cfg.n_ctx, ctx_init=cfg.ctx_init, fast=cfg.fast,
                     prompt_name=exp.dataset.prompt_name)
        with torch.no_grad():
            other.ctx.copy_(model.ctx)
        model = other.to(exp.device)
    model.eval()
    with torch.no_grad():
        return model(test.features.to(exp.device)).cpu()


def _half_record(logits: torch.Tensor, test: TestSet, half: Half) -> Dict:
    acc, per_class, mean_pc = accuracy(logits, test.labels, list(half.classnames))
    return {"accuracy": acc, "mean_per_class_accuracy": mean_pc, "per_class_accuracy": per_class,
            "n_test": len(test.labels), "classnames": list(half.classnames), "split_labels": list(half.labels),
            "test_predictions": predictions_record(logits, test)}


def run_base2new(cfg: Base2NewConfig, exp: Experiment) -> Dict:
    """One base-to-new run; returns its record (not yet written); a trained run saves its ``.pt`` first."""
    cfg.check()
    clock = Clock()
    base, new = halves(exp.split)
    set_seed(cfg.seed)
    test = exp.test_set()
    tests = {"base": half_test(test, base), "new": half_test(test, new)}
    history, model, train = None, None, None
    if cfg.method != "zeroshot":
        model, history, train = _train(cfg, exp, base)
    out: Dict[str, Dict] = {}
    for half in (base, new):
        logits = (_zeroshot_logits(exp, half, tests[half.name]) if model is None
                  else _logits(cfg, exp, model, half, tests[half.name], trained_on=base))
        out[half.name] = _half_record(logits, tests[half.name], half)
    h = harmonic_mean(out["base"]["accuracy"], out["new"]["accuracy"])
    log.info("%s base-to-new, seed %s: base %.2f%%, new %.2f%%, H %.2f%%%s", METHODS[cfg.method], cfg.seed,
             out["base"]["accuracy"], out["new"]["accuracy"], h,
             "  (RANDOM WEIGHTS: not an accuracy of CLIP, CoOp or CoCoOp)" if exp.info.random_weights else "")
    path = cfg.result_path()
    record = protocol_record(
        cfg, exp, clock, method=METHODS[cfg.method], shots=cfg.shots if model is not None else 0,
        seed=cfg.seed if model is not None else 0, skipped=test.skipped,
        departures=departures.active_base2new(asdict(cfg)),  # every protocol's records name theirs (issue 36)
        accuracy=h, H=h, accuracy_base=out["base"]["accuracy"], accuracy_new=out["new"]["accuracy"],
        halves=out, per_class_accuracy={}, n_test=sum(o["n_test"] for o in out.values()), history=history,
        augmentation=augmentation_record(cfg) if model is not None else None,
        fewshot_train=train.items if train is not None else None)
    rid = record["run_id"]
    if model is not None:
        state = model.checkpoint() if cfg.method == "cocoop" else {"state": model.learned_state()}
        record["context_file"] = path.with_suffix(".pt").name
        torch_save({**state, "run_id": rid, "config": asdict(cfg), "trained_on": list(base.classnames)},
                   path.with_suffix(".pt"))
    return record


def sweep_configs(args, seeds, demo: bool) -> Tuple[Base2NewConfig, list]:
    """The protocol's runs for ``run_all --protocol base2new``: zero-shot, then CoOp and CoCoOp per seed."""
    keys = ("model", "data_root", "split_file", "dataset", "precision", "workers", "encode_batch_size", "fast",
            "device", "results", "cache_dir", "clip_dir", "views", "crop_seed", "sampling", "lr", "momentum",
            "weight_decay", "warmup_epochs", "warmup_lr")
    common = {k: getattr(args, k) for k in keys}
    if args.b2n_shots is not None:  # --base2new-shots 0 is refused by the run's check, not taken for 16
        common["shots"] = args.b2n_shots
    zs = Base2NewConfig(method="zeroshot", seed=0, demo=demo, **common)
    runs = [Base2NewConfig(method=m, seed=s, epochs=args.epochs, demo=demo, **common)
            for m in ("coop", "cocoop") for s in seeds]
    return zs, runs
