"""What a few-shot method on cached features is to the rest of the package: one :class:`Method` entry.

A method (the linear probe, Tip-Adapter, ...) is its module plus one line of :mod:`coop.methods.table`.
Its module computes (``fit``: few-shot features in, test predictions out) and describes itself with a
:class:`Method`: the name records and figures use, its results folder, its own settings with their
defaults (they enter its runs' identity, so changing one redoes the runs), the demo's caps, the
augmented views it trains on, its validation protocol, its figure style and its departures from its
original code. The sweep, ``run_all --baselines``, validation of records, the figure, the ETA and the
list of computing modules all read the table; none of them names a method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

PROTOCOLS = {
    "fewshot-val": "hyper-parameters searched on a few-shot validation set (K per class from our val part)",
    "validation-free": "fixed settings as published: no hyper-parameter search, no validation images",
}


@dataclass(frozen=True)
class Views:
    """Augmented views of each few-shot image a method trains on: RandomResizedCrop(``scale``), bicubic,
    flip, seeded by the image and ``seed_name`` only (every run that uses an image shares its views, and
    methods with the same ``seed_name`` and ``scale`` share them too); how many is the method's
    ``options[count_option]``. ``seed_name`` None: the crops of CoOp's run of the same seed (its cache),
    ``scale`` None: CoOp's crop scale."""

    seed_name: Optional[str]
    scale: Optional[Tuple[float, float]]
    count_option: str = "views"

    def crop(self, seed: int) -> Tuple[str, Optional[Tuple[float, float]]]:
        """The crop seed name and scale of a run of ``seed`` (None: CoOp's scale)."""
        return (str(seed) if self.seed_name is None else self.seed_name), self.scale


@dataclass(frozen=True)
class Method:
    key: str                 # --baselines name and the records' "baseline"
    name: str                # the records' "method": the figure's and the report's name
    name_zh: str             # the report's
    folder: str              # results/baselines/<folder>/
    fit: Callable[..., Dict[str, Any]]  # fit(data: FewShotData, options) -> {"predictions", "hyperparameters"}
    options: Dict[str, Any] = field(default_factory=dict)  # its own settings and their defaults
    demo: Dict[str, Any] = field(default_factory=dict)     # the demo's caps (random features: seconds, not hours)
    views: Optional[Views] = None   # None: CLIP's test view of each few-shot image
    protocol: str = "fewshot-val"   # a key of PROTOCOLS
    group: str = ""                 # a --baselines group that runs it with others ("tip": Tip-Adapter and -F)
    style: Tuple[str, str, str] = ("tab:gray", "-.", "x")  # the figure's colour, line and marker
    departures: Tuple[Any, ...] = ()  # coop.methods.departures.BaselineDeparture of this method alone
    source: str = ""                # the original code it follows (docs/baselines.md)

    def option_help(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
