"""CLIP RN50 described from the model itself: a shape/parameter table, CoOp's trainable-parameter
counts, and the architecture diagram used by ``report/REPORT.md``.

Nothing here is typed in by hand: shapes come from forward hooks on a dummy batch, parameter counts
from the modules, FLOPs from :class:`torch.utils.flop_counter.FlopCounterMode`. ``random:RN50`` has
the real RN50 shapes (its weights are random, which does not matter for any number made here).

    model = coop.random_clip("RN50")
    rows = shape_rows(model)                  # list of ShapeRow
    text = shape_table_markdown(rows)
    draw_architecture(rows, "report/figures/architecture.png")
"""
from __future__ import annotations

import os
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
    what: str         # a few words on what it is
    input: str
    output: str
    params: int
    indent: bool = False  # a part of the row above (shown indented)


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
                         N(seen["visual.conv1"][0]), N(seen["visual.avgpool"][1]), count(stem)))
    for i, name in enumerate(layers, 1):
        layer = getattr(v, f"layer{i}")
        stride = layer[0].stride
        what = f"{len(layer)} x Bottleneck" + (f", stride {stride} as AvgPool2d({stride}) before the 1x1 conv" if stride > 1 else "")
        rows.append(ShapeRow("image", name, what, N(seen[name][0]), N(seen[name][1]), count(layer)))
    ap = v.attnpool
    grid = int(round((ap.positional_embedding.shape[0] - 1) ** 0.5))
    rows.append(ShapeRow("image", "visual.attnpool", f"AttentionPool2d: 1 attention layer, {ap.num_heads} heads, "
                         f"query = mean of the {grid}x{grid} grid", N(seen["visual.attnpool"][0]),
                         N(seen["visual.attnpool"][1]), count(ap)))
    rows.append(ShapeRow("image", "visual.attnpool.positional_embedding", f"{grid}x{grid}+1 positions (mean token first)",
                         "", _fmt(tuple(ap.positional_embedding.shape), None, ""), count(ap.positional_embedding), True))
    for p in ("q_proj", "k_proj", "v_proj"):
        lin = getattr(ap, p)
        rows.append(ShapeRow("image", f"visual.attnpool.{p}", "Linear", "", "", count(lin), True))
    rows.append(ShapeRow("image", "visual.attnpool.c_proj", f"Linear {ap.c_proj.in_features} -> {ap.c_proj.out_features} "
                         "(output projection = into the joint space)", "", "", count(ap.c_proj), True))

    # --- text tower: Transformer ----------------------------------------------------------------
    te = model.token_embedding
    rows.append(ShapeRow("text", "token_embedding", f"Embedding {te.num_embeddings} x {te.embedding_dim} (BPE vocabulary)",
                         C(seen["token_embedding"][0]), C(seen["token_embedding"][1]), count(te)))
    pe = model.positional_embedding
    rows.append(ShapeRow("text", "positional_embedding", "learned, added to the token embeddings",
                         "", _fmt(tuple(pe.shape), None, ""), count(pe)))
    heads = model.transformer.resblocks[0].attn.num_heads
    width = model.transformer.width
    for i in range(n_blocks):
        name = f"transformer.resblocks.{i}"
        blk = model.transformer.resblocks[i]
        what = (f"ResidualAttentionBlock: pre-LN, {heads}-head causal self-attention, MLP {width}->{4 * width}->{width}"
                if i == 0 else "ResidualAttentionBlock (same)")
        rows.append(ShapeRow("text", name, what, C_lnd(seen[name][0]), C_lnd(seen[name][1]), count(blk)))
        if i == 0:
            parts = [("ln_1", "LayerNorm (fp32 inside)"),
                     ("attn", f"nn.MultiheadAttention, {heads} heads x {width // heads}, attn_mask = causal"),
                     ("ln_2", "LayerNorm"),
                     ("mlp.c_fc", f"Linear {width} -> {4 * width}"),
                     ("mlp.gelu", "QuickGELU: x * sigmoid(1.702 x)"),
                     ("mlp.c_proj", f"Linear {4 * width} -> {width}")]
            for p, w in parts:
                full = f"{block0}.{p}"
                mod = dict(model.named_modules())[full]
                rows.append(ShapeRow("text", full, w, C_lnd(seen[full][0]), C_lnd(seen[full][1]), count(mod), True))
    rows.append(ShapeRow("text", "ln_final", "LayerNorm", C(seen["ln_final"][0]), C(seen["ln_final"][1]), count(model.ln_final)))
    tp = model.text_projection
    rows.append(ShapeRow("text", "text_projection", "x[EOT] @ text_projection (EOT = argmax of the token ids)",
                         C((TEXT_BATCH, tp.shape[0])), C(tuple(io["text_features"].shape)), count(tp)))

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


