"""Zero-shot CLIP: the prompts' text features are the weights of a linear classifier.

For each class, ``encode_text("a photo of a {class}.")`` is normalised (the data set's template: CoOp's for
Caltech101, a dataset JSON's own; coop.data.folders.Dataset); an image is assigned to the
class whose text feature has the largest cosine with its normalised image feature (scaled by
``logit_scale.exp()``, which does not change the argmax). With several templates (a prompt
ensemble, as in the CLIP paper) the normalised features of each class's prompts are averaged and
normalised again.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..data.folders import underscores_as_spaces
from ..utils.errors import UserError
from ..runs.experiment import Experiment
from ..runs.protocol import PLACES, Clock, RunConfig, evaluation, record
from ..runs.results import zeroshot_result_path
from . import departures
from ..model.device import resolve_device
from ..model.precision import autocast, check_precision

log = logging.getLogger(__name__)

# CoOp's template for Caltech101 (CoOp's trainers/zsclip.py and trainers/coop.py: CUSTOM_TEMPLATES["Caltech101"]);
# a run takes its data set's (coop.data.folders.Dataset.template), which "single" names.
DEFAULT_TEMPLATE = "a photo of a {}."
# Prompt ensembles that --templates may name instead of giving templates literally.
TEMPLATE_SETS: Dict[str, List[str]] = {
    "single": [DEFAULT_TEMPLATE],  # the data set's own template (resolve_templates)
    # CoOp's ZeroshotCLIP2 (trainers/zsclip.py): the seven ImageNet templates the CLIP authors' notebook
    # singles out (IMAGENET_TEMPLATES_SELECT), plus the data set's own template (resolve_templates adds it).
    "ensemble": ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
                 "a {} in a video game.", "art of the {}.", "a photo of the small {}."],
}


def resolve_templates(spec: str, template: str = DEFAULT_TEMPLATE) -> List[str]:
    """A named set (``single``: ``template``, the data set's), or templates separated by ``|``, each with one ``{}``."""
    sets = {**TEMPLATE_SETS, "single": [template],
            "ensemble": TEMPLATE_SETS["ensemble"] + ([template] if template not in TEMPLATE_SETS["ensemble"] else [])}
    templates = sets.get(spec) or [t.strip() for t in spec.split("|") if t.strip()]
    bad = [t for t in templates if t.count("{}") != 1]
    if bad or not templates:
        raise UserError(f"--templates {spec!r}: use {', '.join(TEMPLATE_SETS)} or templates with one '{{}}' "
                        f"separated by '|', e.g. \"a photo of a {{}}.|a drawing of a {{}}.\"")
    return templates


@torch.no_grad()
def text_features(model: torch.nn.Module, classnames: Sequence[str], template: str, precision: str = "fp32",
                  prompt_name: Callable[[str], str] = underscores_as_spaces) -> torch.Tensor:
    """CLIP's text features [n_cls, D] of one template, as ``encode_text`` gives them (not normalised)."""
    import clip

    device = next(model.parameters()).device
    tokens = clip.tokenize([template.format(prompt_name(name)) for name in classnames]).to(device)
    with autocast(precision, device):
        return model.encode_text(tokens)


@torch.no_grad()
def zeroshot_weights(model: torch.nn.Module, classnames: Sequence[str], templates: Sequence[str],
                     precision: str = "fp32", prompt_name: Callable[[str], str] = underscores_as_spaces) -> torch.Tensor:
    """Normalised classifier weights [n_cls, D] from the prompts; ``prompt_name`` gives a class's words
    (the data set's, ``exp.dataset.prompt_name``; default CoOp's, ``_`` read as a space)."""
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
class ZeroShotConfig(RunConfig):
    templates: str = "single"
    prompt_variant: bool = False  # True: another prompt set for the report's prompt table (zeroshot_prompts/)

    KIND: ClassVar[str] = "zeroshot"
    NOT_IDENTITY: ClassVar[Tuple[str, ...]] = PLACES + ("prompt_variant",)

    def check(self) -> None:
        resolve_templates(self.templates)
        super().check()

    def result_path(self) -> Path:
        return zeroshot_result_path(self.results, self.templates, primary=not self.prompt_variant)

    def describe(self) -> str:
        return f"zero-shot ({self.templates} prompts)" if self.prompt_variant else "zero-shot"

    def run(self, exp) -> Dict:
        return run_zeroshot(self, exp)


def run_zeroshot(cfg: ZeroShotConfig, exp: Optional[Experiment] = None) -> Dict:
    """Evaluate zero-shot CLIP on the test split; returns the result record (not yet written)."""
    clock = Clock()
    resolve_templates(cfg.templates)  # a wrong --templates fails before the model loads
    exp = exp or cfg.experiment()
    templates = resolve_templates(cfg.templates, exp.dataset.template)
    test = exp.test_set()
    weights = exp.once(("zeroshot_weights", tuple(templates)), lambda: zeroshot_weights(
        exp.model, exp.classnames, templates, exp.precision, exp.dataset.prompt_name)).cpu()
    logits = exp.model.logit_scale.exp().item() * F.normalize(test.features, dim=-1) @ weights.t()
    ev = evaluation(logits, test, exp.classnames)
    log.info("zero-shot %s: top-1 %.2f%% on %d test images%s", exp.info.name, ev["accuracy"], len(test.labels),
             "  (RANDOM WEIGHTS: not a CLIP accuracy)" if exp.info.random_weights else "")
    return record(cfg, exp, clock, method="Zero-shot CLIP", shots=0, seed=None,
                  departures=departures.active_zeroshot(asdict(cfg)), skipped=test.skipped,
                  **ev, prompts=templates)


def evaluate_context(cfg: ZeroShotConfig, context_file: str) -> Dict:
    """Accuracy of a learned CoOp context (saved by ``scripts/train_coop.py``) on the test split."""
    from .context import load_context, read_context

    clock = Clock()
    saved = read_context(context_file)  # a wrong file is one clear line, before the model loads
    trained_in = saved["config"].get("precision", "fp32")
    if cfg.precision != trained_in:  # the run's own arithmetic, so the same context gives the same accuracy
        log.info("evaluating %s in %s, the precision it was trained in (not %s)", context_file, trained_in, cfg.precision)
        cfg = replace(cfg, precision=trained_in)
    check_precision(cfg.precision, resolve_device(cfg.device))
    exp = cfg.experiment()
    coop, saved = load_context(context_file, exp)
    test = exp.test_set()
    with torch.no_grad():
        logits = coop(test.features.to(exp.device)).cpu()
    ev = evaluation(logits, test, exp.classnames)
    log.info("context %s: top-1 %.2f%% on %d test images%s", context_file, ev["accuracy"], len(test.labels),
             "  (RANDOM WEIGHTS: not a CoOp accuracy)" if exp.info.random_weights else "")
    rec = record(cfg, exp, clock, method=f"CoOp context {context_file}", shots=saved["config"]["shots"],
                 seed=saved["config"]["seed"], skipped=test.skipped, **ev, context_file=str(context_file),
                 trained_with=saved["config"], transfer=saved.get("transfer"))  # other classes: coop.methods.context
    rec.update(kind="evaluation", run_id=saved.get("run_id"))  # the run that trained the context
    for key in ("identity", "settings", "departures"):  # its run_id is the training run's, not a hash of these
        rec.pop(key)
    return rec
