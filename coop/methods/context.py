"""A learned context on disk: saved with its run's id, read back with checks, rebuilt into CoOp."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Dict, Tuple

import torch

from ..utils.atomic import torch_save
from ..utils.errors import UserError
from ..runs.experiment import Experiment
from ..model.prompt_learner import CoOp


def save_or_fallback(payload: Dict, path: Path) -> None:
    """Save a learned context atomically; if that fails (full disk, a file where a folder should
    be, no permission), save it to the system's temp folder and say where, so no training is lost."""
    try:
        torch_save(payload, path)
    except OSError as e:
        fallback = Path(tempfile.gettempdir()) / f"coop-{payload['run_id']}-{path.name}"
        torch_save(payload, fallback)
        raise UserError(f"could not write {path} ({e.strerror or e}); the learned context was saved to "
                        f"{fallback} instead: free space or fix the folder, then rerun (or evaluate it with "
                        f"scripts/zeroshot.py --context {fallback})") from None


def read_context(path: str | Path) -> Dict:
    """A learned-context file, checked (it exists, is a context, and its run's JSON agrees)."""
    if not Path(path).is_file():
        raise UserError(f"--context {path} does not exist; give the .pt that scripts/train_coop.py wrote")
    with open(path, "rb") as f:
        if f.read(1) == b"{":
            raise UserError(f"--context {path} is a result JSON, not a learned context; pass the .pt file "
                            f"beside it ({Path(path).with_suffix('.pt').name})")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        saved["config"], saved["classnames"], saved["state"], saved["model"]["sha256"]  # the keys a context has
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise UserError(f"--context {path} is not a context file written by scripts/train_coop.py "
                        f"({type(e).__name__}: {first})") from None
    sibling = Path(path).with_suffix(".json")
    if sibling.is_file():  # a .pt and .json of two different runs are no finished run
        try:
            rec_id = json.loads(sibling.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            rec_id = None
        if rec_id != saved.get("run_id"):
            raise UserError(f"--context {path} and {sibling.name} beside it come from different runs "
                            f"(a run was interrupted between its two writes); rerun it with --force")
    return saved


def load_context(path: str | Path, exp: Experiment) -> Tuple[CoOp, Dict]:
    """Rebuild a trained CoOp from its saved context file, over ``exp``'s model and classes."""
    saved = read_context(path)
    cfg, classnames, state, model = saved["config"], saved["classnames"], saved["state"], saved["model"]
    sha = model["sha256"]
    if classnames != exp.classnames:
        raise UserError(f"--context {path} was trained on other classes than those of {exp.split.path}")
    if sha != exp.info.sha256:
        raise UserError(f"--context {path} was learned over the CLIP weights of {model.get('name')!r} "
                        f"(sha256 {sha[:12]}...), not those of --model {exp.info.name!r}; pass the same --model")
    coop = CoOp(exp.model, exp.classnames, n_ctx=cfg["n_ctx"], class_token_position=cfg["class_token_position"],
                ctx_init=cfg["ctx_init"], csc=cfg["csc"], block_mod=cfg["block_mod"],
                fast=cfg.get("fast", True)).to(exp.device)  # the run's own arithmetic: the same accuracy
    missing = set(coop.learned_state()) - set(state)
    if missing:
        raise UserError(f"--context {path} lacks {sorted(missing)}")
    with torch.no_grad():
        for name, p in coop.named_parameters():
            if p.requires_grad:
                p.copy_(state[name])
    return coop.eval(), saved
