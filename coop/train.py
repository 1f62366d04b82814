"""Training CoOp on cached image features with CoOp's recipe, and evaluating the last epoch.

Defaults are CoOp's (configs/trainers/CoOp/rn50_ep*.yaml and Dassl's optimiser/scheduler): SGD,
lr 0.002, momentum 0.9, weight decay 5e-4, batch 32; one warm-up epoch at a constant 1e-5, then
cosine annealing with ``T_max`` = the number of epochs (Dassl's ``ConstantWarmupScheduler`` around
``CosineAnnealingLR``); 50 epochs at 1 shot, 100 at 2-4, 200 at 8-16. An epoch is one pass over
the few-shot set in batches of 32, the incomplete last batch dropped when there is at least one
full batch (Dassl's train loader). The model of the last epoch is evaluated on the whole test
split: nothing is chosen by test accuracy.
"""
from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .atomic import torch_save
from .errors import UserError
from .experiment import Experiment, TrainSet, accuracy
from .prompt_learner import CLASS_TOKEN_POSITIONS, CoOp
from .block_mods import BLOCK_MODS
from . import departures
from .data import prompt_name
from .encoder import EncodeOptions
from .precision import PRECISIONS, autocast, grad_scaler
from .provenance import run_id, run_images
from .results import coop_result_path, environment, method_name, now
from .seed import set_seed
from .split import SAMPLINGS, fewshot

log = logging.getLogger(__name__)


def coop_epochs(shots: int) -> int:
    """CoOp's epochs for a number of shots: 50 at 1, 100 at 2 and 4, 200 at 8 and 16."""
    return 50 if shots <= 1 else 100 if shots <= 4 else 200


