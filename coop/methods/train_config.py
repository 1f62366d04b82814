"""One CoOp run's settings: CoOp's recipe as defaults, with the checks a user's typos meet first.

Defaults are CoOp's (configs/trainers/CoOp/rn50_ep*.yaml and Dassl's optimiser/scheduler): SGD,
lr 0.002, momentum 0.9, weight decay 5e-4, batch 32; one warm-up epoch at a constant 1e-5, then
cosine; 50 epochs at 1 shot, 100 at 2-4, 200 at 8-16; M = 16 context vectors, class token at the
end; a fresh crop of every training image in every epoch (:func:`crop_plan`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Dict, List, Optional, Tuple

from ..model.block_mods import BLOCK_MODS
from ..utils.errors import UserError
from ..model.prompt_learner import CLASS_TOKEN_POSITIONS, underscores_as_spaces
from ..data.split import SAMPLINGS, fewshot, fewshot_validation
from ..runs.protocol import RunConfig, WorkBudget, positive_int
from ..runs.results import LONGER, coop_result_path, longer_name, method_name

CONTEXT_LENGTH = 77  # CLIP's text context


def coop_epochs(shots: int) -> int:
    """CoOp's epochs for a number of shots: 50 at 1, 100 at 2 and 4, 200 at 8 and 16."""
    return 50 if shots <= 1 else 100 if shots <= 4 else 200


