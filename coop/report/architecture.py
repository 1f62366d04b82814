"""CLIP RN50 described from the model itself: the shape/parameter table of ``report/REPORT.md``
(CoOp's trainable-parameter counts are in :mod:`coop.report.trainable`, the diagram in :mod:`coop.report.diagram`).

Nothing here is typed in by hand: shapes come from forward hooks on a dummy batch, parameter counts
from the modules, FLOPs from :class:`torch.utils.flop_counter.FlopCounterMode`. ``random:RN50`` has
the real RN50 shapes (its weights are random, which does not matter for any number made here).

    model = coop.random_clip("RN50")
    rows = shape_rows(model)                  # list of ShapeRow
    text = shape_table_markdown(rows)
    coop.report.diagram.draw_architecture(rows, "report/figures/architecture.png")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

IMAGE_BATCH = 2   # N images in the dummy batch
TEXT_BATCH = 3    # C prompts (classes) in the dummy batch; differs from N so the table can tell them apart


@dataclass
class ShapeRow:
    """One line of the table. ``input``/``output`` are shapes with the batch axis written N or C."""

    tower: str        # "image", "text" or "both"
    name: str         # the module's path in clip.model.CLIP, e.g. "visual.layer1"
    what: str         # a few words on what it is (English; the diagram reads it)
    input: str
    output: str
    params: int
    indent: bool = False  # a part of the row above (shown indented)
    what_zh: str = ""     # the same in Chinese, for the report's table (English when empty)


def count(module_or_params) -> int:
    """Number of parameters of a module, a parameter, or an iterable of them (buffers excluded)."""
    if isinstance(module_or_params, nn.Module):
        return sum(p.numel() for p in module_or_params.parameters())
    if isinstance(module_or_params, torch.Tensor):
        return module_or_params.numel()
    return sum(count(p) for p in module_or_params)


def _fmt(shape: Sequence[int], batch_axis: Optional[int], letter: str) -> str:
    dims = [letter if i == batch_axis else str(d) for i, d in enumerate(shape)]
    return "[" + ", ".join(dims) + "]"


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x:
        return _first_tensor(x[0])
    return None


@torch.no_grad()
def record_shapes(model: nn.Module, names: Sequence[str]) -> Tuple[Dict[str, Tuple[tuple, tuple]], Dict[str, torch.Tensor]]:
    """Run ``model(image, text)`` on a dummy batch with forward hooks on the named submodules.

    Returns ``{name: (input_shape, output_shape)}`` and the dummy inputs/outputs
    (``image``, ``text``, ``image_features``, ``text_features``, ``logits_per_image``).
    """
    import clip

    modules = dict(model.named_modules())
    seen: Dict[str, Tuple[tuple, tuple]] = {}
    handles = []
    for name in names:
        def hook(mod, inp, out, name=name):
            i, o = _first_tensor(inp), _first_tensor(out)
            seen.setdefault(name, (tuple(i.shape), tuple(o.shape)))
        handles.append(modules[name].register_forward_hook(hook))
    res = model.visual.input_resolution
    image = torch.randn(IMAGE_BATCH, 3, res, res)
    text = clip.tokenize(["a photo of a dog.", "a photo of a car side.", "a photo of a yin yang."][:TEXT_BATCH])
    feats = {}
    handles.append(model.visual.register_forward_hook(lambda m, i, o: feats.setdefault("image", o)))
    was_training = model.training
    try:
        model.eval()
        logits_per_image, _ = model(image, text)  # one pass of CLIP.forward (the image side is the slow part)
    finally:
        for h in handles:
            h.remove()
    try:
        text_features = model.encode_text(text)  # cheap: 3 prompts
    finally:
        model.train(was_training)
    return seen, {"image": image, "text": text, "image_features": feats["image"],
                  "text_features": text_features, "logits_per_image": logits_per_image}


def shape_rows(model: nn.Module) -> List[ShapeRow]:
    """The table of a ``clip.model.CLIP`` with a ``ModifiedResNet`` image tower (RN50 and kin)."""
    from clip.model import ModifiedResNet

    v = model.visual
    if not isinstance(v, ModifiedResNet):
        raise ValueError("shape_rows describes the ResNet CLIPs (RN50, ...); this model has a VisionTransformer")
    n_blocks = len(model.transformer.resblocks)
    layers = [f"visual.layer{i}" for i in range(1, 5)]
    block0 = "transformer.resblocks.0"
    names = (["visual.conv1", "visual.avgpool", *layers, "visual.attnpool", "token_embedding",
              *[f"transformer.resblocks.{i}" for i in range(n_blocks)], "ln_final"]
             + [f"{block0}.{p}" for p in ("ln_1", "attn", "ln_2", "mlp.c_fc", "mlp.gelu", "mlp.c_proj")])
    seen, io = record_shapes(model, names)
    N = lambda s: _fmt(s, 0, "N")          # noqa: E731  image rows: NCHW / ND
    C = lambda s: _fmt(s, 0, "C")          # noqa: E731  text rows in NLD / ND
    C_lnd = lambda s: _fmt(s, 1, "C")      # noqa: E731  text rows inside the transformer: LND
    rows: List[ShapeRow] = []

    # --- image tower: ModifiedResNet ------------------------------------------------------------
    stem = [v.conv1, v.bn1, v.conv2, v.bn2, v.conv3, v.bn3]
    rows.append(ShapeRow("image", "visual.conv1..bn3, avgpool", "stem: 3 convs 3x3 (stride 2, 1, 1) + BN + ReLU, AvgPool2d(2)",
                         N(seen["visual.conv1"][0]), N(seen["visual.avgpool"][1]), count(stem),
                         what_zh="stem：3 个 3×3 卷积（stride 2、1、1），各接 BN 与 ReLU，再 AvgPool2d(2)"))
    for i, name in enumerate(layers, 1):
        layer = getattr(v, f"layer{i}")
        stride = layer[0].stride
        what = f"{len(layer)} x Bottleneck" + (f", stride {stride} as AvgPool2d({stride}) before the last 1x1 conv" if stride > 1 else "")
        zh = f"{len(layer)} 个 Bottleneck" + (f"，下采样 {stride} 倍：3×3 卷积之后、最后的 1×1 卷积之前的 AvgPool2d({stride})"
                                             if stride > 1 else "")
        rows.append(ShapeRow("image", name, what, N(seen[name][0]), N(seen[name][1]), count(layer), what_zh=zh))
    ap = v.attnpool
    grid = int(round((ap.positional_embedding.shape[0] - 1) ** 0.5))
    rows.append(ShapeRow("image", "visual.attnpool", f"AttentionPool2d: 1 attention layer, {ap.num_heads} heads, "
                         f"query = mean of the {grid}x{grid} grid", N(seen["visual.attnpool"][0]),
                         N(seen["visual.attnpool"][1]), count(ap),
                         what_zh=f"AttentionPool2d：1 层注意力，{ap.num_heads} 个头，查询是 {grid}×{grid} 网格的均值"))
    rows.append(ShapeRow("image", "visual.attnpool.positional_embedding", f"{grid}x{grid}+1 positions (mean token first)",
                         "", _fmt(tuple(ap.positional_embedding.shape), None, ""), count(ap.positional_embedding), True,
                         what_zh=f"{grid}×{grid}+1 个位置（均值 token 在最前）"))
    for p in ("q_proj", "k_proj", "v_proj"):
        lin = getattr(ap, p)
        rows.append(ShapeRow("image", f"visual.attnpool.{p}", "Linear", "", "", count(lin), True, what_zh="线性层"))
    rows.append(ShapeRow("image", "visual.attnpool.c_proj", f"Linear {ap.c_proj.in_features} -> {ap.c_proj.out_features} "
                         "(output projection = into the joint space)", "", "", count(ap.c_proj), True,
                         what_zh=f"线性层 {ap.c_proj.in_features} → {ap.c_proj.out_features}（输出投影，即投到联合空间）"))

    # --- text tower: Transformer ----------------------------------------------------------------
    te = model.token_embedding
    rows.append(ShapeRow("text", "token_embedding", f"Embedding {te.num_embeddings} x {te.embedding_dim} (BPE vocabulary)",
                         C(seen["token_embedding"][0]), C(seen["token_embedding"][1]), count(te),
                         what_zh=f"词嵌入 {te.num_embeddings} × {te.embedding_dim}（BPE 词表）"))
    pe = model.positional_embedding
    rows.append(ShapeRow("text", "positional_embedding", "learned, added to the token embeddings",
                         "", _fmt(tuple(pe.shape), None, ""), count(pe), what_zh="可学习的位置嵌入，加到词嵌入上"))
    heads = model.transformer.resblocks[0].attn.num_heads
    width = model.transformer.width
    for i in range(n_blocks):
        name = f"transformer.resblocks.{i}"
        blk = model.transformer.resblocks[i]
        what = (f"ResidualAttentionBlock: pre-LN, {heads}-head causal self-attention, MLP {width}->{4 * width}->{width}"
                if i == 0 else "ResidualAttentionBlock (same)")
        zh = (f"ResidualAttentionBlock：pre-LN，{heads} 个头的因果自注意力，MLP {width}→{4 * width}→{width}"
              if i == 0 else "ResidualAttentionBlock（同上）")
        rows.append(ShapeRow("text", name, what, C_lnd(seen[name][0]), C_lnd(seen[name][1]), count(blk), what_zh=zh))
        if i == 0:
            parts = [("ln_1", "LayerNorm (fp32 inside)", "LayerNorm（内部用 fp32）"),
                     ("attn", f"nn.MultiheadAttention, {heads} heads x {width // heads}, attn_mask = causal",
                      f"nn.MultiheadAttention，{heads} 个头 × {width // heads} 维，因果掩码"),
                     ("ln_2", "LayerNorm", "LayerNorm"),
                     ("mlp.c_fc", f"Linear {width} -> {4 * width}", f"线性层 {width} → {4 * width}"),
                     ("mlp.gelu", "QuickGELU: x * sigmoid(1.702 x)", "QuickGELU：x · σ(1.702 x)"),
                     ("mlp.c_proj", f"Linear {4 * width} -> {width}", f"线性层 {4 * width} → {width}")]
            for p, w, zh in parts:
                full = f"{block0}.{p}"
                mod = dict(model.named_modules())[full]
                rows.append(ShapeRow("text", full, w, C_lnd(seen[full][0]), C_lnd(seen[full][1]), count(mod), True, zh))
    rows.append(ShapeRow("text", "ln_final", "LayerNorm", C(seen["ln_final"][0]), C(seen["ln_final"][1]), count(model.ln_final)))
    tp = model.text_projection
    rows.append(ShapeRow("text", "text_projection", "x[EOT] @ text_projection (EOT = argmax of the token ids)",
                         C((TEXT_BATCH, tp.shape[0])), C(tuple(io["text_features"].shape)), count(tp),
                         what_zh="x[EOT] @ text_projection（EOT 的位置是词元 id 的 argmax）"))

    # --- where they meet ------------------------------------------------------------------------
    rows.append(ShapeRow("both", "logit_scale", "logits = logit_scale.exp() * cos(image, text)",
                         f"{N(tuple(io['image_features'].shape))}, {C(tuple(io['text_features'].shape))}",
                         _fmt(tuple(io["logits_per_image"].shape), None, "").replace(f"[{IMAGE_BATCH}, {TEXT_BATCH}]", "[N, C]"),
                         count(model.logit_scale)))
    return rows


def totals(model: nn.Module) -> Dict[str, int]:
    """Parameter counts of the towers; ``image + text + logit_scale == total`` (checked)."""
    image = count(model.visual)
    scale = count(model.logit_scale)
    total = count(model)
    text = total - image - scale
    assert text == count([model.token_embedding, model.positional_embedding, model.transformer,
                          model.ln_final, model.text_projection])
    return {"image": image, "text": text, "logit_scale": scale, "total": total,
            "text_blocks": count(model.transformer), "token_embedding": count(model.token_embedding)}


TOWER_ZH = {"image": "图像", "text": "文本", "both": "两者"}


def shape_table_markdown(rows: Sequence[ShapeRow], tot: Dict[str, int], arch: str = "RN50") -> str:
    """The table as Markdown, in Chinese like the report that links it (written to
    ``report/figures/rn50_shapes.md`` by scripts/make_figures.py)."""
    res = rows[0].input.strip("[]").split(", ")[-1]
    n_blocks = sum(1 for r in rows if r.name.startswith("transformer.resblocks.") and r.name.count(".") == 2)
    out = [f"<!-- generated by scripts/make_figures.py from clip.model.CLIP ({arch} shapes); do not edit -->",
           f"# CLIP {arch}：各部分的形状与参数量",
           "",
           f"虚拟 batch：N = {IMAGE_BATCH} 张预处理后 {res}×{res} 像素的图像，C = {TEXT_BATCH} 个提示（各 77 个词元 id）。"
           "形状由前向 hook 记录；文本 Transformer 内部是 LND 排列（序列、batch、宽度），与 `encode_text` 相同。"
           "参数量只数参数：不含 BatchNorm 的滑动统计量（buffer），也不含因果掩码 `attn_mask`（它是模块的普通张量属性，既不是参数也不是 buffer，不在 state_dict 里）。",
           "",
           "| 塔 | 模块 | 是什么 | 输入 | 输出 | 参数量 |",
           "|---|---|---|---|---|---:|"]
    for r in rows:
        name = ("&nbsp;&nbsp;↳ " if r.indent else "") + f"`{r.name}`"
        out.append(f"| {TOWER_ZH.get(r.tower, r.tower)} | {name} | {r.what_zh or r.what} | {r.input} | {r.output} | {r.params:,} |")
    out += ["",
            "| 合计 | 参数量 |", "|---|---:|",
            f"| 图像塔（`visual`） | {tot['image']:,} |",
            f"| 文本塔（token_embedding、positional_embedding、transformer、ln_final、text_projection） | {tot['text']:,} |",
            f"| &nbsp;&nbsp;其中 {n_blocks} 个文本块（`transformer`） | {tot['text_blocks']:,} |",
            f"| &nbsp;&nbsp;其中 `token_embedding` | {tot['token_embedding']:,} |",
            f"| `logit_scale` | {tot['logit_scale']:,} |",
            f"| **CLIP {arch}** | **{tot['total']:,}** |",
            ""]
    return "\n".join(out)


# --- CoOp and the block modifications: what is trained, and what it costs ------------------------