@dataclass
class TrainConfig:
    shots: int = 1
    seed: int = 1
    model: str = "RN50"
    data_root: str = "data"
    split_file: str = "splits/caltech101.json"
    n_ctx: int = 16
    class_token_position: str = "end"
    ctx_init: Optional[str] = None
    csc: bool = False
    block_mod: Optional[str] = None
    epochs: Optional[int] = None  # None: CoOp's for the number of shots
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 32
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    views: Optional[int] = None  # None: a fresh crop of every image in every epoch (CoOp); N: N cached crops, cycled
    crop_seed: Optional[int] = None  # None: the run's seed
    independent_crops: bool = False  # True: no crop shared with the runs of other shots
    sampling: str = "nested"  # few-shot sets: "nested" across shots, or "coop" (Dassl's random.sample)
    precision: str = "fp32"
    fast: bool = True
    device: str = "auto"
    workers: Optional[int] = None
    encode_batch_size: int = 32
    results: str = "results"
    cache_dir: Optional[str] = None
    demo: bool = False

    def __post_init__(self) -> None:
        if self.epochs is None:
            self.epochs = coop_epochs(self.shots)

    def check(self) -> None:
        """Clear errors for values a user may type wrong."""
        if self.class_token_position not in CLASS_TOKEN_POSITIONS:
            raise UserError(f"--class-token-position {self.class_token_position!r} is unknown; "
                            f"use one of {', '.join(CLASS_TOKEN_POSITIONS)}")
        if self.block_mod is not None and self.block_mod not in BLOCK_MODS:
            raise UserError(f"--block-mod {self.block_mod!r} is unknown; use one of {', '.join(BLOCK_MODS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
        if self.sampling not in SAMPLINGS:
            raise UserError(f"--sampling {self.sampling!r} is unknown; use one of {', '.join(SAMPLINGS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 0):
            raise UserError(f"--workers must be >= 0, got {self.workers!r}")
        if self.crop_seed is not None and self.crop_seed < 0:
            raise UserError(f"--crop-seed must be >= 0, got {self.crop_seed}")
        for name in ("shots", "n_ctx", "epochs", "batch_size", "encode_batch_size") + (("views",) if self.views is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0, got {self.seed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr must be a positive number, got {self.lr}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise UserError(f"--warmup-epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}")
        if self.ctx_init:  # else CoOp raises a ValueError (a traceback) once everything is loaded
            from .clip_loader import _clip

            n = len(_clip().clip._tokenizer.encode(prompt_name(self.ctx_init).strip()))
            if n != self.n_ctx:
                raise UserError(f"--ctx-init {self.ctx_init!r} is {n} tokens but --n-ctx is {self.n_ctx}; "
                                f"pass --n-ctx {n}")

    # Fields that do not change what a run computes; the rest must match for a result to be reused.
    # Places are not settings: the split and the images are identified by their contents (coop.provenance).
    NOT_IDENTITY = ("device", "results", "cache_dir", "data_root", "split_file", "demo", "workers",
                    "encode_batch_size")

    def identity(self) -> Dict:
        return {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}


def crop_plan(cfg: TrainConfig) -> Tuple[str, List[int]]:
    """The crop seed and, per epoch, the index of the crop each image is seen through.

    Fresh mode (CoOp): crop ``e`` in epoch ``e`` -- no crop repeats within a run. ``--views N``
    (approximate): crop ``e mod N``, so each of the N crops is used before any repeats.
    """
    seed = cfg.seed if cfg.crop_seed is None else cfg.crop_seed
    name = f"{seed}-shots{cfg.shots}" if cfg.independent_crops else str(seed)
    if cfg.views is None:
        return name, list(range(cfg.epochs))
    return name, [e % cfg.views for e in range(cfg.epochs)]


def augmentation_record(cfg: TrainConfig) -> Dict:
    """What the run's training images went through (recorded in its JSON)."""
    name, plan = crop_plan(cfg)
    return {"mode": "fresh" if cfg.views is None else "views", "approximate": cfg.views is not None,
            "crops_per_image": len(set(plan)), "views": cfg.views, "crop_seed": name,
            "independent_crops": cfg.independent_crops,
            "transform": "RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bicubic) + hflip(p=0.5) + CLIP normalize"}


def training_set(exp: Experiment, cfg: TrainConfig) -> TrainSet:
    """The run's few-shot images with the features of the crops each epoch sees."""
    crop_seed, plan = crop_plan(cfg)
    return exp.train_set(fewshot(exp.split.train, cfg.shots, cfg.seed, cfg.sampling), plan, crop_seed)


def describe_augmentation(cfg: TrainConfig) -> str:
    a = augmentation_record(cfg)
    if a["mode"] == "fresh":
        return f"fresh crops: {a['crops_per_image']} per image, one per epoch (as CoOp)"
    return f"APPROXIMATE: {a['views']} cached crops per image, cycled over {cfg.epochs} epochs (--views)"


def lr_at_epoch(epoch: int, cfg: TrainConfig) -> float:
    """Learning rate of ``epoch`` (0-based): constant warm-up, then cosine with T_max = epochs."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / cfg.epochs))


def batches(n: int, batch_size: int, generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """A shuffled epoch of indices; the incomplete last batch is dropped when a full one exists."""
    perm = torch.randperm(n, generator=generator)
    out = [perm[i: i + batch_size] for i in range(0, n, batch_size)]
    if n >= batch_size and len(out[-1]) < batch_size:
        out.pop()
    return out


class TrainingDiverged(UserError):
    pass


def fit(coop: CoOp, train: TrainSet, cfg: TrainConfig, progress: bool = True) -> Dict[str, List[float]]:
    """Train ``coop`` in place on cached features; returns the per-epoch history."""
    device = coop.ctx.device
    feats = train.features.to(device)  # [U, N, D]: U distinct crops of N images
    labels = train.labels.to(device)
    N = feats.shape[1]
    if len(train.crop_of_epoch) < cfg.epochs:
        raise ValueError(f"the training set has crops for {len(train.crop_of_epoch)} epochs, not {cfg.epochs}")
    params = coop.trainable_parameters()
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = grad_scaler(cfg.precision, device)
    history: Dict[str, List[float]] = {"epoch": [], "loss": [], "train_acc": [], "lr": []}
    bar = tqdm(range(cfg.epochs), desc=f"CoOp {cfg.shots} shot{'s' if cfg.shots != 1 else ''}, seed {cfg.seed}", unit="epoch",
               disable=not progress, mininterval=1.0)
    for epoch in bar:
        lr = lr_at_epoch(epoch, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum, correct, seen = 0.0, 0, 0
        crop = train.crop_of_epoch[epoch]
        for step, idx in enumerate(batches(N, cfg.batch_size)):
            idx = idx.to(device)
            x, y = feats[crop, idx], labels[idx]  # this epoch's crop of each image in the batch
            with autocast(cfg.precision, device):
                logits = coop(x)
                loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"({cfg.shots} shots, seed {cfg.seed}); no result was written. "
                    f"Try a smaller --lr (now {cfg.lr}) or check the model weights")
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:  # CoOp's amp on CUDA: fp16 autocast with a gradient scaler
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(-1) == y).sum().item()
            seen += len(idx)
        history["epoch"].append(epoch + 1)
        history["loss"].append(round(loss_sum / seen, 6))
        history["train_acc"].append(round(100.0 * correct / seen, 4))
        history["lr"].append(lr)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", train_acc=f"{100.0 * correct / seen:.1f}%", refresh=False)
    if not all(torch.isfinite(p).all() for p in params):  # the last step is after the last loss check
        raise TrainingDiverged(
            f"the learned parameters became inf/nan in the last step, though the loss was finite "
            f"({cfg.shots} shots, seed {cfg.seed}); no result was written. Try a smaller --lr (now {cfg.lr})")
    return history


@torch.no_grad()
def nearest_words(coop: CoOp, clip_model: torch.nn.Module, k: int = 3) -> List[List[Tuple[str, float]]]:
    """For each learned context vector, the ``k`` vocabulary tokens nearest in Euclidean distance
    (the CoOp paper's way of reading a learned context)."""
    import clip

    tok = clip.clip._tokenizer
    vocab = clip_model.token_embedding.weight.float()  # [V, d]
    ctx = coop.ctx.detach().float()
    ctx = ctx if ctx.dim() == 2 else ctx.mean(0)  # class-specific: the class average
    dist = torch.cdist(ctx, vocab)  # [n_ctx, V]
    out = []
    for row in dist:
        d, idx = row.topk(k, largest=False)
        words = [bytearray(tok.byte_decoder[c] for c in tok.decoder[i]).decode("utf-8", "replace")
                 .replace("</w>", "") for i in idx.tolist()]
        out.append([(w, round(v, 4)) for w, v in zip(words, d.tolist())])
    return out


def run_coop(cfg: TrainConfig, exp: Optional[Experiment] = None, progress: bool = True) -> Dict:
    """Train one CoOp run, save its context, and return the result record (not yet written)."""
    cfg.check()
    t0, started = time.time(), now()
    exp = exp or Experiment(cfg.model, cfg.data_root, cfg.split_file, cfg.device, cfg.cache_dir,
                            encode=EncodeOptions.of(cfg))
    if exp.precision != cfg.precision:
        raise ValueError(f"the experiment runs in {exp.precision}, the run asks for {cfg.precision}")
    log.info("CoOp %d shot%s, seed %d: %s; %s", cfg.shots, "s" if cfg.shots != 1 else "", cfg.seed,
             describe_augmentation(cfg), cfg.precision)
    train = training_set(exp, cfg)
    test = exp.test_set()
    t_features = time.time() - t0

    set_seed(cfg.seed)  # after feature extraction: the run's randomness depends on the seed only
    coop = CoOp(exp.model, exp.classnames, n_ctx=cfg.n_ctx, class_token_position=cfg.class_token_position,
                ctx_init=cfg.ctx_init, csc=cfg.csc, block_mod=cfg.block_mod, fast=cfg.fast).to(exp.device)
    t1 = time.time()
    history = fit(coop, train, cfg, progress)
    t_train = time.time() - t1

    coop.eval()
    with torch.no_grad():
        logits = coop(test.features.to(exp.device)).cpu()
    acc, per_class, mean_pc = accuracy(logits, test.labels, exp.classnames)
    log.info("CoOp %d-shot seed %d: top-1 %.2f%% (last epoch, %d test images)%s", cfg.shots, cfg.seed, acc,
             len(test.labels), "  (RANDOM WEIGHTS: not a CoOp accuracy)" if exp.info.random_weights else "")

    result_path = coop_result_path(cfg.results, cfg.shots, cfg.seed, cfg.block_mod)
    context_path = result_path.with_suffix(".pt")
    inputs = exp.inputs(run_images(exp.split, cfg))
    rid = run_id(cfg.identity(), inputs)
    save_or_fallback({"config": asdict(cfg), "classnames": exp.classnames, "model": exp.model_record(),
                      "state": coop.learned_state(), "run_id": rid}, context_path)
    return {
        "kind": "coop", "method": method_name(cfg.block_mod), "shots": cfg.shots, "seed": cfg.seed,
        "run_id": rid, "inputs": inputs,
        "accuracy": acc, "mean_per_class_accuracy": mean_pc, "per_class_accuracy": per_class,
        "n_test": len(test.labels), "n_classes": len(exp.classnames), "classnames": exp.classnames,
        "n_trainable": sum(p.numel() for p in coop.trainable_parameters()),
        "augmentation": augmentation_record(cfg), "precision": cfg.precision,
        "departures": departures.active(asdict(cfg)),
        "history": history, "nearest_words": nearest_words(coop, exp.model),
        "model": exp.model_record(), "random_weights": exp.info.random_weights, "demo": cfg.demo,
        "split": exp.split_record(), "fewshot_train": train.items,
        "skipped_images": {**train.skipped, **test.skipped}, "context_file": context_path.name,
        "config": asdict(cfg), "identity": cfg.identity(), "environment": environment(exp.device),
        "started_at": started, "finished_at": now(),
        "time_s": {"features": round(t_features, 3), "train": round(t_train, 3)},
        "wall_time_s": round(time.time() - t0, 3),
    }


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
