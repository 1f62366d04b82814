"""CoCoOp's step time, naive against fast: one training step (batch 1) and the evaluation of a batch.

*Naive* is the official ``CustomCLIP.forward``: every image runs all n_cls prompts, 77 tokens each,
through the text encoder. *Truncated* cuts them after the last EOT. *Fast* runs one packed sequence
per image (its prefix once, every class's suffix after it). All start from cached image features,
so the differences are the text side's; ``tests/test_cocoop.py`` checks that the three agree.

Each time is the median of ``repeat`` calls after one warm-up call, as wall time and, on a CPU, as
the process's CPU time too: on a shared machine the wall time grows with the other processes' load,
the CPU time of a one-thread run much less.
"""
from __future__ import annotations

import logging
import statistics
import time
from typing import Callable, Dict, Sequence

import torch
import torch.nn.functional as F

from ..model.cocoop import CoCoOp
from .benchmark import device_of, synchronize

log = logging.getLogger(__name__)

PATHS = {"naive": dict(fast=False, truncate=False), "truncated": dict(fast=False, truncate=True),
         "fast": dict(fast=True)}


def median_times(fn: Callable[[], object], repeat: int, device: torch.device) -> Dict[str, float]:
    """Median wall and CPU seconds of ``fn`` over ``repeat`` calls, after one warm-up call."""
    fn()
    synchronize(device)
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


def train_step(model: CoCoOp, path: str, batch: int = 1) -> Callable[[], None]:
    """One SGD step (forward, cross-entropy, backward, update) on ``batch`` random cached features."""
    device = device_of(model)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(batch, model.meta_net.linear1.in_features, generator=g).to(device)
    labels = torch.randint(model.n_cls, (batch,), generator=g).to(device)
    opt = torch.optim.SGD(model.trainable_parameters(), lr=1e-6, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        loss = F.cross_entropy(model(feats, **PATHS[path]), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def eval_step(model: CoCoOp, path: str, batch: int = 32) -> Callable[[], None]:
    """The logits of ``batch`` random cached features, without gradients."""
    feats = torch.randn(batch, model.meta_net.linear1.in_features,
                        generator=torch.Generator().manual_seed(1)).to(device_of(model))

    def step() -> None:
        with torch.inference_mode():
            model(feats, **PATHS[path])
    return step


def cocoop_step_times(clip_model: torch.nn.Module, classnames: Sequence[str], train_batch: int = 1,
                      eval_batch: int = 32, repeat: int = 3, eval_repeat: int = 1,
                      paths: Sequence[str] = tuple(PATHS)) -> Dict:
    """Median seconds (wall, and CPU on a CPU) of a training step and of a batch's evaluation for
    each path, and each path's speed-up over the naive one (when measured). One benchmark row."""
    model = CoCoOp(clip_model, list(classnames))
    device = device_of(model)
    row: Dict = {"n_cls": model.n_cls, "train_batch": train_batch, "eval_batch": eval_batch,
                 "threads": torch.get_num_threads(), "device": str(device),
                 "repeat": repeat, "eval_repeat": eval_repeat}
    clocks = ("wall", "cpu") if device.type == "cpu" else ("wall",)
    runs = (("train", train_step, train_batch, repeat), ("eval", eval_step, eval_batch, eval_repeat))
    for kind, make, batch, n in runs:
        for path in paths:
            t = median_times(make(model, path, batch), n, device)
            for clock in clocks:
                row[f"{kind}_{path}_{clock}_s"] = round(t[f"{clock}_s"], 5)
            log.info("CoCoOp %s step, %s path, %d classes, batch %d: %.1f ms wall, %.1f ms CPU", kind, path,
                     model.n_cls, batch, 1e3 * t["wall_s"], 1e3 * t["cpu_s"])
        if "naive" in paths:
            for path, clock in ((p, c) for p in paths if p != "naive" for c in clocks):
                row[f"{kind}_speedup_{path}_{clock}"] = round(
                    row[f"{kind}_naive_{clock}_s"] / row[f"{kind}_{path}_{clock}_s"], 2)
    return row
