"""The CoOp paper's comparison on our split: linear-probe CLIP, Tip-Adapter and Tip-Adapter-F.

Every baseline run of (shots, seed) trains on exactly the few-shot images of the CoOp run of the
same (shots, seed) (:func:`coop.data.split.fewshot` with the same sampling), is tested on the same
test features, and takes its features from the same cache:

- **Linear probe** (CoOp's ``lpclip/``, :mod:`coop.methods.linear_probe`): CLIP's test view of the
  few-shot images (no augmentation), raw image-encoder outputs (the cache keeps them unnormalised);
  C chosen on a few-shot validation set from our ``val`` part (K per class, lpclip: min(shots, 4);
  lowered to the smallest class's val count when a class has fewer, with a warning naming those
  classes, recorded in the run's ``validation``).
- **Tip-Adapter / Tip-Adapter-F** (:mod:`coop.methods.tip_adapter`): cache keys from 10 augmented
  views of each few-shot image with Tip-Adapter's own crop (RandomResizedCrop scale 0.5-1, bicubic,
  flip), one more view kind in our feature cache; alpha/beta searched on the same few-shot
  validation set (``--tip-search val``: on the whole validation part, as their code does).

Where each departs from its original code is :data:`coop.methods.departures.BASELINE_DEPARTURES`
(each record's ``departures`` lists the keys that applied). Records go to
``results/baselines/<method>/shots{K}_seed{S}.json`` with the same identity and
provenance rules as a CoOp run (a changed split, image, weight or line of code redoes them).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..data.split import Item, Split, fewshot, SAMPLINGS
from ..features.encoder import EncodeOptions
from ..features.views import TestView, TrainCrop
from ..model.precision import PRECISIONS
from ..runs.experiment import Experiment, accuracy, predictions_record
from ..runs.provenance import run_id, run_images
from ..runs.results import environment, now
from ..utils.errors import UserError
from . import departures, linear_probe, tip_adapter
from .zeroshot import DEFAULT_TEMPLATE, zeroshot_weights

log = logging.getLogger(__name__)

# key: (method name in records and figures, folder under results/baselines/)
BASELINES: Dict[str, Tuple[str, str]] = {
    "lp": ("Linear probe CLIP", "linear_probe"),
    "tip": ("Tip-Adapter", "tip_adapter"),
    "tip_f": ("Tip-Adapter-F", "tip_adapter_f"),
}
# --baselines on run_all: which of them a sweep runs
BASELINE_SETS = {"none": (), "lp": ("lp",), "tip": ("tip", "tip_f"), "all": ("lp", "tip", "tip_f")}
TIP_CROP_SCALE = (0.5, 1.0)  # Tip-Adapter's train transform: RandomResizedCrop(224, scale=(0.5, 1), bicubic)
TIP_CROP_SEED = "tip-adapter"  # its views depend on the image only, so runs that share an image share them

# Where each baseline departs from its original code: coop.methods.departures.BASELINE_DEPARTURES (recorded
# in each run as the keys that applied, rendered in docs/baselines.md and the report).


@dataclass
class BaselineConfig:
    method: str = "lp"
    shots: int = 1
    seed: int = 1
    model: str = "RN50"
    data_root: str = "data"
    split_file: str = "splits/caltech101.json"
    sampling: str = "nested"  # the few-shot images: those of the CoOp run of the same (shots, seed)
    val_shots: Optional[int] = None  # None: min(shots, 4), as lpclip
    tip_search: str = "fewshot"  # "fewshot" (the few-shot validation set) or "val" (the whole val part)
    tip_views: int = tip_adapter.AUGMENT_EPOCH
    tip_epochs: int = tip_adapter.TRAIN_EPOCH
    lp_max_iter: int = linear_probe.MAX_ITER  # lpclip's 1000; the demo caps it (its features are random)
    precision: str = "fp32"
    device: str = "auto"
    workers: Optional[int] = None
    encode_batch_size: int = 32
    results: str = "results"
    clip_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    demo: bool = False

    NOT_IDENTITY = ("device", "results", "cache_dir", "clip_dir", "data_root", "split_file", "demo", "workers",
                    "encode_batch_size")

    def check(self) -> None:
        if self.method not in BASELINES:
            raise UserError(f"unknown baseline {self.method!r}; use one of {', '.join(BASELINES)}")
        if self.tip_search not in ("fewshot", "val"):
            raise UserError(f"--tip-search {self.tip_search!r}: use fewshot or val")
        if self.sampling not in SAMPLINGS or self.precision not in PRECISIONS:
            raise UserError(f"--sampling {self.sampling!r} / --precision {self.precision!r}: unknown")
        for name in ("shots", "tip_views", "encode_batch_size", "lp_max_iter") + (("val_shots",) if self.val_shots is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")
        if isinstance(self.tip_epochs, bool) or not isinstance(self.tip_epochs, int) or self.tip_epochs < 0:
            raise UserError(f"--tip-epochs must be an integer >= 0, got {self.tip_epochs!r}")
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2 ** 32:
            raise UserError(f"--seed must be in [0, 2**32), got {self.seed}")

    def identity(self) -> Dict:
        ident = {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}
        if self.method == "lp":  # Tip-Adapter's settings do not change a linear probe
            for k in ("tip_search", "tip_views", "tip_epochs"):
                ident.pop(k)
        elif self.method == "tip":
            ident.pop("tip_epochs")
        return ident

    def val_items(self, split: Split) -> List[Item]:
        """The validation images the hyper-parameter search reads (see :meth:`validation_plan`)."""
        return self.validation_plan(split)["items"]

    def validation_plan(self, split: Split) -> Dict:
        """The validation set of the hyper-parameter search and how it was drawn.

        K per class from ``val`` (K = ``--val-shots``, default min(shots, 4) as lpclip), drawn with
        the run's seed and sampling; or the whole val part with ``--tip-search val``. When a class has
        fewer than K val images, K is lowered to the smallest class's count for every class (lpclip
        would stop), and ``short_classes`` names the classes below the requested K with their counts.
        Returns ``{"items", "search", "per_class", "requested_per_class", "short_classes"}``."""
        if self.method != "lp" and self.tip_search == "val":
            return {"items": list(split.val), "search": "val", "per_class": None, "requested_per_class": None,
                    "short_classes": {}}
        if not split.val:
            raise UserError(f"{split.path} has no val images: the baselines choose their hyper-parameters there")
        counts: Dict[int, int] = {}
        names: Dict[int, str] = {}
        for it in split.val:
            counts[it[1]] = counts.get(it[1], 0) + 1
            names.setdefault(it[1], it[2] if len(it) > 2 else str(it[1]))
        want = self.val_shots or min(self.shots, 4)
        k = min(want, min(counts.values()))
        short = {names[c]: n for c, n in sorted(counts.items()) if n < want}
        return {"items": fewshot(split.val, k, self.seed, self.sampling), "search": "fewshot", "per_class": k,
                "requested_per_class": want, "short_classes": short}


def validation_warning(cfg: "BaselineConfig", plan: Dict) -> Optional[str]:
    """The line a run prints when its few-shot validation set is smaller than asked (None when it is not)."""
    short = plan.get("short_classes") or {}
    if not short:
        return None
    shown = ", ".join(f"{c!r} ({n})" for c, n in list(short.items())[:5]) + (
        f" and {len(short) - 5} more" if len(short) > 5 else "")
    return (f"{BASELINES[cfg.method][0]} {cfg.shots} shot{'s' if cfg.shots != 1 else ''} seed {cfg.seed}: the "
            f"hyper-parameter search uses {plan['per_class']} validation image(s) per class "
            f"({len(plan['items'])} in all), not the {plan['requested_per_class']} asked for: "
            f"{len(short)} class(es) have fewer val images: {shown}")


def baseline_result_path(results: str | Path, method: str, shots: int, seed: int) -> Path:
    return Path(results) / "baselines" / BASELINES[method][1] / f"shots{shots}_seed{seed}.json"


def _center_features(exp: Experiment, items: List[Item]) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, str]]:
    """CLIP's test view of ``items`` (raw encoder outputs) and their labels, unreadable ones left out."""
    feats, index, bad = exp.cache.test_features(exp.model, exp.image_root, [it[0] for it in items],
                                                TestView(exp.resolution))
    if not index:
        raise UserError("none of the baseline's training or validation images could be read")
    return feats, torch.tensor([items[i][1] for i in index], device="cpu"), bad


