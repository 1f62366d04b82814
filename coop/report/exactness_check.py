"""The exactness claims of sections 5.3 and 9.2, measured and handed in with the report.

    rows = exactness_rows(model, classnames)   # scripts/make_figures.py -> report/figures/exactness_check.md

- the fast text path (truncated at the last EOT, the shared [SOS] v1..vM prefix computed once) against the
  plain one (all 77 positions through every block, as ``encode_text``): the largest relative error of the
  text features and of the context's gradient, in fp32 and in fp64 (a float64 copy of the model);
- each block modification at step 0: its text features ``torch.equal`` to plain CoOp's with the same
  context, and which of its parameters a first backward pass gives a non-zero gradient (only the
  adapter's gate ``gate`` / LoRA's ``b``: the others are multiplied by that zero).
The loss is the cross-entropy of random unit image features against the classes (labels 0..C-1, cycled).
"""
from __future__ import annotations

import copy
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

from ..model.block_mods import BLOCK_MODS
from ..model.prompt_learner import CoOp


def _features_and_grad(coop: CoOp, fast: bool, image: torch.Tensor, labels: torch.Tensor):
    coop.zero_grad(set_to_none=True)
    text = coop.text_features(fast=fast)
    logits = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t() * 100.0
    F.cross_entropy(logits, labels).backward()
    return text.detach(), coop.ctx.grad.detach().clone()


def _in_float64(model: torch.nn.Module, classnames: Sequence[str], ctx: torch.Tensor, image: torch.Tensor,
                labels: torch.Tensor) -> Dict:
    """The same comparison on a float64 copy of the model and the same context: what is left is rounding.
    CLIP's LayerNorm computes in fp32 whatever its input (for fp16 weights); for this measurement it runs as
    torch's own, in the input's dtype, and is restored after."""
    import clip.model

    wide = copy.deepcopy(model).double()
    own = clip.model.LayerNorm.forward
    clip.model.LayerNorm.forward = torch.nn.LayerNorm.forward
    try:
        coop = CoOp(wide, classnames).double()
        with torch.no_grad():
            coop.ctx.copy_(ctx.double())
        fast_t, fast_g = _features_and_grad(coop, True, image.double(), labels)
        full_t, full_g = _features_and_grad(coop, False, image.double(), labels)
    finally:
        clip.model.LayerNorm.forward = own
    return {"dtype": "float64", "features": _rel(fast_t, full_t), "grad": _rel(fast_g, full_g)}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def exactness_rows(model: torch.nn.Module, classnames: Sequence[str], seed: int = 0) -> Dict[str, List[Dict]]:
    g = torch.Generator().manual_seed(seed)
    dim = model.text_projection.shape[1]
    image = torch.randn(len(classnames), dim, generator=g)
    labels = torch.arange(len(classnames))
    torch.manual_seed(seed)
    coop = CoOp(model, classnames)
    fast_t, fast_g = _features_and_grad(coop, True, image, labels)
    full_t, full_g = _features_and_grad(coop, False, image, labels)
    paths = [{"dtype": "float32", "features": _rel(fast_t, full_t), "grad": _rel(fast_g, full_g)}]
    paths.append(_in_float64(model, classnames, coop.ctx, image, labels))
    mods = []
    for name in BLOCK_MODS:
        torch.manual_seed(seed)
        base = CoOp(model, classnames)
        mod = CoOp(model, classnames, block_mod=name)
        with torch.no_grad():
            mod.ctx.copy_(base.ctx)
            same = torch.equal(base.text_features(), mod.text_features())
        _features_and_grad(mod, True, image, labels)
        moved = sorted({n.split(".mod.")[-1] for n, p in mod.named_parameters()
                        if n != "ctx" and p.requires_grad and p.grad is not None and bool(p.grad.abs().sum() > 0)})
        mods.append({"mod": name, "equal": same, "nonzero_grad": moved, "ctx_grad": bool(mod.ctx.grad.abs().sum() > 0)})
    return {"paths": paths, "mods": mods, "n_classes": len(classnames)}


def exactness_markdown(rows: Dict[str, List[Dict]], model_name: str) -> str:
    lines = [f"模型 {model_name}（RN50 的结构、随机权重），{rows['n_classes']} 个类，M = 16；损失是随机单位图像特征对各类的交叉熵（`coop.report.exactness_check`）。", "",
             "| 比较 | 精度 | 文本特征的最大相对误差 | 上下文梯度的最大相对误差 |", "|---|---|---:|---:|"]
    for r in rows["paths"]:
        lines.append(f"| 快速路径 vs 完整 77 个位置 | {r['dtype']} | {r['features']:.1e} | {r['grad']:.1e} |")
    lines += ["", "| 块修改 | 第 0 步文本特征与 CoOp `torch.equal` | 第一次反向传播后梯度非零的修改参数 | 上下文梯度非零 |", "|---|---|---|---|"]
    for r in rows["mods"]:
        lines.append(f"| {r['mod']} | {r['equal']} | {'、'.join(r['nonzero_grad']) or '—'} | {r['ctx_grad']} |")
    return "\n".join(lines) + "\n"
