"""What every run shares: the loaded CLIP, the data, the split, and the cached image features.

One :class:`Experiment` is built per process; zero-shot and every CoOp run of a sweep reuse its
model and features (frozen things are computed once).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..utils.atomic import remove_stale_temp_files
from ..utils.seed import configure_numerics
from ..model.clip_loader import load_clip
from ..data.dataset import Dataset, load_dataset
from ..data.folders import ClassInfo
from ..utils.errors import UserError
from ..features.encoder import EncodeOptions
from ..features.cache import FeatureCache, default_cache_dir
from ..features.left_out import test_field
from ..model.precision import apply_to_model, check_precision
from ..data.split import Item, Split, check_split_matches_data, read_split
from ..features.views import TestView, TrainCrop

log = logging.getLogger(__name__)


@dataclass
class TestSet:
    features: torch.Tensor  # [N, D]
    labels: torch.Tensor    # [N]
    skipped: Dict[str, str] = field(default_factory=dict)  # unreadable images left out
    index: List[int] = field(default_factory=list)  # position of each row in the split's test list


@dataclass
class TrainSet:
    features: torch.Tensor  # [U, N, D]: U distinct crops of each of N images
    labels: torch.Tensor    # [N]
    crop_of_epoch: List[int] = field(default_factory=list)  # epoch e uses features[crop_of_epoch[e]]
    items: List[Item] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)


class Experiment:
    """Load the model, data and split once; hand out image features on demand."""

    def __init__(self, model: str = "RN50", data_root: str | os.PathLike = "data",
                 split_file: str | os.PathLike = "splits/caltech101.json", device: str = "auto",
                 cache_dir: Optional[str | os.PathLike] = None, download_root: Optional[str] = None,
                 encode: Optional[EncodeOptions] = None, dataset: str | Dataset = "caltech101"):
        self.dataset: Dataset = load_dataset(dataset)  # the template and the prompts' words come from here
        self.image_root = self.dataset.find_image_root(data_root)
        self.split: Split = read_split(split_file)
        self.classes: List[ClassInfo] = self.dataset.list_classes(self.image_root)
        check_split_matches_data(self.split, self.image_root, self.classes)
        self.classnames = self.split.classnames
        self.encode = encode or EncodeOptions()
        self.model, self.preprocess = load_clip(model, device=device, download_root=download_root)
        self.info = self.model.clip_info
        self.device = next(self.model.parameters()).device
        configure_numerics(self.device)  # before anything is computed: fp32 without TF32, deterministic kernels
        check_precision(self.encode.precision, self.device)
        self.precision = self.encode.precision
        apply_to_model(self.model, self.precision)
        cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        if remove_stale_temp_files(cache_dir):
            log.info("removed temporary files that an interrupted run left in %s", cache_dir)
        self.cache = FeatureCache(cache_dir, self.info.sha256, self.encode, self.device.type)
        self.resolution = self.model.visual.input_resolution
        self._test: Optional[TestSet] = None
        self._once: Dict = {}

    def once(self, key, compute):
        """A frozen thing computed once for every run of this experiment (e.g. a template's text features,
        read by each baseline run of a sweep): ``compute()`` the first time ``key`` is asked for."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    def model_record(self) -> Dict:
        return {"name": self.info.name, "sha256": self.info.sha256, "path": self.info.path,
                "random_weights": self.info.random_weights,
                # s = exp(logit_scale) as stored in the weights: the scale of every logit (CLIP caps it at 100)
                "logit_scale_exp": float(self.model.logit_scale.detach().float().exp().cpu())}

    def inputs(self, relpaths: Sequence[str]) -> Dict:
        """What a run that read ``relpaths`` was made from (:mod:`coop.runs.provenance`)."""
        from .provenance import inputs_record

        weights = None if self.info.random_weights else self.info.sha256
        return inputs_record(self.split, weights, self.image_root, relpaths)

    def split_record(self) -> Dict:
        return {"file": self.split.path, "sha256": self.split.sha256, "image_root": str(self.image_root)}

    def test_set(self) -> TestSet:
        """Features of the whole test split (CLIP's preprocessing), computed once."""
        if self._test is None:
            rels = [it[0] for it in self.split.test]
            feats, index, bad = self.cache.test_features(self.model, self.image_root, rels, TestView(self.resolution),
                                                         leave_out=True)  # counted and named: test_left_out()
            if not index:
                raise UserError(f"no test image of {self.split.path} could be read under {self.image_root}")
            labels = torch.tensor([self.split.test[i][1] for i in index], device="cpu")
            self._test = TestSet(feats, labels, bad, list(index))
        return self._test

    def view_set(self, items: Sequence[Item], what: str) -> TestSet:
        """Features of ``items`` in CLIP's test view (a baseline's few-shot images, a few-shot validation set),
        from the cache. These are images a run learns from or chooses on, so an unreadable one is refused in one
        line (:func:`coop.features.left_out.refuse`), not left out; ``index`` gives each row's item."""
        feats, index, bad = self.cache.test_features(self.model, self.image_root, [it[0] for it in items],
                                                     TestView(self.resolution))
        if not index:
            raise UserError(f"none of the {what} images could be read under {self.image_root}")
        return TestSet(feats, torch.tensor([items[i][1] for i in index], device="cpu"), bad, list(index))

    def test_left_out(self) -> Dict:
        """The test images this process could not read, for every record: ``{"count", "listed", "images":
        {relpath: reason}}`` (:func:`coop.features.left_out.test_field`); ``n_test`` = listed - count."""
        test = self.test_set()
        return test_field([it[0] for it in self.split.test], test.skipped)

    def train_set(self, items: Sequence[Item], crop_of_epoch: Sequence[int], crop_seed: str) -> TrainSet:
        """Features of CoOp's training crops: epoch ``e`` sees crop ``crop_of_epoch[e]`` of each item
        (see :mod:`coop.features.views`); each distinct crop is encoded once."""
        rels = [it[0] for it in items]
        unique = sorted(set(crop_of_epoch))
        feats, index, bad = self.cache.crop_features(self.model, self.image_root, rels,
                                                     TrainCrop(self.resolution, crop_seed), unique)
        kept = [items[i] for i in index]
        if not kept:
            raise UserError("none of the few-shot training images could be read")
        pos = {c: p for p, c in enumerate(unique)}
        return TrainSet(feats, torch.tensor([it[1] for it in kept], device="cpu"), [pos[c] for c in crop_of_epoch], kept, bad)


def predictions_record(logits: torch.Tensor, test: TestSet) -> Dict[str, List[int]]:
    """Each test image's predicted class, by its position in the split's test list (with its label),
    so that two runs can be compared image by image (:mod:`coop.report.stats`)."""
    return {"index": list(test.index), "label": test.labels.tolist(), "pred": logits.argmax(dim=-1).tolist()}


def accuracy(logits: torch.Tensor, labels: torch.Tensor, classnames: Sequence[str]) -> Tuple[float, Dict[str, float], float]:
    """Top-1 accuracy (%), per-class accuracy (%) and their mean."""
    pred = logits.argmax(dim=-1)
    correct = (pred == labels).float()
    per_class = {}
    for c, name in enumerate(classnames):
        m = labels == c
        if m.any():
            per_class[name] = round(100.0 * correct[m].mean().item(), 4)
    acc = 100.0 * correct.mean().item()
    return round(acc, 4), per_class, round(sum(per_class.values()) / max(1, len(per_class)), 4)
