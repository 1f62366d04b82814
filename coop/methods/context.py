"""A learned context on disk: saved with its run's id, read back with checks, rebuilt into CoOp."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from ..runs.results import SCHEMA
from ..utils.atomic import torch_save, write_json
from ..utils.errors import UserError
from ..runs.experiment import Experiment
from ..model.prompt_learner import CoOp
from ..runs.pairing import record_run_id


def kept_in_temp(payload: Dict, record: Optional[Dict], context_path: Path, result_path: Path,
                 error: BaseException) -> UserError:
    """After training, something failed (a full disk -- torch.save raises RuntimeError --, a folder
    that cannot be written, an image that became unreadable): save the learned context and, when it
    was made, the result record to the system's temp folder, and return the one-line error naming them."""
    tmp = Path(tempfile.gettempdir())
    stem = f"coop-{payload.get('run_id') or 'unfinished'}-{context_path.stem}"
    saved = []
    try:
        torch_save(payload, tmp / f"{stem}.pt")
        saved.append(f"the learned context to {tmp / f'{stem}.pt'}")
        if record is not None:
            write_json(tmp / f"{stem}.json", {"schema": SCHEMA, **record, "complete": True})
            saved.append(f"the result to {tmp / f'{stem}.json'}")
    except Exception as e2:  # the temp folder fails too: say so rather than claim a save
        saved.append(f"nothing (the temp folder failed too: {e2})")
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0] if str(error) else type(error).__name__
    return UserError(f"could not finish the run's files in {context_path.parent} ({reason}); saved "
                     f"{' and '.join(saved)}. Free space or fix the folder, then copy them to {context_path.name} "
                     f"and {result_path.name} there, or rerun")


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
        if isinstance(saved, dict) and (saved.get("config") or {}).get("protocol") == "base2new":
            raise UserError(f"--context {path} was learned in the base-to-new protocol "
                            f"({saved['config'].get('method')}, on the base classes): it is evaluated on both halves "
                            f"by its own run (bash scripts/run_all.sh --protocol base2new), not on all classes here")
        saved["config"], saved["classnames"], saved["state"], saved["model"]["sha256"]  # the keys a context has
    except UserError:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise UserError(f"--context {path} is not a context file written by scripts/train_coop.py "
                        f"({type(e).__name__}: {first})") from None
    sibling = Path(path).with_suffix(".json")
    if sibling.is_file():  # a .pt and .json of two different runs are no finished run (coop.runs.pairing)
        if record_run_id(sibling) != saved.get("run_id"):
            raise UserError(f"--context {path} and {sibling.name} beside it come from different runs "
                            f"(a run was interrupted between its two writes); rerun it with --force")
    return saved


def transfer(path: str | Path, saved: Dict, classnames: Sequence[str], split_path: str) -> Optional[Dict]:
    """None when a context is evaluated on the classes it was trained on; else what its record says of the
    transfer. A shared context (one set of vectors for every class) carries over to other class names --
    the cross-dataset evaluation CoOp and CoCoOp report (trained on ImageNet, tested on ten other data
    sets); a class-specific one (``--csc``) has no vectors for a class it never saw, and is refused."""
    trained = list(saved["classnames"])
    if trained == list(classnames):
        return None
    if saved["config"].get("csc"):
        raise UserError(f"--context {path} is class-specific (--csc: one context per class of the {len(trained)} it "
                        f"was trained on), so it has no context for the classes of {split_path}; only a shared "
                        f"context carries over to other classes: evaluate it on its own split, or train without --csc")
    return {"trained_on": trained, "n_trained": len(trained), "n_evaluated": len(classnames),
            "in_both": len(set(trained) & set(classnames)),
            "note": "a shared context evaluated on other classes than it was trained on (cross-dataset transfer)"}


def load_context(path: str | Path, exp: Experiment) -> Tuple[CoOp, Dict]:
    """Rebuild a trained CoOp from its saved context file, over ``exp``'s model and classes (those it was
    trained on, or -- a shared context -- others: ``saved["transfer"]``, :func:`transfer`)."""
    saved = read_context(path)
    cfg, classnames, state, model = saved["config"], saved["classnames"], saved["state"], saved["model"]
    sha = model["sha256"]
    saved["transfer"] = transfer(path, saved, exp.classnames, exp.split.path)
    if sha != exp.info.sha256:
        raise UserError(f"--context {path} was learned over the CLIP weights of {model.get('name')!r} "
                        f"(sha256 {sha[:12]}...), not those of --model {exp.info.name!r}; pass the same --model")
    coop = CoOp(exp.model, exp.classnames, n_ctx=cfg["n_ctx"], class_token_position=cfg["class_token_position"],
                ctx_init=cfg["ctx_init"], csc=cfg["csc"], block_mod=cfg["block_mod"],
                fast=cfg.get("fast", True), prompt_name=exp.dataset.prompt_name,
                ).to(exp.device)  # the run's own arithmetic: the same accuracy
    missing = set(coop.learned_state()) - set(state)
    if missing:
        raise UserError(f"--context {path} lacks {sorted(missing)}")
    with torch.no_grad():
        for name, p in coop.named_parameters():
            if p.requires_grad:
                p.copy_(state[name])
    return coop.eval(), saved
