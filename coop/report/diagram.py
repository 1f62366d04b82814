"""The CLIP RN50 + CoOp architecture diagram of the report, drawn from the shape table
(:func:`coop.report.architecture.shape_rows`)."""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

from .architecture import ShapeRow

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

    from ..utils.atomic import atomic_path
    from .fonts import label as L

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

    ax.text(6.5, 9.85, L("CLIP RN50 与 CoOp（类别词在末尾）", "CLIP RN50 with CoOp (class token at the end)"), ha="center",
            fontsize=14, weight="bold")
    ax.text(3.1, 9.35, L("图像塔：ModifiedResNet", "image tower: ModifiedResNet"), ha="center", fontsize=11.5, weight="bold")
    ax.text(9.6, 9.35, L("文本塔：Transformer", "text tower: Transformer"), ha="center", fontsize=11.5, weight="bold")

    # image tower (x = 3.1)
    X, W = 3.1, 5.2
    ys = [8.75, 7.85, 6.95, 6.05, 4.95, 3.75]
    box(X, ys[0], W, 0.6, L(f"图像 {stem.input}\n预处理：Resize(224, bicubic)、CenterCrop、Normalize",
                            f"image {stem.input}\npreprocess: Resize(224, bicubic), CenterCrop, Normalize"))
    box(X, ys[1], W, 0.6, L(f"stem：3 个 3x3 卷积（stride 2,1,1）+ BN + ReLU，AvgPool2d(2)\n-> {stem.output}",
                            f"stem: 3 conv 3x3 (stride 2,1,1) + BN + ReLU, AvgPool2d(2)\n-> {stem.output}"))
    box(X, ys[2], W, 0.6, f"layer1: {l1.what}\n-> {l1.output}")
    box(X, ys[3], W, 0.75, L("layer2..4：抗混叠的 stride 2 下采样\n（主分支：3x3 卷积之后、1x1 卷积之前 AvgPool2d(2)）\n",
                             "layer2..4: anti-aliased stride 2\n(main branch: AvgPool2d(2) after the 3x3 conv, before the 1x1)\n")
        + f"-> {l2.output}, {l3.output}, {l4.output}", size=8.8)
    box(X, ys[4], W, 0.95, L(f"AttentionPool2d（{ap.what.split(', ')[1]}）\n7x7 网格拼上其均值，加位置嵌入；\n"
                             f"查询 = 均值 token 经 q_proj，键/值 = 全部 50 个\nc_proj -> 图像特征 f {ap.output}",
                             f"AttentionPool2d ({ap.what.split(', ')[1]})\n7x7 grid with its mean, + pos. emb.;\n"
                             f"query = the mean token via q_proj, keys/values = all 50\nc_proj -> image feature f {ap.output}"), size=8.8)
    box(X, ys[5], W, 0.5, "f / ||f||")
    for a, b, ha, hb in [(0, 1, .3, .3), (1, 2, .3, .3), (2, 3, .3, .375), (3, 4, .375, .475), (4, 5, .475, .25)]:
        arrow(X, ys[a] - ha, X, ys[b] + hb)

    # text tower (x = 9.6)
    X2, W2 = 9.6, 5.6
    y_tok = 8.75
    # token row: [SOS] v1 ... vM [CLASS] . [EOT]
    cells = [("[SOS]", FROZEN), ("v1", LEARN), ("v2", LEARN), ("...", LEARN), (f"v{n_ctx}", LEARN),
             (L("类名词元…", "class tokens…"), FROZEN), (".", FROZEN), ("[EOT]", FROZEN)]  # a name may be several tokens
    cw = [0.62, 0.45, 0.45, 0.45, 0.5, 0.85, 0.35, 0.62]
    x = X2 - (sum(cw) + 0.06 * (len(cw) - 1)) / 2
    for (t, col), w in zip(cells, cw):
        box(x + w / 2, y_tok, w, 0.46, t, color=col, size=8.6)
        x += w + 0.06
    ax.text(X2, y_tok + 0.45, L(f"提示：[SOS] 在最前，其后 {n_ctx} 个可学习的上下文向量，类名词元在末尾",
                                f"prompt: [SOS] first, then {n_ctx} learnable context vectors, then the class name tokens"),
            ha="center", fontsize=8.8)
    ys2 = [7.85, 6.75, 5.45, 4.55, 3.75]
    box(X2, ys2[0], W2, 0.6, L(f"token_embedding {tok.output}（上下文位置换成 v1..v{n_ctx}）\n"
                               "+ positional_embedding [77, 512]；CoOp 截到最长的提示、共享前缀（附录 C）",
                               f"token_embedding {tok.output}  (v1..v{n_ctx} replace it for the context)\n"
                               "+ positional_embedding [77, 512]; CoOp: cut to the longest prompt, shared prefix"))
    box(X2, ys2[1], W2, 1.0, L(f"{n_blocks} 个 ResidualAttentionBlock（宽 {width}，{heads} 个头）\n",
                               f"{n_blocks} x ResidualAttentionBlock (width {width}, {heads} heads)\n")
        + L("x = x + attn(ln_1(x))，因果掩码\n", "x = x + attn(ln_1(x), attn_mask = causal)\n")
        + f"x = x + mlp(ln_2(x)),  mlp = c_fc, QuickGELU, c_proj\nLND {blk0.output}"
        + L("（CLIP 的长度；CoOp 截短）", " (CLIP's length; CoOp cuts it)"), size=8.8)
    box(X2, ys2[2], W2, 0.6, L(f"ln_final，取 [EOT] 的位置（id 的 argmax）\n-> {lnf.output} -> [C, {width}]",
                               f"ln_final, take the [EOT] position (argmax of ids)\n-> {lnf.output} -> [C, {width}]"))
    box(X2, ys2[3], W2, 0.5, f"@ text_projection [{width}, {tp.output.strip('[]').split(', ')[-1]}] -> w_c {tp.output}")
    box(X2, ys2[4], W2, 0.5, L("w_c / ||w_c||（每个类 c 一个）", "w_c / ||w_c||   (one per class c)"))
    arrow(X2, y_tok - 0.23, X2, ys2[0] + 0.3)
    arrow(X2, ys2[0] - 0.3, X2, ys2[1] + 0.5)
    arrow(X2, ys2[1] - 0.5, X2, ys2[2] + 0.3)
    arrow(X2, ys2[2] - 0.3, X2, ys2[3] + 0.25)
    arrow(X2, ys2[3] - 0.25, X2, ys2[4] + 0.25)

    # where they meet
    yj = 2.2
    box(6.35, yj, 6.2, 0.85, f"logits = logit_scale.exp() * cos(f, w_c)   {scale.output}\n"
        + L("对各类做 softmax；CoOp：在 few-shot 标注上的交叉熵", "softmax over the classes; CoOp: cross-entropy on few-shot labels"),
        color=JOINT, weight="bold", size=9.6)
    arrow(X, ys[5] - 0.25, 5.0, yj + 0.43)
    arrow(X2, ys2[4] - 0.25, 7.7, yj + 0.43)

    # gradient path and legend
    # from the logits' box, up through the frozen text tower's boxes (inside their right edge, over them), under
    # the token row, into v1..vM: the path crosses every block it flows back through
    red, x_in, y_under, x_ctx = "#c0392b", X2 + W2 / 2 - 0.15, (y_tok - 0.23 + ys2[0] + 0.3) / 2, 8.94
    ax.plot([6.35 + 6.2 / 2, x_in, x_in, x_ctx], [yj, yj, y_under, y_under], color=red, ls="--", lw=1.5, zorder=5)
    for y in [(ys2[k] + ys2[k + 1]) / 2 for k in range(len(ys2) - 1)]:  # arrowheads between the boxes: upward
        arrow(x_in, y - 0.12, x_in, y + 0.12, color=red)
    arrow(x_ctx, y_under, x_ctx, y_tok - 0.23, color=red, ls="--")
    ax.text(x_in + 0.3, 5.5, L("梯度：穿过冻结的文本塔", "gradient: back through the frozen text tower"), rotation=90,
            va="center", ha="left", fontsize=10, color=red)
    lx, ly = 0.6, 1.3
    box(lx + 0.3, ly, 0.5, 0.3, "", color=FROZEN)
    ax.text(lx + 0.7, ly, L("冻结的 CLIP（权重从不改变）；图像特征只算一次并缓存",
                            "frozen CLIP (weights never change); image features computed once and cached"), va="center", fontsize=9)
    box(lx + 0.3, ly - 0.45, 0.5, 0.3, "", color=LEARN)
    ax.text(lx + 0.7, ly - 0.45, L(f"CoOp 学习的：{n_ctx} x {width} = {n_ctx * width:,} 个数"
                                   + (f"（CLIP RN50 有 {tot['total']:,} 个参数）" if tot else ""),
                                   f"learned by CoOp: {n_ctx} x {width} = {n_ctx * width:,} numbers"
                                   + (f"  (CLIP RN50 has {tot['total']:,} parameters)" if tot else "")), va="center", fontsize=9)
    ax.plot([lx + 0.05, lx + 0.55], [ly - 0.9, ly - 0.9], color="#c0392b", ls="--", lw=1.5)
    ax.text(lx + 0.7, ly - 0.9, L(f"梯度（红色虚线）：从交叉熵穿过冻结的文本塔，只传回 v1..v{n_ctx}",
                                  f"gradient (red dashes): from the cross-entropy back through the frozen text tower to v1..v{n_ctx} only"),
            va="center", fontsize=9, color="#c0392b")

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


# --- how many token rows each text block processes (the exact speed-ups of coop.model.text_encoder) ------
