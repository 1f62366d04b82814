"""What the causal mask does, measured on CLIP's own text Transformer (section 3.2 of the report).

    rows = causal_rows(model)   # one row per perturbed position of a CoOp prompt

A CoOp prompt [SOS] v1..v16 class . [EOT] enters ``model.transformer`` (CLIP's module, its
``build_attention_mask``) as ``encode_text`` builds it; one position's input embedding is changed by
Gaussian noise, and the largest change of every position's output (after ``ln_final``) is measured, before
and after that position. The mask makes the first exactly 0 -- whatever the weights, so random weights
show it as well as the real ones -- and the EOT position, which ``encode_text`` takes, changes for every
perturbed position: it is the only one that reads the whole prompt. Computed by
``scripts/make_figures.py`` into ``report/figures/causal_check.md``.
"""
from __future__ import annotations

from typing import Dict, List

import torch

N_CTX = 16


@torch.no_grad()
def _outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``encode_text``'s steps after the token lookup, every position kept: [L, width]."""
    x = x + model.positional_embedding[: x.shape[0]].to(x.dtype)
    x = model.transformer(x.unsqueeze(1)).squeeze(1)  # LND with N = 1, CLIP's attn_mask inside
    return model.ln_final(x)


@torch.no_grad()
def causal_rows(model: torch.nn.Module, classname: str = "dalmatian", seed: int = 0) -> List[Dict]:
    """For each perturbed position (v1, v9, the class token, the EOT): the largest |change| of the outputs
    before it and from it on, and of the EOT output."""
    import clip

    g = torch.Generator().manual_seed(seed)
    tokens = clip.tokenize([("X " * N_CTX) + classname + "."])[0]
    eot = int(tokens.argmax())
    emb = model.token_embedding(tokens[: eot + 1]).float()
    emb[1: 1 + N_CTX] = torch.randn(N_CTX, emb.shape[1], generator=g) * 0.02  # CoOp's context init
    base = _outputs(model.float(), emb)
    rows = []
    for name, j in (("v1", 1), ("v9", 9), (f"类别词 {classname} 的第一个词元", 1 + N_CTX), ("EOT", eot)):
        x = emb.clone()
        x[j] += torch.randn(x.shape[1], generator=g)
        d = (_outputs(model, x) - base).abs().amax(dim=1)  # per position
        rows.append({"perturbed": name, "position": j, "before": float(d[:j].max()) if j else 0.0,
                     "from": float(d[j:].min()), "eot": float(d[eot]), "length": eot + 1})
    return rows


def causal_markdown(rows: List[Dict], model_name: str) -> str:
    head = (f"给一个位置的输入嵌入加上标准差 1 的高斯噪声（`torch.Generator` 种子 0，上下文 v1..v16 按 CoOp 以标准差 0.02 初始化）后，"
            f"各位置输出（`ln_final` 之后）变化的最大绝对值。模型 {model_name}（结构与 RN50 的文本塔相同、权重随机）；提示 [SOS] v1..v16 dalmatian . [EOT]（dalmatian 是 dalmati、an 两个词元），"
            "共 {n} 个位置。“之前”恰为 0 是因果掩码的作用，与权重无关；从该位置起（含该位置）变化多大取决于权重。")
    lines = [head.format(n=rows[0]["length"]), "",
             "| 改变的位置 | 序号 | 之前各位置的最大变化 | 该位置及之后各位置中最小的变化 | EOT 的变化 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['perturbed']} | {r['position']} | {r['before']:.1f} | {r['from']:.3g} | {r['eot']:.3g} |")
    return "\n".join(lines) + "\n"
