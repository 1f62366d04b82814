"""Shared fixtures: a synthetic Caltech101 tree, a tiny random CLIP, the real data when present."""
from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

ROOT = Path(__file__).resolve().parents[1]
# The real data for the tests that use it: $COOP_TEST_DATA, else ../shared/data beside the project.
SHARED_DATA = Path(os.environ.get("COOP_TEST_DATA") or ROOT.parent / "shared" / "data")
REAL_IMAGES = SHARED_DATA / "caltech101" / "101_ObjectCategories"
COOP_SPLIT = SHARED_DATA / "split_zhou_Caltech101.json"

def _real_caltech101() -> str:
    """'' when SHARED_DATA holds the real Caltech101 and CoOp's split (checked, not assumed), else why not:
    $COOP_TEST_DATA pointing at other data makes these tests skip, never fail."""
    import hashlib

    from coop.methods.departures import COOP_SPLIT_SHA256  # CoOp's published file

    if not REAL_IMAGES.is_dir():
        return f"real Caltech101 not at {REAL_IMAGES}"
    try:
        digest = hashlib.sha256(COOP_SPLIT.read_bytes()).hexdigest()
    except OSError:
        return f"CoOp's split not at {COOP_SPLIT}"
    if digest != COOP_SPLIT_SHA256:
        return f"{COOP_SPLIT} is not CoOp's published split (sha256 {digest[:12]}...)"
    folders = sum(1 for d in REAL_IMAGES.iterdir() if d.is_dir())
    if folders != 102:
        return f"{REAL_IMAGES} has {folders} folders, not Caltech101's 102"
    return ""


needs_real_data = pytest.mark.skipif(bool(_real_caltech101()), reason=_real_caltech101() or "real data present")

torch.set_num_threads(min(2, torch.get_num_threads()))


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module, so tests call its ``main(argv)`` in-process."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_logging():
    """The scripts reconfigure the root logger onto the (captured) stderr; put it back."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A synthetic Caltech101 tree (10 classes x 12 images); returns its 101_ObjectCategories."""
    from coop.data.synthetic import make_synthetic_data

    return make_synthetic_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def synthetic_split(synthetic_root, tmp_path_factory):
    """The split of the synthetic tree, written to a file and read back."""
    from coop.data.split import make_split, read_split, write_split

    path = tmp_path_factory.mktemp("splits") / "synthetic.json"
    write_split(make_split(synthetic_root), path)
    return read_split(path)


@pytest.fixture
def tiny_clip():
    """A fresh random tiny CLIP (function scope: tests may freeze or train around it)."""
    from coop.model.clip_loader import random_clip

    return random_clip("tiny")


def write_fake_result(path, rec: dict) -> None:
    """Write a made-up record as a finished run: a run_id and inputs, and for CoOp the learned
    context beside it carrying the same run_id (what coop.runs.results.read_result requires)."""
    from coop.runs.results import write_result

    from coop.runs.provenance import run_id

    rec = {"inputs": {}, "identity": {}, **rec}
    rec.setdefault("run_id", run_id(rec["identity"], rec["inputs"]))
    if rec["kind"] == "coop":
        ctx = Path(path).with_suffix(".pt")
        ctx.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"run_id": rec["run_id"], "state": {}}, ctx)
        rec["context_file"] = ctx.name
    write_result(path, rec)