@dataclass
class TrainConfig(RunConfig):
    shots: int = 1
    seed: int = 1
    n_ctx: int = 16
    class_token_position: str = "end"
    ctx_init: Optional[str] = None
    csc: bool = False
    block_mod: Optional[str] = None
    epochs: Optional[int] = None  # None: CoOp's for the number of shots
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 32
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    views: Optional[int] = None  # None: a fresh crop of every image in every epoch (CoOp); N: N cached crops, cycled
    crop_seed: Optional[int] = None  # None: the run's seed
    independent_crops: bool = False  # True: no crop shared with the runs of other shots
    sampling: str = "nested"  # few-shot sets: "nested" across shots, or "coop" (Dassl's random.sample)
    fast: bool = True
    # run_all's, not a flag: "longer" is section 8's check of under-training -- plain CoOp at the sweep's
    # smallest shot count with twice the epochs, in coop_longer/, named "CoOp [epochs=N]"
    variant: Optional[str] = None

    KIND: ClassVar[str] = "coop"
    VARIANTS: ClassVar[Tuple[str, ...]] = (LONGER,)
    SHOTS_FLAG: ClassVar[str] = "--shots"  # the flag that sets shots (base-to-new: --base2new-shots): errors name it

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = coop_epochs(self.shots)

    def check(self) -> None:
        """Clear errors for values a user may type wrong."""
        if self.class_token_position not in CLASS_TOKEN_POSITIONS:
            raise UserError(f"--class-token-position {self.class_token_position!r} is unknown; "
                            f"use one of {', '.join(CLASS_TOKEN_POSITIONS)}")
        if self.block_mod is not None and self.block_mod not in BLOCK_MODS:
            raise UserError(f"--block-mod {self.block_mod!r} is unknown; use one of {', '.join(BLOCK_MODS)}")
        if self.variant is not None and (self.variant not in self.VARIANTS or self.block_mod is not None):
            raise ValueError(f"variant {self.variant!r}: one of {self.VARIANTS}, of plain CoOp only")
        super().check()
        if self.sampling not in SAMPLINGS:
            raise UserError(f"--sampling {self.sampling!r} is unknown; use one of {', '.join(SAMPLINGS)}")
        if self.crop_seed is not None and self.crop_seed < 0:
            raise UserError(f"--crop-seed must be >= 0, got {self.crop_seed}")
        for name in ("shots", "n_ctx", "epochs", "batch_size") + (("views",) if self.views is not None else ()):
            positive_int(getattr(self, name), self.SHOTS_FLAG if name == "shots" else f"--{name.replace('_', '-')}")
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2 ** 32:
            raise UserError(f"--seed must be in [0, 2**32) (numpy's seed range), got {self.seed}")
        if self.crop_seed is not None and self.crop_seed >= 2 ** 63:
            raise UserError(f"--crop-seed must be < 2**63, got {self.crop_seed}")
        for flag, v in (("--lr", self.lr), ("--warmup-lr", self.warmup_lr)):
            if not (v > 0 and math.isfinite(v)):
                raise UserError(f"{flag} must be a positive finite number, got {v}")
        if not (0 <= self.momentum < 1):
            raise UserError(f"--momentum must be in [0, 1) (CoOp: 0.9), got {self.momentum}; 1 or more makes SGD diverge")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise UserError(f"--weight-decay must be a finite number >= 0 (CoOp: 5e-4), got {self.weight_decay}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise UserError(f"--warmup-epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs} "
                            f"(CoOp warms up for 1 epoch; with --epochs {self.epochs} pass --warmup-epochs "
                            f"{max(0, self.epochs - 1)})")
        if self.ctx_init is not None:  # else CoOp raises a ValueError (a traceback) once everything is loaded
            from ..model.clip_loader import _clip

            words = underscores_as_spaces(self.ctx_init).strip()
            if not words:
                raise UserError("--ctx-init is empty; give the words to start from (e.g. \"a photo of a\" with "
                                "--n-ctx 4), or leave --ctx-init out for CoOp's random init")
            n = len(_clip().clip._tokenizer.encode(words))
            if n != self.n_ctx:
                raise UserError(f"--ctx-init {self.ctx_init!r} is {n} tokens but --n-ctx is {self.n_ctx}; "
                                f"pass --n-ctx {n}")

    def check_prompt_length(self, classnames) -> None:
        """``[SOS] + n_ctx + the longest class name + "." + [EOT]`` must fit CLIP's 77 tokens."""
        from ..model.clip_loader import _clip

        tok, prompt_name = _clip().clip._tokenizer, self.data().prompt_name
        longest = max(classnames, key=lambda c: len(tok.encode(prompt_name(c))))
        need = 1 + self.n_ctx + len(tok.encode(prompt_name(longest))) + 1 + 1
        if need > CONTEXT_LENGTH:
            raise UserError(f"--n-ctx {self.n_ctx} is too long: with the class name {longest!r} the prompt needs "
                            f"{need} of CLIP's {CONTEXT_LENGTH} tokens; use --n-ctx "
                            f"{self.n_ctx - (need - CONTEXT_LENGTH)} or less")

    def check_split(self, split) -> None:
        self.check_prompt_length(split.classnames)
        fewshot(split.train, self.shots, self.seed, self.sampling, self.SHOTS_FLAG)  # too many shots: fail now

    def settings(self) -> Dict:
        """The identity without shots and seed, CoOp's epochs-per-shots default named as such: runs
        of one sweep at different shots share it (:mod:`coop.runs.selection`)."""
        out = super().settings()
        if self.epochs == coop_epochs(self.shots):
            out["epochs"] = "CoOp's"
        return out

    def result_path(self) -> Path:
        return coop_result_path(self.results, self.shots, self.seed, self.block_mod or self.variant)

    def method(self) -> str:
        """The record's method: "CoOp", "CoOp+adapter", or a variant named by what differs ("CoOp [epochs=100]")."""
        return longer_name(self.epochs) if self.variant == LONGER else method_name(self.block_mod)

    def describe(self) -> str:
        return f"{self.shots} shot{'s' if self.shots != 1 else ''}, seed {self.seed}" + (
            f", {self.block_mod}" if self.block_mod else f", {self.epochs} epochs (the longer-training check)"
            if self.variant else "")

    def run(self, exp) -> Dict:
        from .train import run_coop

        return run_coop(self, exp)

    def crop_plan(self) -> Tuple[str, List[int]]:
        return crop_plan(self)

    def augmentation_record(self) -> Dict:
        return augmentation_record(self)

    def describe_augmentation(self) -> str:
        return describe_augmentation(self)

    def train_items(self, split) -> List:
        return fewshot(split.train, self.shots, self.seed, self.sampling)

    def validation_plan(self, split) -> Dict:
        """The few-shot validation set the baselines of the same (shots, seed) search on (min(shots, 4) per
        class, :func:`coop.data.split.fewshot_validation`). CoOp chooses nothing on it: the run records its
        accuracy there, which the bonus's guard reads (:mod:`coop.report.guard`)."""
        return fewshot_validation(split.val, self.shots, self.seed, self.sampling)

    def images(self, split) -> List[str]:
        return super().images(split) + [it[0] for it in self.train_items(split)] + [
            it[0] for it in self.validation_plan(split)["items"]]

    def work(self, budget: WorkBudget) -> float:
        name, plan = crop_plan(self)
        images = self.train_items(budget.split)
        encode = budget.crops(name, [it[0] for it in images], len(set(plan)))
        seen = [it[0] for it in images] + [it[0] for it in self.validation_plan(budget.split)["items"]]
        encode += budget.crops("test-view", seen, 1)  # the training images' test view (fit_view) and the validation set
        return encode + budget.STEP_UNITS * self.epochs * steps_per_epoch(len(images), self.batch_size)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: full batches only, the last incomplete one dropped (Dassl's
    ``drop_last``), at least one (a set smaller than a batch is one batch)."""
    return max(1, n_images // batch_size)


def crop_plan(cfg: TrainConfig) -> Tuple[str, List[int]]:
    """The crop seed and, per epoch, the index of the crop each image is seen through.

    Fresh mode (CoOp): crop ``e`` in epoch ``e`` -- no crop repeats within a run. ``--views N``
    (approximate): crop ``e mod N``, so each of the N crops is used before any repeats.
    """
    seed = cfg.seed if cfg.crop_seed is None else cfg.crop_seed
    name = f"{seed}-shots{cfg.shots}" if cfg.independent_crops else str(seed)
    if cfg.views is None:
        return name, list(range(cfg.epochs))
    return name, [e % cfg.views for e in range(cfg.epochs)]


def augmentation_record(cfg: TrainConfig) -> Dict:
    """What the run's training images went through (recorded in its JSON)."""
    name, plan = crop_plan(cfg)
    return {"mode": "fresh" if cfg.views is None else "views", "approximate": cfg.views is not None,
            "crops_per_image": len(set(plan)), "views": cfg.views, "crop_seed": name,
            "independent_crops": cfg.independent_crops,
            "transform": "RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bicubic) + hflip(p=0.5) + CLIP normalize"}


def describe_augmentation(cfg: TrainConfig) -> str:
    a = augmentation_record(cfg)
    if a["mode"] == "fresh":
        return f"fresh crops: {a['crops_per_image']} per image, one per epoch (as CoOp)"
    return f"APPROXIMATE: {a['views']} cached crops per image, cycled over {cfg.epochs} epochs (--views)"


