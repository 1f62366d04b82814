"""Measurements behind ``scripts/bench.py``: the naive CoOp step against ours, side by side.

*Naive* is CoOp as usually written: every step sends the batch's images through the frozen image
encoder and all prompts, 77 tokens each, through the text encoder. *Ours* trains on cached image
features with the exact fast text encoder (truncation + shared prefix). Both compute the same
thing; ``tests/test_text_encoder.py`` and ``tests/test_features.py`` check that.
"""
from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..features.encoder import channels_last
from ..model.prompt_learner import CoOp
from ..utils.memory import peak_rss_mb
from ..utils.paths import PROJECT_ROOT
from ..data.split import fewshot
from ..methods.train_config import coop_epochs, steps_per_epoch


def device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def synchronize(device: Optional[torch.device | str]) -> None:
    """Wait for the device's queued work (GPU calls return before the work is done)."""
    kind = torch.device(device).type if device is not None else "cpu"
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def build_coop(clip_model: torch.nn.Module, classnames: Sequence[str], **kwargs) -> CoOp:
    """CoOp over ``clip_model``, on the model's device (its masks, EOT rows, block-mod weights too)."""
    return CoOp(clip_model, list(classnames), **kwargs).to(device_of(clip_model))


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 1,
           device: Optional[torch.device | str] = None) -> Dict[str, float]:
    """Median and min wall time of ``fn`` over ``repeat`` calls, after ``warmup`` calls; on a GPU
    each call is timed to the end of its work."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeat": repeat}


def text_step(coop: CoOp, mode: str) -> Callable[[], None]:
    """One forward+backward of the text side: ``naive`` (77 tokens), ``truncated``, or ``ours``."""
    def step() -> None:
        if mode == "naive":
            feats = coop.encoder(coop.prompt_embeddings(), coop.eot, truncate=False)
        elif mode == "truncated":
            feats = coop.encoder(coop.prompt_embeddings(), coop.eot, truncate=True)
        else:
            feats = coop.text_features(fast=True)
        feats.square().sum().backward()
        coop.ctx.grad = None
    return step


def training_step(coop: CoOp, clip_model: torch.nn.Module, naive: bool, batch: int = 32,
                  precision: str = "fp32") -> Callable[[], None]:
    """One SGD step of CoOp on a batch: naive = images through the encoder + 77-token text; ours =
    cached features + fast text (under ``precision``'s autocast)."""
    from ..model.precision import autocast

    n_cls = coop.token_prefix.shape[0]
    dim = clip_model.text_projection.shape[1]
    res = clip_model.visual.input_resolution
    device = device_of(clip_model)
    images = torch.randn(batch, 3, res, res, device=device)
    feats = torch.randn(batch, dim, device=device)
    labels = torch.randint(n_cls, (batch,), device=device)
    opt = torch.optim.SGD(coop.trainable_parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        if naive:
            with torch.no_grad():
                x = clip_model.encode_image(images)
            text = coop.text_features(fast=False)
            loss = F.cross_entropy(coop.logits(x, text), labels)
        else:
            with autocast(precision, device):
                loss = F.cross_entropy(coop(feats), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


@torch.inference_mode()
@torch.inference_mode()
def image_throughput(clip_model: torch.nn.Module, batch: int = 32, repeat: int = 2, fast: bool = True) -> float:
    """Images per second through the frozen image encoder (model only, random pixels), under
    ``torch.inference_mode`` as the runs' encoding is."""
    res = clip_model.visual.input_resolution
    device = device_of(clip_model)
    x = torch.randn(batch, 3, res, res, device=device)
    if fast:
        with channels_last(clip_model.visual):
            t = timeit(lambda: clip_model.encode_image(x.contiguous(memory_format=torch.channels_last)), repeat,
                       device=device)
    else:
        t = timeit(lambda: clip_model.encode_image(x), repeat, device=device)
    return batch / t["median_s"]


def steps_per_run(n_cls: int, shots: int, batch_size: int = 32, epochs: Optional[int] = None) -> int:
    """Optimiser steps of one CoOp run with CoOp's schedule (drop-last batches)."""
    return (epochs or coop_epochs(shots)) * steps_per_epoch(n_cls * shots, batch_size)


def crops_to_encode(train: Sequence, shots: Sequence[int], seeds: Sequence[int], views: Optional[int] = None,
                    epochs: Optional[int] = None) -> int:
    """Distinct training crops the sweep encodes, from the runs' own crop plans: per seed, an image
    needs as many crops as the longest run that trains on it (fresh) or ``views`` (approximate)."""
    from ..methods.train_config import TrainConfig, crop_plan

    need: Dict[tuple, int] = {}
    for s in seeds:
        for k in shots:
            name, plan = crop_plan(TrainConfig(shots=k, seed=s, views=views, epochs=epochs))
            for it in fewshot(train, k, s):
                need[(name, it[0])] = max(need.get((name, it[0]), 0), len(set(plan)))
    return sum(need.values())


def project_sweep(n_test: int, n_crops: int, n_cls: int, shots: Sequence[int], seeds: Sequence[int],
                  test_img_s: float, crop_img_s: float, step_s: float, load_s: float = 0.0,
                  epochs: Optional[int] = None) -> Dict[str, float]:
    """Projected wall time of the sweep (zero-shot + every CoOp run) from measured unit costs."""
    steps = sum(steps_per_run(n_cls, k, epochs=epochs) for k in shots) * len(seeds)
    encode = n_test / test_img_s + n_crops / crop_img_s
    train = steps * step_s
    return {"steps": steps, "images_encoded": n_test + n_crops, "crops": n_crops, "encode_s": encode,
            "train_s": train, "load_s": load_s, "total_s": encode + train + load_s}


def pipeline_throughput(clip_model: torch.nn.Module, image_root: Path, relpaths: Sequence[str], precision: str,
                        crops_per_image: int = 0, workers: Optional[int] = None, batch: int = 32,
                        warm_up: bool = True) -> float:
    """Images per second through the whole input path (JPEG decode, crop or resize, DataLoader
    workers, encoder) at ``precision``: CLIP's test view, or ``crops_per_image`` fresh crops of each
    (``warm_up=False``: the encoder has just run at this batch size, skip the warm-up batch)."""
    from ..features.encoder import EncodeOptions, encode
    from ..features.views import TestView, TrainCrop

    res = clip_model.visual.input_resolution
    opts = EncodeOptions(batch_size=batch, workers=workers, precision=precision)
    if crops_per_image:
        items, view = [(r, e) for r in relpaths for e in range(crops_per_image)], TrainCrop(res, "bench")
    else:
        items, view = [(r, None) for r in relpaths], TestView(res)
    if warm_up:
        encode(clip_model, image_root, items[:batch], view, opts)
    t = time.perf_counter()
    encode(clip_model, image_root, items, view, opts)
    return len(items) / (time.perf_counter() - t)


INPUT_PATHS = ("decode_per_crop", "float_per_crop", "ours")


def input_path_ms(image_root: Path, relpaths: Sequence[str], resolution: int, crops_per_image: int,
                  path: str, batch: int = 32) -> float:
    """Milliseconds per training crop to make the encoder's input batches in this process, without
    the encoder. ``path``:

    - ``decode_per_crop``: before issue 22 -- every crop decodes its image again, then torchvision's
      functional crop, flip, ``to_tensor`` and ``normalize`` one crop at a time, batches stacked;
    - ``float_per_crop``: the path of commit c22aa4e -- one decode per image, the same per-crop float
      path and stacking;
    - ``ours``: the run's path (``ViewDataset``: one decode per image, uint8 pixels; ``to_input`` per batch).

    All three give the same tensors (tests/test_features.py, tests/test_fresh_crops.py). In one process;
    in a run the decoding happens in DataLoader workers and ``to_input`` on the encoder's device."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    from ..data.folders import load_image
    from ..features.encoder import ViewDataset
    from ..features.views import CLIP_MEAN, CLIP_STD, TrainCrop, to_input

    if path not in INPUT_PATHS:
        raise ValueError(f"path must be one of {INPUT_PATHS}, got {path!r}")
    view, root = TrainCrop(resolution, "bench"), Path(image_root)
    items = [(r, e) for r in relpaths for e in range(crops_per_image)]
    if not items:
        raise ValueError("input_path_ms needs at least one image and one crop per image")
    decoded: dict = {}

    def per_crop_float(rel, e):
        img = load_image(root / rel) if path == "decode_per_crop" else decoded.setdefault(rel, load_image(root / rel))
        i, j, h, w, flip = view.params(img, rel, e)
        x = TF.resized_crop(img, i, j, h, w, [resolution, resolution], interpolation=InterpolationMode.BICUBIC)
        return TF.normalize(TF.to_tensor(TF.hflip(x) if flip else x), CLIP_MEAN, CLIP_STD)

    ds = ViewDataset(root, items, view)
    t = time.perf_counter()
    for b in range(0, len(items), batch):
        chunk = range(b, min(b + batch, len(items)))
        if path == "ours":
            to_input(torch.stack([ds[k][0] for k in chunk]))
        else:
            torch.stack([per_crop_float(*items[k]) for k in chunk])
    return 1000 * (time.perf_counter() - t) / len(items)


def measure_in_child(kind: str, model: str, classnames: List[str], steps: int, device: str) -> Dict[str, float]:
    """Run ``steps`` training steps (``kind`` naive or ours) in a fresh process; return its peak
    memory, so one measurement cannot inflate the other."""
    code = (
        "import json, sys, torch; from coop.measure.benchmark import _child; "
        f"print(json.dumps(_child({kind!r}, {model!r}, {classnames!r}, {steps}, {device!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(PROJECT_ROOT))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(kind: str, model: str, classnames: List[str], steps: int, device: str) -> Dict[str, float]:
    from ..model.clip_loader import load_clip

    clip_model, _ = load_clip(model, device=device)
    coop = build_coop(clip_model, classnames)
    dev = device_of(clip_model)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    base = peak_rss_mb()
    step = training_step(coop, clip_model, naive=(kind == "naive"))
    for _ in range(steps):
        step()
    synchronize(dev)
    gc.collect()
    out = {"peak_rss_mb": peak_rss_mb(), "rss_before_steps_mb": base}
    if dev.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    return out


def baselines_seconds(n_cls: int, dim: int, shots: Sequence[int], seeds: Sequence[int],
                      n_test: int = 2465, views: int = 10) -> Dict[str, float]:
    """Wall time of every baseline run of the sweep from a warm cache: the methods on features of the
    real shapes (values random: their cost does not depend on them), per method, summed over the
    (shots, seed) pairs."""
    import contextlib

    from ..methods import clap, clip_adapter, linear_probe, taskres, tip_adapter
    from ..methods.adapter_methods import one_thread

    g = torch.Generator().manual_seed(0)
    out = {"lp": 0.0, "tip": 0.0, "tip_f": 0.0, "clip_adapter": 0.0, "taskres": 0.0, "zs_lp": 0.0, "clap": 0.0}
    for k in shots:
        for _ in seeds:
            means = torch.randn(n_cls, dim, generator=g)
            y = torch.arange(n_cls).repeat_interleave(k)
            vk = min(k, 4)
            train = means.repeat_interleave(k, 0) + 2 * torch.randn(n_cls * k, dim, generator=g)
            val = means.repeat_interleave(vk, 0) + 2 * torch.randn(n_cls * vk, dim, generator=g)
            val_y = torch.arange(n_cls).repeat_interleave(vk)
            test = means.repeat(n_test // n_cls + 1, 1)[:n_test] + 2 * torch.randn(n_test, dim, generator=g)
            crops = train.unsqueeze(0) + 0.3 * torch.randn(views, n_cls * k, dim, generator=g)
            crops20 = train.unsqueeze(0) + 0.3 * torch.randn(20, n_cls * k, dim, generator=g)  # CLAP's recipe: 20 views
            raw = means + torch.randn(n_cls, dim, generator=g)  # CLIP's raw text features (not normalised)
            text = F.normalize(raw, dim=-1)
            for key, fn in (("lp", lambda: linear_probe.run_linear_probe(train, y, val, val_y, test)),
                            ("tip", lambda: tip_adapter.run_tip_adapter(crops, y, val, val_y, test, text)),
                            ("tip_f", lambda: tip_adapter.run_tip_adapter_f(crops, y, val, val_y, test, text)),
                            ("clip_adapter", lambda: clip_adapter.run_clip_adapter(crops20, y, val, val_y, test, raw,
                                                                                   seed=1)),
                            ("taskres", lambda: taskres.run_taskres(crops20, y, val, val_y, test, raw, seed=1)),
                            ("zs_lp", lambda: clap.run_zs_lp(crops20, y, None, None, test, raw, seed=1)),
                            ("clap", lambda: clap.run_clap(crops20, y, None, None, test, raw, seed=1))):
                t = time.perf_counter()
                with one_thread() if key in ("clip_adapter", "taskres", "zs_lp", "clap") else contextlib.nullcontext():
                    fn()  # as a run makes them (coop.methods.adapter_recipe.fit_method)
                out[key] += time.perf_counter() - t
    out["total"] = sum(out.values())
    return out

