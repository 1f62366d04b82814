"""One run protocol: what every kind of run (zero-shot, CoOp, each baseline, base-to-new) shares.

A kind of run is a dataclass deriving from :class:`RunConfig`. The base holds the fields every run has
(the model, the data, the split, how images are encoded, where things go) and the protocol the sweep,
the ETA, provenance and the scripts use, so that none of them asks *which* kind of run it holds:

- :meth:`RunConfig.identity` -- the settings that decide the numbers (places and speed knobs left out; the
  data set as ``name@hash`` of its settings that change numbers, :meth:`coop.data.folders.Dataset.identity`);
  :meth:`RunConfig.settings` -- the same without shots and seed (what a figure line shares);
- :meth:`RunConfig.result_path`, :meth:`RunConfig.describe`, :meth:`RunConfig.run`;
- :meth:`RunConfig.images` -- every image the run reads (its provenance);
- :meth:`RunConfig.work` -- how much encoding and training it costs, for the sweep's time left.

:func:`record` builds the part of a result record that every kind shares (identity, inputs, model,
split, environment, times); each kind adds its own keys (:func:`evaluation` for a test-set evaluation).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from ..model.precision import PRECISIONS
from ..utils.errors import UserError

# Fields that do not change what a run computes. Places are not settings: the split and the images are
# identified by their contents (coop.runs.provenance); workers and batch size change only the speed.
PLACES: Tuple[str, ...] = ("device", "results", "cache_dir", "clip_dir", "data_root", "split_file", "demo",
                           "workers", "encode_batch_size")


def positive_int(value: Any, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{flag} must be a positive integer, got {value!r}")


@dataclass
class RunConfig:
    """The fields and the protocol of every kind of run; a kind overrides what differs."""

    model: str = "RN50"
    data_root: str = "data"
    split_file: str = "splits/caltech101.json"
    dataset: str = "caltech101"  # a registered name or a dataset JSON (coop.data.dataset); identity: name@hash
    precision: str = "fp32"
    device: str = "auto"
    workers: Optional[int] = None
    encode_batch_size: int = 32
    results: str = "results"
    clip_dir: Optional[str] = None  # None: $COOP_CLIP_DIR or ~/.cache/clip
    cache_dir: Optional[str] = None
    demo: bool = False

    KIND: ClassVar[str] = ""  # the record's "kind"
    NOT_IDENTITY: ClassVar[Tuple[str, ...]] = PLACES

    # -- what the run is -------------------------------------------------------------------------------
    def check(self) -> None:
        """Clear errors for values a user may type wrong (a kind adds its own, then calls this)."""
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 0):
            raise UserError(f"--workers must be >= 0, got {self.workers!r}")
        positive_int(self.encode_batch_size, "--encode-batch-size")
        self.data()  # an unknown name or a malformed file: one line, before anything runs

    def check_split(self, split) -> None:
        """Checks that need the split (the prompt's length, enough few-shot images); none by default."""

    def identity(self) -> Dict[str, Any]:
        """The settings that decide the numbers: a record is reused only for the same identity. The data set
        enters as its name and a hash of what changes numbers (template, prompt words, classes), never as the
        path of its JSON file (a place)."""
        out = {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}
        out["dataset"] = self.data().identity()
        return out

    def data(self):
        """The run's data set record (:class:`coop.data.folders.Dataset`)."""
        from ..data.dataset import load_dataset

        return load_dataset(self.dataset)

    def settings(self) -> Dict[str, Any]:
        """The identity without shots and seed: the runs of one figure line share it (coop.runs.selection)."""
        return {k: v for k, v in self.identity().items() if k not in ("shots", "seed")}

    def result_path(self) -> Path:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, exp) -> Dict[str, Any]:
        """Make the run on ``exp`` (:class:`coop.runs.experiment.Experiment`); returns its record, not yet written."""
        raise NotImplementedError

    # -- what it reads and costs -----------------------------------------------------------------------
    def images(self, split) -> List[str]:
        """Every image the run reads (relative paths): the test split, and a kind's own."""
        return [it[0] for it in split.test]

    def extra_inputs(self) -> Dict[str, Any]:
        """Inputs of this run beyond the shared ones (coop.runs.provenance): a method kept outside the package
        names its own code here, so that changing it redoes the run like any change of code."""
        return {}

    def work(self, budget: "WorkBudget") -> float:
        """The run's cost in images through the image encoder (see coop.pipeline.eta), not counting the
        test split (the budget counts it once for the whole sweep)."""
        return 1.0

    def experiment(self):
        """The model, data and features this run stands on (built once per process by a sweep)."""
        from ..features.encoder import EncodeOptions
        from .experiment import Experiment

        return Experiment(self.model, self.data_root, self.split_file, self.device, self.cache_dir,
                          download_root=self.clip_dir, encode=EncodeOptions.of(self), dataset=self.data())


