"""How much tensor memory one CoOp training step needs, with and without the cached-feature path.

The question the assignment's "about 5.8 GB of GPU memory" raises: what does a step hold at its
peak? Measured on the CPU with ``torch.profiler`` (``profile_memory=True``): every allocation and
free of the step, in time order, summed; the peak of that running sum is the memory the step needs
on top of what was alive before it (the model's weights, the optimiser's state after a warm-up
step). Unlike a process's peak RSS it counts tensors only -- no Python, no libraries, no allocator
slack -- so it is the part a GPU would hold in its own memory, before what a GPU adds (its context,
its caching allocator's reserve).

    res = step_memory(clip_model, classnames)    # {"naive": {...}, "ours": {...}, "weights_mb": ...}

*naive*: 32 images through the frozen image encoder (no gradient) and 100 prompts x 77 tokens through
the text encoder, forward and backward (CoOp as usually written); *ours*: 32 cached features and the
fast text encoder (truncated, shared prefix). The same steps as :func:`coop.measure.benchmark.training_step`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Sequence

import torch

log = logging.getLogger(__name__)

MB = 2 ** 20


def peak_tensor_bytes(fn: Callable[[], object], warmup: int = 1) -> Dict[str, int]:
    """``{"peak_bytes", "net_bytes", "events"}`` of one call of ``fn`` on the CPU: the highest running
    total of the bytes it allocated minus those it freed, what was still allocated at its end, and how
    many allocation events were seen. ``warmup`` calls first (optimiser state, lazily built buffers)."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        fn()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    results = getattr(prof.profiler, "kineto_results", None)
    if results is None:
        raise RuntimeError("this torch's profiler keeps no memory events (profiler.kineto_results)")
    events = sorted(((e.start_ns(), e.nbytes()) for e in results.events() if e.name() == "[memory]"),
                    key=lambda t: t[0])
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return {"peak_bytes": int(peak), "net_bytes": int(running), "events": len(events)}


def step_memory(clip_model: torch.nn.Module, classnames: Sequence[str], batch: int = 32,
                kinds: Sequence[str] = ("ours", "naive")) -> Dict[str, Any]:
    """Peak tensor memory (MB) of one CoOp training step of each of ``kinds`` (``ours``, ``naive``) on
    ``clip_model``'s device (the CPU: the profiler's memory events are the CPU allocator's), and the
    frozen weights' size."""
    from .benchmark import build_coop, training_step

    coop = build_coop(clip_model, classnames)
    out: Dict[str, Any] = {"batch": batch, "n_classes": len(classnames),
                           "weights_mb": sum(p.numel() * p.element_size() for p in clip_model.parameters()) / MB,
                           "how": "torch.profiler(profile_memory=True): peak of the running sum of the step's "
                                  "allocations minus frees, after one warm-up step; tensors only"}
    for kind in kinds:
        log.info("peak tensor memory of one training step: %s", kind)
        got = peak_tensor_bytes(training_step(coop, clip_model, naive=(kind == "naive"), batch=batch))
        out[kind] = {"peak_mb": got["peak_bytes"] / MB, "net_mb": got["net_bytes"] / MB, "events": got["events"]}
    return out
