"""What a result was made from, so that it is reused only when nothing it depends on has changed.

A run's ``inputs`` are the SHA256 of its split file, of the CLIP weights, of the *content* of every
image it read (the test split, plus its few-shot training images), and of the code that computes
numbers. Its ``run_id`` hashes its settings (``identity``) and these inputs; the result JSON and the
learned context ``.pt`` both carry it, so a pair from two different runs is never taken for one.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import torch

from ..utils.hashing import cached_file_digest, sha256_json, source_sha256
from ..utils.memory import peak_rss_mb
from ..utils.seed import numerics_record

log = logging.getLogger(__name__)

# The modules whose code decides a run's numbers: every module of these packages (a new method or data
# module is counted the day it is added), and a few more; less the presentation ones below (changing how
# a figure looks, how data is downloaded or which device is picked does not make a result stale).
COMPUTING_PACKAGES = ("data", "features", "model", "methods")
COMPUTING_EXTRA = ("runs.experiment", "utils.hashing", "utils.seed")
PRESENTATION = ("data.archive", "data.checksums", "data.download", "data.synthetic", "model.device", "methods.context",
                "methods.departures", "methods.method", "methods.table")


def computing_modules() -> List[str]:
    from ..utils.hashing import PACKAGE_DIR

    names = [f"{pkg}.{p.stem}" for pkg in COMPUTING_PACKAGES for p in sorted((PACKAGE_DIR / pkg).glob("*.py"))
             if p.stem != "__init__"]
    return [n for n in names if n not in PRESENTATION] + list(COMPUTING_EXTRA)


def _digest_or_state(path: Path) -> str:
    """An image's content hash; for an image that cannot be read (gone, no permission), its state:
    the run left it out, and reading it again later (fixed permissions) must make the run stale."""
    try:
        return cached_file_digest(path)
    except OSError as e:
        return f"unreadable:{type(e).__name__}"


def images_sha256(image_root: Path, relpaths: Iterable[str]) -> str:
    """One hash over the paths and contents of the images a run read."""
    h = hashlib.sha256()
    for rel in sorted(set(relpaths)):
        h.update(f"{rel}|{_digest_or_state(Path(image_root) / rel)}\n".encode())
    return h.hexdigest()


def code_sha256() -> str:
    """Hash of the computing modules' source, the installed ``clip`` package's code and our version."""
    from .. import __version__

    return source_sha256(computing_modules(), salt=__version__)


def inputs_record(split, weights_sha256: Optional[str], image_root: Path, relpaths: Iterable[str]) -> Dict[str, Any]:
    """``split`` is the run's :class:`~coop.data.split.Split`; ``relpaths`` every image the run read.
    ``test_images_sha256`` (the test split's images alone) is shared by every run of one data set,
    so that records made from other data are told apart (:mod:`coop.runs.selection`)."""
    return {"split_sha256": split.sha256, "weights_sha256": weights_sha256,
            "images_sha256": images_sha256(image_root, relpaths),
            "test_images_sha256": images_sha256(image_root, [it[0] for it in split.test]),
            "code_sha256": code_sha256()}


def run_id(identity: Dict[str, Any], inputs: Dict[str, Any]) -> str:
    return sha256_json({"identity": identity, "inputs": inputs})[:20]


INPUT_NAMES = {"split_sha256": "the split file", "weights_sha256": "the CLIP weights",
               "images_sha256": "the images (their content)", "test_images_sha256": "the test images (their content)",
               "code_sha256": "the code that computes results",
               "method_code_sha256": "the method's own code (a module outside the package)"}


def changed_inputs(recorded: Dict[str, Any], expected: Dict[str, Any]) -> list:
    """Names of the inputs that differ; a ``None`` expected value (e.g. random weights) is not compared."""
    return [INPUT_NAMES[k] for k in INPUT_NAMES if expected.get(k) is not None and recorded.get(k) != expected[k]]


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device | str) -> Dict[str, Any]:
    """What a rerun needs to know about where this one ran."""
    from .. import __version__

    return {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": _version("torchvision"), "clip-anytorch": _version("clip-anytorch"),
                     "numpy": _version("numpy"), "coop-caltech101": __version__},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "numerics": numerics_record(device),
        "platform": platform.platform(),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "peak_rss_mb": round(peak_rss_mb(), 1),  # this process's so far: in a sweep, growth run after run shows
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
