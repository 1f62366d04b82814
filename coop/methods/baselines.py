"""The comparison on our split: the few-shot methods on cached features of :mod:`coop.methods.table`.

Every baseline run of (shots, seed) trains on exactly the few-shot images of the CoOp run of the
same (shots, seed) (:func:`coop.data.split.fewshot` with the same sampling), is tested on the same
test features, and takes its features from the same cache (:class:`FewShotData`: CLIP's test view of
the few-shot and validation images, the augmented views a method asks for, the zero-shot classifier).
A method's own computation is its module's ``fit`` (its :class:`coop.methods.method.Method` entry);
this module is what they share: the config and its identity, the few-shot validation set, the record.

Hyper-parameters are chosen on a few-shot validation set from our ``val`` part (K per class, lpclip:
min(shots, 4); lowered to the smallest class's val count when a class has fewer, with a warning naming
those classes, recorded in the run's ``validation``), or, with a method's ``search`` option ``val``, on
the whole val part; a validation-free method reads no validation image.

Where each departs from its original code is :data:`coop.methods.departures.BASELINE_DEPARTURES` and
its entry's own list (each record's ``departures`` lists the keys that applied). Records go to
``results/baselines/<folder>/shots{K}_seed{S}.json`` with the same identity and provenance rules as a
CoOp run (a changed split, image, weight or line of code redoes them).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple

import torch

from ..data.split import Item, Split, fewshot, fewshot_validation, SAMPLINGS
from ..features.views import TrainCrop
from ..runs.experiment import Experiment
from ..runs.protocol import Clock, RunConfig, WorkBudget, evaluation, positive_int, record
from ..utils.hashing import source_file_sha256
from ..utils.errors import UserError
from . import departures
from .method import Method
from .table import method as table_method
from .zeroshot import text_features, zeroshot_weights

log = logging.getLogger(__name__)


@dataclass
class BaselineConfig(RunConfig):
    method: str = "lp"
    shots: int = 1
    seed: int = 1
    sampling: str = "nested"  # the few-shot images: those of the CoOp run of the same (shots, seed)
    val_shots: Optional[int] = None  # None: min(shots, 4), as lpclip
    options: Dict[str, Any] = field(default_factory=dict)  # the method's own settings (its entry's defaults)

    KIND: ClassVar[str] = "baseline"

    @property
    def entry(self) -> Method:
        return table_method(self.method)

    def resolved(self) -> Dict[str, Any]:
        """The method's own settings: its entry's defaults, with this run's options over them."""
        return {**self.entry.options, **self.options}

    def check(self) -> None:
        entry = self.entry  # an unknown method is one line naming the known ones
        unknown = sorted(set(self.options) - set(entry.options))
        if unknown:
            raise UserError(f"{entry.name} has no setting {unknown[0]!r}; its settings: {entry.option_help()}")
        super().check()
        if self.sampling not in SAMPLINGS:
            raise UserError(f"--sampling {self.sampling!r} is unknown; use one of {', '.join(SAMPLINGS)}")
        for name in ("shots",) + (("val_shots",) if self.val_shots is not None else ()):
            positive_int(getattr(self, name), f"--{name.replace('_', '-')}")
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2 ** 32:
            raise UserError(f"--seed must be in [0, 2**32), got {self.seed}")
        opts = self.resolved()
        if opts.get("search", "fewshot") not in ("fewshot", "val"):
            raise UserError(f"--tip-search {opts['search']!r}: use fewshot or val")
        for k in ("views", "max_iter"):
            if k in opts:
                positive_int(opts[k], f"{entry.name}'s {k}")
        if "epochs" in opts and (isinstance(opts["epochs"], bool) or not isinstance(opts["epochs"], int)
                                 or opts["epochs"] < 0):
            raise UserError(f"{entry.name}'s epochs must be an integer >= 0, got {opts['epochs']!r}")

    def departures(self) -> List[str]:
        """The keys of the departures from the method's own code that apply to this run."""
        return departures.active_baseline({**asdict(self), **self.resolved()})

    def check_split(self, split: Split) -> None:
        fewshot(split.train, self.shots, self.seed, self.sampling)

    def identity(self) -> Dict[str, Any]:
        ident = super().identity()
        ident["options"] = self.resolved()  # the defaults too: a new default redoes the runs
        if self.entry.protocol == "validation-free":
            ident.pop("val_shots")
        return ident

    def extra_inputs(self) -> Dict[str, Any]:
        module = self.entry.fit.__module__
        if module.split(".")[0] != "coop":  # a method kept outside the package: its code is not in code_sha256
            return {"method_code_sha256": source_file_sha256(module)}
        return {}

    def result_path(self) -> Path:
        return baseline_result_path(self.results, self.method, self.shots, self.seed)

    def describe(self) -> str:
        return f"{self.method} baseline, {self.shots} shot{'s' if self.shots != 1 else ''}, seed {self.seed}"

    def run(self, exp: Experiment) -> Dict:
        return run_baseline(self, exp)

    def train_items(self, split: Split) -> List[Item]:
        return fewshot(split.train, self.shots, self.seed, self.sampling)

    def images(self, split: Split) -> List[str]:
        return super().images(split) + [it[0] for it in self.train_items(split)] + [
            it[0] for it in self.val_items(split)]

    def work(self, budget: WorkBudget) -> float:
        views = self.entry.views
        units = budget.CACHED_UNITS
        if views is not None:
            rels = [it[0] for it in self.train_items(budget.split)]
            seed_name, scale = views.crop(self.seed)
            kind = seed_name if scale is None else f"{seed_name}:{scale}"  # CoOp's crops are counted by seed name
            units += budget.crops(kind, rels, self.resolved()[views.count_option])
        return units

    def val_items(self, split: Split) -> List[Item]:
        """The validation images the hyper-parameter search reads (see :meth:`validation_plan`)."""
        return self.validation_plan(split)["items"]

    def validation_plan(self, split: Split) -> Dict:
        """The validation set of the hyper-parameter search and how it was drawn.

        K per class from ``val`` (K = ``--val-shots``, default min(shots, 4) as lpclip), drawn with
        the run's seed and sampling; the whole val part with a ``search`` option ``val``; nothing for a
        validation-free method. When a class has fewer than K val images, K is lowered to the smallest
        class's count for every class (lpclip would stop), and ``short_classes`` names the classes below
        the requested K with their counts.
        Returns ``{"items", "search", "per_class", "requested_per_class", "short_classes"}``."""
        if self.entry.protocol == "validation-free":
            return {"items": [], "search": "none", "per_class": None, "requested_per_class": None,
                    "short_classes": {}}
        if self.resolved().get("search") == "val":
            return {"items": list(split.val), "search": "val", "per_class": None, "requested_per_class": None,
                    "short_classes": {}}
        if not split.val:
            raise UserError(f"{split.path} has no val images: the baselines choose their hyper-parameters there")
        return {**fewshot_validation(split.val, self.shots, self.seed, self.sampling, self.val_shots), "search": "fewshot"}


