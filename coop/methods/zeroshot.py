"""Zero-shot CLIP: the prompts' text features are the weights of a linear classifier.

For each class, ``encode_text("a photo of a {class}.")`` is normalised; an image is assigned to the
class whose text feature has the largest cosine with its normalised image feature (scaled by
``logit_scale.exp()``, which does not change the argmax). With several templates (a prompt
ensemble, as in the CLIP paper) the normalised features of each class's prompts are averaged and
normalised again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..data.caltech101 import prompt_name
from ..features.encoder import EncodeOptions
from ..utils.errors import UserError
from ..runs.experiment import Experiment, accuracy, predictions_record
from . import departures
from ..model.device import resolve_device
from ..model.precision import autocast, check_precision
from ..runs.provenance import run_id, run_images
from ..runs.results import environment, now

log = logging.getLogger(__name__)

# CoOp's template for Caltech101 (CoOp's trainers/zsclip.py and trainers/coop.py: CUSTOM_TEMPLATES["Caltech101"]).
DEFAULT_TEMPLATE = "a photo of a {}."
# Prompt ensembles that --templates may name instead of giving templates literally.
TEMPLATE_SETS: Dict[str, List[str]] = {
    "single": [DEFAULT_TEMPLATE],
    # The seven ImageNet templates the CLIP authors' prompt-engineering notebook singles out.
    "ensemble": ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
                 "a {} in a video game.", "art of the {}.", "a photo of the small {}."],
}


def resolve_templates(spec: str) -> List[str]:
    """A named set, or templates separated by ``|``, each with one ``{}``."""
    templates = TEMPLATE_SETS.get(spec) or [t.strip() for t in spec.split("|") if t.strip()]
    bad = [t for t in templates if t.count("{}") != 1]
    if bad or not templates:
        raise UserError(f"--templates {spec!r}: use {', '.join(TEMPLATE_SETS)} or templates with one '{{}}' "
                        f"separated by '|', e.g. \"a photo of a {{}}.|a drawing of a {{}}.\"")
    return templates


@torch.no_grad()
def zeroshot_weights(model: torch.nn.Module, classnames: Sequence[str], templates: Sequence[str],
                     precision: str = "fp32") -> torch.Tensor:
    """Normalised classifier weights [n_cls, D] from the prompts."""
    import clip

    device = next(model.parameters()).device
    weights = []
    for name in classnames:
        tokens = clip.tokenize([t.format(prompt_name(name)) for t in templates]).to(device)
        with autocast(precision, device):
            emb = model.encode_text(tokens)
        emb = F.normalize(emb.float(), dim=-1).mean(dim=0)
        weights.append(F.normalize(emb, dim=-1))
    return torch.stack(weights)


@dataclass
class ZeroShotConfig:
    model: str = "RN50"
    data_root: str = "data"
    split_file: str = "splits/caltech101.json"
    templates: str = "single"
    precision: str = "fp32"
    device: str = "auto"
    results: str = "results"
    clip_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    demo: bool = False
    workers: Optional[int] = None
    encode_batch_size: int = 32
    prompt_variant: bool = False  # True: another prompt set for the report's prompt table (zeroshot_prompts/)

    NOT_IDENTITY = ("device", "results", "cache_dir", "clip_dir", "data_root", "split_file", "demo", "workers",
                    "encode_batch_size", "prompt_variant")

    def check(self) -> None:
        resolve_templates(self.templates)
        if self.workers is not None and self.workers < 0:
            raise UserError(f"--workers must be >= 0, got {self.workers}")
        if self.encode_batch_size < 1:
            raise UserError(f"--encode-batch-size must be a positive integer, got {self.encode_batch_size}")

    def identity(self) -> Dict:
        return {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}


def run_zeroshot(cfg: ZeroShotConfig, exp: Optional[Experiment] = None) -> Dict:
    """Evaluate zero-shot CLIP on the test split; returns the result record (not yet written)."""
    t0, started = time.time(), now()
    templates = resolve_templates(cfg.templates)
    exp = exp or Experiment(cfg.model, cfg.data_root, cfg.split_file, cfg.device, cfg.cache_dir,
                            download_root=cfg.clip_dir, encode=EncodeOptions.of(cfg))
    test = exp.test_set()
    weights = zeroshot_weights(exp.model, exp.classnames, templates, exp.precision).cpu()
    logits = exp.model.logit_scale.exp().item() * F.normalize(test.features, dim=-1) @ weights.t()
    acc, per_class, mean_pc = accuracy(logits, test.labels, exp.classnames)
    log.info("zero-shot %s: top-1 %.2f%% on %d test images%s", exp.info.name, acc, len(test.labels),
             "  (RANDOM WEIGHTS: not a CLIP accuracy)" if exp.info.random_weights else "")
    inputs = exp.inputs(run_images(exp.split, cfg))
    return {
        "kind": "zeroshot", "method": "Zero-shot CLIP", "shots": 0, "seed": None,
        "run_id": run_id(cfg.identity(), inputs), "inputs": inputs,
        "accuracy": acc, "mean_per_class_accuracy": mean_pc, "per_class_accuracy": per_class,
        "n_test": len(test.labels), "n_classes": len(exp.classnames), "classnames": exp.classnames,
        "test_predictions": predictions_record(logits, test),
        "prompts": templates, "precision": exp.precision, "departures": departures.active_zeroshot(asdict(cfg)), "model": exp.model_record(), "random_weights": exp.info.random_weights,
        "demo": cfg.demo, "split": exp.split_record(), "skipped_images": test.skipped,
        "config": asdict(cfg), "identity": cfg.identity(), "environment": environment(exp.device),
        "started_at": started, "finished_at": now(), "wall_time_s": round(time.time() - t0, 3),
    }


def evaluate_context(cfg: ZeroShotConfig, context_file: str) -> Dict:
    """Accuracy of a learned CoOp context (saved by ``scripts/train_coop.py``) on the test split."""
    from .context import load_context, read_context

    t0, started = time.time(), now()
    saved = read_context(context_file)  # a wrong file is one clear line, before the model loads
    trained_in = saved["config"].get("precision", "fp32")
    if cfg.precision != trained_in:  # the run's own arithmetic, so the same context gives the same accuracy
        log.info("evaluating %s in %s, the precision it was trained in (not %s)", context_file, trained_in, cfg.precision)
        cfg = replace(cfg, precision=trained_in)
    check_precision(cfg.precision, resolve_device(cfg.device))
    exp = Experiment(cfg.model, cfg.data_root, cfg.split_file, cfg.device, cfg.cache_dir,
                     download_root=cfg.clip_dir, encode=EncodeOptions.of(cfg))
    coop, saved = load_context(context_file, exp)
    test = exp.test_set()
    with torch.no_grad():
        logits = coop(test.features.to(exp.device)).cpu()
    acc, per_class, mean_pc = accuracy(logits, test.labels, exp.classnames)
    log.info("context %s: top-1 %.2f%% on %d test images%s", context_file, acc, len(test.labels),
             "  (RANDOM WEIGHTS: not a CoOp accuracy)" if exp.info.random_weights else "")
    return {
        "kind": "evaluation", "method": f"CoOp context {context_file}", "shots": saved["config"]["shots"],
        "run_id": saved.get("run_id"), "inputs": exp.inputs(run_images(exp.split, cfg)),
        "seed": saved["config"]["seed"], "accuracy": acc, "mean_per_class_accuracy": mean_pc,
        "per_class_accuracy": per_class, "n_test": len(test.labels), "context_file": str(context_file),
        "classnames": exp.classnames, "test_predictions": predictions_record(logits, test),
        "trained_with": saved["config"], "model": exp.model_record(), "random_weights": exp.info.random_weights,
        "split": exp.split_record(), "skipped_images": test.skipped, "config": asdict(cfg),
        "environment": environment(exp.device), "started_at": started, "finished_at": now(),
        "wall_time_s": round(time.time() - t0, 3),
    }