def shape_table_markdown(rows: Sequence[ShapeRow], tot: Dict[str, int], arch: str = "RN50") -> str:
    """The table as Markdown (written to ``report/figures/rn50_shapes.md`` by scripts/make_figures.py)."""
    res = rows[0].input.strip("[]").split(", ")[-1]
    n_blocks = sum(1 for r in rows if r.name.startswith("transformer.resblocks.") and r.name.count(".") == 2)
    out = [f"<!-- generated by scripts/make_figures.py from clip.model.CLIP ({arch} shapes); do not edit -->",
           f"# CLIP {arch}: shapes and parameters",
           "",
           f"Dummy batch: N = {IMAGE_BATCH} images of {res}x{res} px "
           f"after preprocessing, C = {TEXT_BATCH} prompts tokenized to 77 ids. "
           "Shapes are recorded by forward hooks; inside the text Transformer the layout is LND "
           "(sequence, batch, width), as in `encode_text`. Parameter counts exclude buffers "
           "(BatchNorm running statistics, the causal `attn_mask`).",
           "",
           "| tower | module | what | input | output | parameters |",
           "|---|---|---|---|---|---:|"]
    for r in rows:
        name = ("&nbsp;&nbsp;↳ " if r.indent else "") + f"`{r.name}`"
        out.append(f"| {r.tower} | {name} | {r.what} | {r.input} | {r.output} | {r.params:,} |")
    out += ["",
            "| total | parameters |", "|---|---:|",
            f"| image tower (`visual`) | {tot['image']:,} |",
            f"| text tower (token_embedding, positional_embedding, transformer, ln_final, text_projection) | {tot['text']:,} |",
            f"| &nbsp;&nbsp;of which the {n_blocks} text blocks (`transformer`) | {tot['text_blocks']:,} |",
            f"| &nbsp;&nbsp;of which `token_embedding` | {tot['token_embedding']:,} |",
            f"| `logit_scale` | {tot['logit_scale']:,} |",
            f"| **CLIP {arch}** | **{tot['total']:,}** |",
            ""]
    return "\n".join(out)


# --- CoOp and the block modifications: what is trained, and what it costs ------------------------

@dataclass
class TrainableRow:
    method: str
    trainable: int             # parameters CoOp trains (context + modification)
    added_per_block: int       # parameters the modification adds to one text block
    added_flops_per_token: int  # FLOPs the modification adds per token per block (forward)
    block_flops_per_token: int  # FLOPs of one block's linear layers per token (forward)


def _linear_flops(fn, *args) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn(*args)
    return int(fc.get_total_flops())


def trainable_rows(model: nn.Module, n_ctx: int = 16, mods: Optional[Sequence[str]] = None) -> List[TrainableRow]:
    """Instantiate :class:`coop.CoOp` (plain and with each block modification) over ``model`` and
    count what it trains; FLOPs per token are counted on one token row with ``FlopCounterMode``."""
    from .block_mods import BLOCK_MODS
    from .prompt_learner import CoOp

    mods = BLOCK_MODS if mods is None else mods
    width = model.ln_final.weight.shape[0]
    blk = model.transformer.resblocks[0]
    x = torch.randn(1, 1, width)  # one token, LND
    # The block's matrix products per token (attention scores/values depend on the length L and are
    # not in this count: they add 4 * L * width FLOPs per token).
    def block_linear(t):
        torch.nn.functional.linear(t, blk.attn.in_proj_weight, blk.attn.in_proj_bias)  # q, k, v
        blk.attn.out_proj(t)
        blk.mlp(t)
    block_flops = _linear_flops(block_linear, x)
    rows = []
    base = CoOp(model, ["dog"], n_ctx=n_ctx)
    rows.append(TrainableRow("CoOp", count(base.trainable_parameters()), 0, 0, block_flops))
    for name in mods:
        c = CoOp(model, ["dog"], n_ctx=n_ctx, block_mod=name)
        mod = c.encoder.blocks[0].mod
        m = torch.randn(1, width)

        def run(t, mod=mod):
            mod.qkv_delta(t)
            mod.mlp_delta(t)
        rows.append(TrainableRow(f"CoOp+{name}", count(c.trainable_parameters()), count(mod),
                                 _linear_flops(run, m), block_flops))
    return rows