def validation_warning(cfg: "BaselineConfig", plan: Dict) -> Optional[str]:
    """The line a run prints when its few-shot validation set is smaller than asked (None when it is not)."""
    short = plan.get("short_classes") or {}
    if not short:
        return None
    shown = ", ".join(f"{c!r} ({n})" for c, n in list(short.items())[:5]) + (
        f" and {len(short) - 5} more" if len(short) > 5 else "")
    return (f"{cfg.entry.name} {cfg.shots} shot{'s' if cfg.shots != 1 else ''} seed {cfg.seed}: the "
            f"hyper-parameter search uses {plan['per_class']} validation image(s) per class "
            f"({len(plan['items'])} in all), not the {plan['requested_per_class']} asked for: "
            f"{len(short)} class(es) have fewer val images: {shown}")


def baseline_result_path(results: str | Path, method: str, shots: int, seed: int) -> Path:
    return Path(results) / "baselines" / table_method(method).folder / f"shots{shots}_seed{seed}.json"


class FewShotData:
    """The features one baseline run reads, gathered from the experiment's cache when a method asks:
    ``train_x``/``train_y`` (CLIP's test view of the few-shot images), :meth:`views` (augmented views),
    ``val_x``/``val_y``, ``test_x`` and ``text_w`` (the zero-shot classifier, normalised). Raw encoder
    outputs throughout: each method normalises as its code does. Unreadable images are left out and
    gathered in ``skipped``."""

    def __init__(self, exp: Experiment, cfg: BaselineConfig, train_items: List[Item], val_items: List[Item]):
        self.exp, self.cfg, self.train_items, self.val_items = exp, cfg, train_items, val_items
        self.device, self.seed, self.n_classes = exp.device, cfg.seed, len(exp.classnames)
        self.test = exp.test_set()
        self.test_x = self.test.features
        self.skipped: Dict[str, str] = dict(self.test.skipped)

    def _center(self, items: List[Item], what: str) -> Tuple[torch.Tensor, torch.Tensor]:
        got = self.exp.view_set(items, f"baseline's {what}")
        self.skipped.update(got.skipped)
        return got.features, got.labels

    @cached_property
    def _train(self) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._center(self.train_items, "few-shot training")

    @property
    def train_x(self) -> torch.Tensor:
        return self._train[0]

    @property
    def train_y(self) -> torch.Tensor:
        return self._train[1]

    @cached_property
    def _val(self) -> Tuple[torch.Tensor, torch.Tensor]:
        if not self.val_items:
            raise UserError(f"{self.cfg.entry.name} is validation-free here but asked for validation images")
        return self._center(self.val_items, "validation")

    @property
    def val_x(self) -> torch.Tensor:
        return self._val[0]

    @property
    def val_y(self) -> torch.Tensor:
        return self._val[1]

    def views(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The method's augmented views of the few-shot images [V, N, D] and their labels [N]."""
        spec = self.cfg.entry.views
        if spec is None:
            raise ValueError(f"{self.cfg.entry.name} declares no views")
        n = self.cfg.resolved()[spec.count_option]
        seed_name, scale = spec.crop(self.cfg.seed)
        crop = TrainCrop(self.exp.resolution, seed_name) if scale is None else TrainCrop(self.exp.resolution, seed_name,
                                                                                           scale=scale)
        feats, index, bad = self.exp.cache.crop_features(
            self.exp.model, self.exp.image_root, [it[0] for it in self.train_items], crop, range(n))
        self.skipped.update(bad)
        if not index:
            raise UserError("none of the few-shot training images could be read")
        return feats, torch.tensor([self.train_items[i][1] for i in index], device="cpu")

    @cached_property
    def text_w(self) -> torch.Tensor:
        ds = self.exp.dataset  # its template (CoOp's "a photo of a {}." for Caltech101) and its words for a class
        return self.exp.once(("zeroshot_weights", (ds.template,)), lambda: zeroshot_weights(
            self.exp.model, self.exp.classnames, [ds.template], self.exp.precision, ds.prompt_name)).float()

    @cached_property
    def text_raw(self) -> torch.Tensor:
        """CLIP's raw text features of the template (``encode_text``, not normalised), as adapters.py starts from."""
        ds = self.exp.dataset
        return self.exp.once(("text_features", ds.template), lambda: text_features(
            self.exp.model, self.exp.classnames, ds.template, self.exp.precision, ds.prompt_name).float())

    @property
    def logit_scale(self) -> float:
        return float(self.exp.model.logit_scale.exp().item())


def run_baseline(cfg: BaselineConfig, exp: Optional[Experiment] = None) -> Dict:
    """One baseline run; returns its record (not yet written)."""
    cfg.check()
    clock = Clock()
    exp = exp or cfg.experiment()
    entry = cfg.entry
    plan = cfg.validation_plan(exp.split)
    warning = validation_warning(cfg, plan)
    if warning:
        log.warning(warning)
    data = FewShotData(exp, cfg, cfg.train_items(exp.split), plan["items"])
    out = entry.fit(data, cfg.resolved())
    pred = torch.as_tensor(out["predictions"]).cpu().long()
    logits = torch.nn.functional.one_hot(pred, len(exp.classnames)).float()  # argmax == pred
    ev = evaluation(logits, data.test, exp.classnames)
    log.info("%s %d shot%s seed %d: top-1 %.2f%% (%d test images)%s", entry.name, cfg.shots, "s" if cfg.shots != 1 else "",
             cfg.seed, ev["accuracy"], len(data.test.labels),
             "  (RANDOM WEIGHTS: not an accuracy)" if exp.info.random_weights else "")
    return record(
        cfg, exp, clock, method=entry.name, shots=cfg.shots, seed=cfg.seed,
        departures=cfg.departures(), skipped=data.skipped,
        baseline=cfg.method, folder=entry.folder, protocol=entry.protocol, **ev,
        hyperparameters=out.get("hyperparameters", {}),
        validation={"images": len(plan["items"]), "search": plan["search"], "per_class": plan["per_class"],
                    "requested_per_class": plan["requested_per_class"], "short_classes": plan["short_classes"],
                    "warning": warning, "items": plan["items"]},
        fewshot_train=data.train_items)