def run_baseline(cfg: BaselineConfig, exp: Optional[Experiment] = None) -> Dict:
    """One baseline run; returns its result record (not yet written)."""
    cfg.check()
    t0, started = time.time(), now()
    exp = exp or Experiment(cfg.model, cfg.data_root, cfg.split_file, cfg.device, cfg.cache_dir,
                            download_root=cfg.clip_dir, encode=EncodeOptions.of(cfg))
    name = BASELINES[cfg.method][0]
    train_items = fewshot(exp.split.train, cfg.shots, cfg.seed, cfg.sampling)
    plan = cfg.validation_plan(exp.split)
    val_items = plan["items"]
    warning = validation_warning(cfg, plan)
    if warning:
        log.warning(warning)
    test = exp.test_set()
    val_x, val_y, bad = _center_features(exp, val_items)
    dev = exp.device
    if cfg.method == "lp":
        train_x, train_y, bad_train = _center_features(exp, train_items)
        out = linear_probe.run_linear_probe(train_x, train_y, val_x, val_y, test.features, max_iter=cfg.lp_max_iter)
        pred = torch.as_tensor(out["predictions"], device="cpu")
        hyper = {"C": out["C"], "val_accuracy": out["val_accuracy"], "searched": out["searched"]}
    else:
        views, index, bad_train = exp.cache.crop_features(
            exp.model, exp.image_root, [it[0] for it in train_items],
            TrainCrop(exp.resolution, TIP_CROP_SEED, scale=TIP_CROP_SCALE), range(cfg.tip_views))
        if not index:
            raise UserError("none of the few-shot training images could be read")
        train_y = torch.tensor([train_items[i][1] for i in index], device="cpu")
        text_w = zeroshot_weights(exp.model, exp.classnames, [DEFAULT_TEMPLATE], exp.precision).float()
        args = (views.to(dev), train_y.to(dev), val_x.to(dev), val_y.to(dev), test.features.to(dev), text_w.to(dev))
        if cfg.method == "tip":
            out = tip_adapter.run_tip_adapter(*args)
        else:
            out = tip_adapter.run_tip_adapter_f(*args, epochs=cfg.tip_epochs, seed=cfg.seed)
        pred = torch.as_tensor(out["predictions"]).cpu()
        hyper = {k: out[k] for k in ("alpha", "beta", "val_accuracy")}
        if "losses" in out:
            hyper["train_loss"] = [round(float(x), 6) for x in out["losses"]]
    logits = torch.nn.functional.one_hot(pred.long(), len(exp.classnames)).float()  # argmax == pred
    acc, per_class, mean_pc = accuracy(logits, test.labels, exp.classnames)
    log.info("%s %d shot%s seed %d: top-1 %.2f%% (%d test images)%s", name, cfg.shots, "s" if cfg.shots != 1 else "",
             cfg.seed, acc, len(test.labels), "  (RANDOM WEIGHTS: not an accuracy)" if exp.info.random_weights else "")
    inputs = exp.inputs(run_images(exp.split, cfg))
    return {
        "kind": "baseline", "method": name, "baseline": cfg.method, "shots": cfg.shots, "seed": cfg.seed,
        "run_id": run_id(cfg.identity(), inputs), "inputs": inputs,
        "accuracy": acc, "mean_per_class_accuracy": mean_pc, "per_class_accuracy": per_class,
        "n_test": len(test.labels), "n_classes": len(exp.classnames), "classnames": exp.classnames,
        "test_predictions": predictions_record(logits, test), "hyperparameters": hyper,
        "validation": {"images": len(val_y), "search": plan["search"], "per_class": plan["per_class"],
                       "requested_per_class": plan["requested_per_class"], "short_classes": plan["short_classes"],
                       "warning": warning, "items": val_items},
        "fewshot_train": train_items, "departures": departures.active_baseline(asdict(cfg)),
        "precision": exp.precision,
        "model": exp.model_record(), "random_weights": exp.info.random_weights, "demo": cfg.demo,
        "split": exp.split_record(), "skipped_images": {**bad, **bad_train, **test.skipped},
        "config": asdict(cfg), "identity": cfg.identity(), "environment": environment(exp.device),
        "started_at": started, "finished_at": now(), "wall_time_s": round(time.time() - t0, 3),
    }
