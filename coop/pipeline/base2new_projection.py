"""How long ``run_all --protocol base2new`` takes here, from unit costs measured on random:RN50.

The work of the protocol's defaults (16 shots on the base half, 3 seeds): per seed, CoOp encodes one fresh
crop of every base few-shot image in each of its 200 epochs (CoCoOp's 10 epochs see the first 10 of the
same crops: same images, same crop seed) and takes 200 x floor(images/32) steps of batch 32; CoCoOp takes
10 x images steps of batch 1, and evaluates every test image with its own prompts (both halves). The
test split is encoded once. ``--views 4`` encodes 4 crops per image instead of 200.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch

from ..methods.cocoop_train import BASE2NEW_SHOTS, COCOOP_EPOCHS, COOP_BASE2NEW_EPOCHS
from ..methods.train_config import steps_per_epoch


def base2new_counts(n_test: int, n_classes: int, shots: int = BASE2NEW_SHOTS, seeds: Sequence[int] = (1, 2, 3),
                    views: int = 4) -> Dict[str, Any]:
    """The protocol's work: test images, crops (fresh and ``views``), steps of each method, CoCoOp's evaluations."""
    images = shots * math.ceil(n_classes / 2)  # per seed, on the base half
    k = len(seeds)
    return {"n_test": n_test, "n_base": math.ceil(n_classes / 2), "images_per_seed": images, "seeds": k,
            "crops": {"fresh": k * images * COOP_BASE2NEW_EPOCHS, f"views{views}": k * images * views},
            "coop_steps": k * COOP_BASE2NEW_EPOCHS * steps_per_epoch(images, 32),
            "cocoop_steps": k * COCOOP_EPOCHS * images, "cocoop_evals": k * n_test}


def measure_base2new(model: torch.nn.Module, classnames: Sequence[str], repeat: int = 2) -> Dict[str, float]:
    """Seconds of one CoOp step (batch 32, M = 4, the base half's classes), one CoCoOp step (batch 1)
    and one CoCoOp evaluation per image (batch 4), fast paths, on ``model``."""
    from ..measure import benchmark as B
    from ..measure.bench_cocoop import cocoop_step_times

    base = list(classnames)[: math.ceil(len(classnames) / 2)]
    coop = B.build_coop(model, base, n_ctx=4, ctx_init="a photo of a")
    step = B.timeit(B.training_step(coop, model, naive=False), repeat=repeat, device=B.device_of(model))["median_s"]
    row = cocoop_step_times(model, base, train_batch=1, eval_batch=4, repeat=repeat, eval_repeat=1, paths=("fast",))
    return {"coop_step_s": step, "cocoop_step_s": row["train_fast_wall_s"],
            "cocoop_eval_img_s": row["eval_fast_wall_s"] / 4}


def project_base2new(counts: Dict[str, Any], units: Dict[str, float], img_s: float, load_s: float = 0.0) -> Dict:
    """Projected seconds per stage and in all, for fresh crops and --views."""
    fixed = (counts["coop_steps"] * units["coop_step_s"] + counts["cocoop_steps"] * units["cocoop_step_s"]
             + counts["cocoop_evals"] * units["cocoop_eval_img_s"] + counts["n_test"] / img_s + load_s)
    return {mode: {"encode_s": n / img_s, "coop_train_s": counts["coop_steps"] * units["coop_step_s"],
                   "cocoop_train_s": counts["cocoop_steps"] * units["cocoop_step_s"],
                   "cocoop_eval_s": counts["cocoop_evals"] * units["cocoop_eval_img_s"],
                   "total_s": fixed + n / img_s}
            for mode, n in counts["crops"].items()}