class WorkBudget:
    """What the runs of a sweep have already encoded, so that each crop counts once (coop.pipeline.eta)."""

    STEP_UNITS = 5.0  # one CoOp step of batch 32 costs about as much as encoding 5 images on 2 CPU cores
    CACHED_UNITS = 50.0  # a run on cached features only (a baseline): seconds

    def __init__(self, split) -> None:
        self.split = split
        self.seen: Dict[Tuple[str, str], int] = {}

    def crops(self, kind: str, rels: Sequence[str], need: int) -> float:
        """Images to encode so that each of ``rels`` has ``need`` crops of ``kind``; the rest were counted."""
        units = 0
        for rel in rels:
            have = self.seen.get((kind, rel), 0)
            units += max(0, need - have)
            self.seen[(kind, rel)] = max(have, need)
        return float(units)


class Clock:
    """When a run started: its record's ``started_at``, ``finished_at`` and ``wall_time_s``."""

    def __init__(self) -> None:
        from .provenance import now

        self.t0, self.started = time.time(), now()

    def fields(self) -> Dict[str, Any]:
        from .provenance import now

        return {"started_at": self.started, "finished_at": now(), "wall_time_s": round(time.time() - self.t0, 3)}


def evaluation(logits, test, classnames: Sequence[str]) -> Dict[str, Any]:
    """The record's part for one evaluation on a test set: accuracy, per class, every prediction."""
    from .experiment import accuracy, predictions_record

    acc, per_class, mean_pc = accuracy(logits, test.labels, classnames)
    return {"accuracy": acc, "mean_per_class_accuracy": mean_pc, "per_class_accuracy": per_class,
            "n_test": len(test.labels), "n_classes": len(classnames), "classnames": list(classnames),
            "test_predictions": predictions_record(logits, test)}


def record(cfg: RunConfig, exp, clock: Clock, *, method: str, shots: Optional[int], seed: Optional[int],
           departures: Sequence[str] = (), skipped: Optional[Dict[str, str]] = None,
           images: Optional[Sequence[str]] = None, **own: Any) -> Dict[str, Any]:
    """A result record: what every kind of run records, with the kind's ``own`` keys in the middle.

    ``images`` (default :meth:`RunConfig.images`) are hashed into the record's inputs; ``run_id``
    hashes them with the identity, so that a record is reused only for the same settings and inputs."""
    from .provenance import run_id
    from .provenance import environment

    inputs = {**exp.inputs(cfg.images(exp.split) if images is None else images), **cfg.extra_inputs()}
    identity = cfg.identity()
    if identity["dataset"] != exp.dataset.identity():
        raise ValueError(f"a run of dataset {identity['dataset']} made on an experiment of {exp.dataset.identity()}")
    return {
        "kind": cfg.KIND, "method": method, "shots": shots, "seed": seed,
        "run_id": run_id(identity, inputs), "inputs": inputs,
        **own,
        "precision": exp.precision, "departures": list(departures),
        "model": exp.model_record(), "random_weights": exp.info.random_weights, "demo": cfg.demo,
        "split": exp.split_record(), "dataset": exp.dataset.record(), "skipped_images": dict(skipped or {}),
        "test_left_out": exp.test_left_out(),  # unreadable test images: count, listed, names (n_test = listed - count)
        "config": asdict(cfg), "identity": identity, "settings": cfg.settings(),
        "environment": environment(exp.device), **clock.fields(),
    }