def trainable_table_markdown(rows: Sequence[TrainableRow], n_blocks: int, arch: str = "RN50") -> str:
    out = [f"<!-- generated by scripts/make_figures.py from coop.CoOp over CLIP {arch}; do not edit -->",
           f"# What CoOp trains on CLIP {arch}, and what a block modification adds",
           "",
           "Counted from `coop.CoOp(...).trainable_parameters()`; FLOPs per token and block counted by "
           "`torch.utils.flop_counter.FlopCounterMode` (forward, matrix products only; a multiply-add is 2 FLOPs).",
           "",
           "| method | trainable parameters | added to CoOp | added per text block | added FLOPs / token / block | "
           "block's linear FLOPs / token | relative |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    base = rows[0].trainable
    for r in rows:
        rel = f"{100.0 * r.added_flops_per_token / r.block_flops_per_token:.2f}%" if r.added_flops_per_token else "0"
        out.append(f"| {r.method} | {r.trainable:,} | {r.trainable - base:,} | {r.added_per_block:,} (x{n_blocks}) | "
                   f"{r.added_flops_per_token:,} | {r.block_flops_per_token:,} | {rel} |")
    out.append("")
    return "\n".join(out)


# --- the diagram -----------------------------------------------------------------------------------

def _row(rows: Sequence[ShapeRow], name: str) -> ShapeRow:
    return next(r for r in rows if r.name == name)


def draw_architecture(rows: Sequence[ShapeRow], path: str | os.PathLike, n_ctx: int = 16,
                      tot: Optional[Dict[str, int]] = None) -> None:
    """Image tower and text tower side by side, meeting at the cosine-similarity logits; CoOp's
    learnable context enters the text tower. Labels take their shapes from ``rows``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .atomic import atomic_path

    fig = Figure(figsize=(13, 10.2))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 10.2)
    ax.axis("off")
    FROZEN, LEARN, JOINT = "#dfe6ee", "#f6c7c1", "#e5dcf2"

    def box(x, y, w, h, text, color=FROZEN, edge="#44546a", size=9.2, weight="normal"):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=color, edgecolor=edge, linewidth=1.2))
        ax.text(x, y, text, ha="center", va="center", fontsize=size, weight=weight, linespacing=1.35)

    def arrow(x0, y0, x1, y1, color="#333333", style="-|>", ls="-"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=14, color=color,
                                     linewidth=1.3, linestyle=ls, shrinkA=0, shrinkB=0))

    stem, l1, l2, l3, l4 = (_row(rows, n) for n in ("visual.conv1..bn3, avgpool", "visual.layer1", "visual.layer2",
                                                     "visual.layer3", "visual.layer4"))
    ap, tok = _row(rows, "visual.attnpool"), _row(rows, "token_embedding")
    blk0, lnf, tp = _row(rows, "transformer.resblocks.0"), _row(rows, "ln_final"), _row(rows, "text_projection")
    scale = _row(rows, "logit_scale")
    n_blocks = sum(1 for r in rows if r.name.startswith("transformer.resblocks.") and r.name.count(".") == 2)
    width = int(tok.output.strip("[]").split(", ")[-1])
    heads = blk0.what.split("-head")[0].split()[-1]

    ax.text(6.5, 9.85, "CLIP RN50 with CoOp (class token at the end)", ha="center", fontsize=14, weight="bold")
    ax.text(3.1, 9.35, "image tower: ModifiedResNet", ha="center", fontsize=11.5, weight="bold")
    ax.text(9.6, 9.35, "text tower: Transformer", ha="center", fontsize=11.5, weight="bold")

    # image tower (x = 3.1)
    X, W = 3.1, 5.2
    ys = [8.75, 7.85, 6.95, 6.05, 4.95, 3.75]
    box(X, ys[0], W, 0.6, f"image {stem.input}\npreprocess: Resize(224, bicubic), CenterCrop, Normalize")
    box(X, ys[1], W, 0.6, f"stem: 3 conv 3x3 (stride 2,1,1) + BN + ReLU, AvgPool2d(2)\n-> {stem.output}")
    box(X, ys[2], W, 0.6, f"layer1: {l1.what}\n-> {l1.output}")
    box(X, ys[3], W, 0.75, "layer2..4: anti-aliased stride 2\n(AvgPool2d(2) before the 1x1 conv)\n"
        f"-> {l2.output}, {l3.output}, {l4.output}", size=8.8)
    box(X, ys[4], W, 0.95, f"AttentionPool2d ({ap.what.split(', ')[1]})\nquery = mean of the 7x7 grid;\n"
        f"keys/values = mean + 49 positions (+ pos. emb.)\nc_proj -> image feature f {ap.output}", size=8.8)
    box(X, ys[5], W, 0.5, "f / ||f||")
    for a, b, ha, hb in [(0, 1, .3, .3), (1, 2, .3, .3), (2, 3, .3, .375), (3, 4, .375, .475), (4, 5, .475, .25)]:
        arrow(X, ys[a] - ha, X, ys[b] + hb)

    # text tower (x = 9.6)
    X2, W2 = 9.6, 5.6
    y_tok = 8.75
    # token row: [SOS] v1 ... vM [CLASS] . [EOT]
    cells = [("[SOS]", FROZEN), ("v1", LEARN), ("v2", LEARN), ("...", LEARN), (f"v{n_ctx}", LEARN),
             ("[CLASS]", FROZEN), (".", FROZEN), ("[EOT]", FROZEN)]
    cw = [0.62, 0.45, 0.45, 0.45, 0.5, 0.85, 0.35, 0.62]
    x = X2 - (sum(cw) + 0.06 * (len(cw) - 1)) / 2
    for (t, col), w in zip(cells, cw):
        box(x + w / 2, y_tok, w, 0.46, t, color=col, size=8.6)
        x += w + 0.06
    ax.text(X2, y_tok + 0.45, f"prompt: {n_ctx} learnable context vectors, then the class name tokens",
            ha="center", fontsize=8.8)
    ys2 = [7.85, 6.75, 5.45, 4.55, 3.75]
    box(X2, ys2[0], W2, 0.6, f"token_embedding {tok.output}  (v1..v{n_ctx} replace it for the context)\n"
        "+ positional_embedding [77, 512]; CoOp cuts to the longest prompt")
    box(X2, ys2[1], W2, 1.0, f"{n_blocks} x ResidualAttentionBlock (width {width}, {heads} heads)\n"
        "x = x + attn(ln_1(x), attn_mask = causal)\nx = x + mlp(ln_2(x)),  mlp = c_fc, QuickGELU, c_proj\n"
        f"LND {blk0.output}", size=8.8)
    box(X2, ys2[2], W2, 0.6, f"ln_final, take the [EOT] position (argmax of ids)\n-> {lnf.output} -> [C, {width}]")
    box(X2, ys2[3], W2, 0.5, f"@ text_projection [{width}, {tp.output.strip('[]').split(', ')[-1]}] -> w_c {tp.output}")
    box(X2, ys2[4], W2, 0.5, "w_c / ||w_c||   (one per class c)")
    arrow(X2, y_tok - 0.23, X2, ys2[0] + 0.3)
    arrow(X2, ys2[0] - 0.3, X2, ys2[1] + 0.5)
    arrow(X2, ys2[1] - 0.5, X2, ys2[2] + 0.3)
    arrow(X2, ys2[2] - 0.3, X2, ys2[3] + 0.25)
    arrow(X2, ys2[3] - 0.25, X2, ys2[4] + 0.25)

    # where they meet
    yj = 2.2
    box(6.35, yj, 6.2, 0.85, f"logits = logit_scale.exp() * cos(f, w_c)   {scale.output}\n"
        "softmax over the classes; CoOp: cross-entropy on few-shot labels", color=JOINT, weight="bold", size=9.6)
    arrow(X, ys[5] - 0.25, 5.0, yj + 0.43)
    arrow(X2, ys2[4] - 0.25, 7.7, yj + 0.43)

    # gradient path and legend
    arrow(12.7, yj, 12.7, y_tok, color="#c0392b", ls="--")
    ax.text(12.82, 5.5, "gradient: flows back through the frozen text tower to v1..v16 only",
            rotation=90, va="center", ha="left", fontsize=8.5, color="#c0392b")
    lx, ly = 0.6, 0.95
    box(lx + 0.3, ly, 0.5, 0.3, "", color=FROZEN)
    ax.text(lx + 0.7, ly, "frozen CLIP (weights never change); image features computed once and cached",
            va="center", fontsize=9)
    box(lx + 0.3, ly - 0.45, 0.5, 0.3, "", color=LEARN)
    ax.text(lx + 0.7, ly - 0.45, f"learned by CoOp: {n_ctx} x {width} = {n_ctx * width:,} numbers"
            + (f"  (CLIP RN50 has {tot['total']:,} parameters)" if tot else ""), va="center", fontsize=9)

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


# --- how many token rows each text block processes (the exact speed-ups of coop.text_encoder) ------

@dataclass
class TokenCounts:
    n_classes: int
    context_length: int   # 77: what encode_text runs
    longest: int          # positions up to the last EOT: what truncation keeps
    prefix: int           # [SOS] v1..vM, shared by all classes
    suffix_total: int     # all classes' name, ".", EOT tokens, packed
    eot_rows: int         # rows the last block computes on the shared-prefix path
    n_blocks: int = 12

    @property
    def rows_full(self) -> int:
        return self.n_classes * self.context_length

    @property
    def rows_truncated(self) -> int:
        return self.n_classes * self.longest

    @property
    def rows_shared(self) -> int:
        return self.prefix + self.suffix_total


def token_counts(model: nn.Module, classnames: Sequence[str], n_ctx: int = 16) -> TokenCounts:
    """Build :class:`coop.CoOp` over ``model`` for ``classnames`` and read off its sequence lengths."""
    from .prompt_learner import CoOp

    c = CoOp(model, classnames, n_ctx=n_ctx)
    return TokenCounts(n_classes=len(classnames), context_length=int(model.context_length),
                       longest=int(c.eot.max()) + 1, prefix=1 + n_ctx,
                       suffix_total=int(c.suffix.embeddings.shape[0]), eot_rows=int(c.suffix.eot_rows.numel()),
                       n_blocks=len(c.encoder.blocks))


def token_counts_markdown(t: TokenCounts, source: str) -> str:
    return "\n".join([
        "",
        f"# Token rows per text block for the {t.n_classes} class names of `{source}`",
        "",
        f"Read off `coop.CoOp` (M = {t.prefix - 1}, class token at the end): what one forward pass of the text "
        f"tower processes in each of the first {t.n_blocks - 1} blocks (the last block of the shared-prefix path "
        "computes only the EOT rows). These are token counts, not timings; measured times come "
        "from `scripts/bench.py`.",
        "",
        "| text encoder path | token rows per block | relative |",
        "|---|---:|---:|",
        f"| plain, as `encode_text`: {t.n_classes} prompts x {t.context_length} positions | {t.rows_full:,} | 100% |",
        f"| truncated to the longest prompt ({t.longest} positions) | {t.rows_truncated:,} | "
        f"{100.0 * t.rows_truncated / t.rows_full:.1f}% |",
        f"| shared prefix ({t.prefix} rows) + packed suffixes ({t.suffix_total} rows, "
        f"{t.suffix_total / t.n_classes:.2f} per class) | {t.rows_shared:,} | {100.0 * t.rows_shared / t.rows_full:.1f}% |",
        f"| last block of the shared-prefix path (EOT rows only) | {t.eot_rows:,} | "
        f"{100.0 * t.eot_rows / t.rows_full:.1f}% |",
        "",
    ])
