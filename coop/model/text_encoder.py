"""CLIP's text encoder applied to prompt *embeddings*, plainly and fast -- with identical results.

CoOp feeds the text transformer embeddings (learned context + class-name tokens) instead of token
ids, so it cannot call ``clip_model.encode_text``. :class:`TextEncoder` does exactly what
``encode_text`` does after the token lookup: add positions, run the ``ResidualAttentionBlock`` s
with the causal mask, ``ln_final``, take the EOT token, project with ``text_projection``.

Two exact speed-ups follow from the causal mask (no token attends to a later one):

1. *Truncation*: positions after the last EOT cannot change any EOT feature, so the sequence is cut
   to the longest prompt (about 22 of 77 tokens for Caltech101 with 16 context vectors).
2. *Shared prefix*: with the class token at the end and one shared context, ``[SOS] v1..vM`` is the
   same for every class, and so are its hidden states in every layer. They are computed once; each
   class's remaining tokens (name, ".", EOT -- 3.5 on average) attend to the prefix's keys and values
   and to their own. Prefix and suffixes are packed into one sequence (no padding) with a
   block-causal attention mask, so each block runs as a few large matrix products.

Both paths use the frozen CLIP blocks' own weights; ``tests/test_text_encoder.py`` checks values and
gradients against the plain full-length computation.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .block_mods import BlockMod, make_block_mod

QUICK_GELU_ALPHA = 1.702  # clip.model.QuickGELU: x * sigmoid(1.702 * x)


def causal_mask(L: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[L, L] additive mask, -inf above the diagonal: CLIP's ``build_attention_mask`` for length L.

    OpenAI's ``ResidualAttentionBlock`` applies its own mask, fixed at 77 x 77; clip-anytorch
    slices it to the sequence length. Building it here for any L makes both packages run the
    truncated sequences alike.
    """
    return torch.full((L, L), float("-inf"), dtype=dtype, device=device).triu_(1)


class TextBlock(nn.Module):
    """One frozen CLIP ``ResidualAttentionBlock``, optionally with a :class:`BlockMod` beside it."""

    def __init__(self, block: nn.Module, mod: Optional[BlockMod] = None):
        super().__init__()
        self.block = block
        self.mod = mod
        self.n_head = block.attn.num_heads
        # CLIP's MLP is c_proj(QuickGELU(c_fc(m))) with QuickGELU(h) = h * sigmoid(1.702 h)
        # = silu(1.702 h) / 1.702. Folding the two constants into (frozen) copies of the weights
        # leaves one fused SiLU kernel instead of three element-wise passes, forward and backward.
        fc, proj = block.mlp.c_fc, block.mlp.c_proj
        with torch.no_grad():
            self.register_buffer("fc_weight", fc.weight * QUICK_GELU_ALPHA, persistent=False)
            self.register_buffer("fc_bias", fc.bias * QUICK_GELU_ALPHA, persistent=False)
            self.register_buffer("proj_weight", proj.weight / QUICK_GELU_ALPHA, persistent=False)

    def mlp(self, m: torch.Tensor) -> torch.Tensor:
        """CLIP's MLP branch, computed with the folded weights (equal up to float rounding)."""
        return F.linear(F.silu(F.linear(m, self.fc_weight, self.fc_bias)), self.proj_weight, self.block.mlp.c_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full causal sequence, x: [L, N, d] (CLIP's LND layout)."""
        if self.mod is None:  # the straightforward computation: CLIP's own submodules, our mask
            b = self.block
            a = b.ln_1(x)
            x = x + b.attn(a, a, a, need_weights=False, attn_mask=causal_mask(x.shape[0], x.dtype, x.device))[0]
            return x + b.mlp(b.ln_2(x))
        q, k, v = self.qkv(x.permute(1, 0, 2))  # LND -> NLD -> each [N, H, L, hd]
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.finish(x, self.merge_heads(o).permute(1, 0, 2))  # NLD -> LND

    # --- the block cut into per-token pieces, for the shared-prefix path ---------------------------
    def qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: [N, L, d] -> q, k, v: [N, H, L, d/H]."""
        a = self.block.ln_1(x)
        qkv = F.linear(a, self.block.attn.in_proj_weight, self.block.attn.in_proj_bias)
        if self.mod is not None and (delta := self.mod.qkv_delta(a, qkv)) is not None:
            qkv = qkv + delta
        N, L, _ = qkv.shape
        qkv = qkv.view(N, L, 3, self.n_head, -1).permute(2, 0, 3, 1, 4)  # [3, N, H, L, hd]
        return qkv[0], qkv[1], qkv[2]

    def forward_packed(self, h: torch.Tensor, mask: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """h: [T, d] a packed sequence, mask: [T, T] (True = may attend) -> [T, d].

        With ``rows``, only those rows' outputs are computed (all rows still serve as keys/values).
        """
        q, k, v = self.qkv(h.unsqueeze(0))  # each [1, H, T, hd]
        if rows is not None:
            q, mask, h = q[:, :, rows], mask[rows], h[rows]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.finish(h, self.merge_heads(o)[0])

    @staticmethod
    def merge_heads(o: torch.Tensor) -> torch.Tensor:
        """[N, H, L, hd] -> [N, L, d]."""
        N, H, L, hd = o.shape
        return o.transpose(1, 2).reshape(N, L, H * hd)

    def finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """Residual of the attention output, then the MLP branch. x, attn: [..., d]."""
        x = x + F.linear(attn, self.block.attn.out_proj.weight, self.block.attn.out_proj.bias)
        m = self.block.ln_2(x)
        y = self.mlp(m)
        if self.mod is not None and (delta := self.mod.mlp_delta(m, y)) is not None:
            y = y + delta
        return x + y


class TextEncoder(nn.Module):
    """CLIP's text tower over prompt embeddings. Holds references to CLIP's frozen modules."""

    def __init__(self, clip_model: nn.Module, block_mod: Optional[str] = None):
        super().__init__()
        width = clip_model.ln_final.weight.shape[0]
        dtype = clip_model.visual.conv1.weight.dtype  # CLIP's compute dtype: fp16 under --precision fp16
        # The modifications draw their init from the CPU generator as it stands (it differs by seed), then leave it
        # where it was: a CoOp+modification run shuffles its batches exactly as the plain CoOp run of its seed does,
        # so the two are paired on the same mini-batches and crops, not only the same images.
        with torch.random.fork_rng(devices=[]):
            mods = [make_block_mod(block_mod, width).to(dtype) if block_mod else None for _ in clip_model.transformer.resblocks]
        self.blocks = nn.ModuleList(TextBlock(b, m) for b, m in zip(clip_model.transformer.resblocks, mods))
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Final hidden states of the EOT tokens [n, d] -> text features [n, embed_dim]."""
        return self.ln_final(x) @ self.text_projection.to(x.dtype)

    def forward(self, prompts: torch.Tensor, eot: torch.Tensor, truncate: bool = True) -> torch.Tensor:
        """prompts: [n, L, d] embeddings, eot: [n] EOT positions -> [n, embed_dim].

        ``truncate=False`` runs all L positions: the plain computation, kept as the reference.
        """
        if truncate:
            prompts = prompts[:, : int(eot.max()) + 1]
        L = prompts.shape[1]
        x = prompts + self.positional_embedding[:L].to(prompts.dtype)
        x = x.permute(1, 0, 2)  # NLD -> LND
        for blk in self.blocks:
            x = blk(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        return self.project(x[torch.arange(x.shape[0], device=x.device), eot.to(x.device)])

    def forward_shared_prefix(self, prefix: torch.Tensor, suffix: "PackedSuffix") -> torch.Tensor:
        """prefix: [P, d] embeddings shared by all classes; suffix: every class's remaining tokens.

        The prefix and all suffixes form one packed sequence of P + T tokens; ``suffix.mask`` lets
        each suffix token see the whole prefix and the earlier tokens of its own class only.
        In the last block only the EOT rows are needed, so only they are computed there.
        """
        P = prefix.shape[0]
        h = torch.cat([prefix + self.positional_embedding[:P].to(prefix.dtype), suffix.embeddings])  # [P+T, d]
        for i, blk in enumerate(self.blocks):
            rows = suffix.eot_rows if i == len(self.blocks) - 1 else None
            h = blk.forward_packed(h, suffix.mask, rows)
        return self.project(h)  # [n_cls, embed_dim]: the last block returned the EOT rows


class PackedSuffix(nn.Module):
    """The tokens after a shared prefix of P tokens, for every class, packed without padding.

    ``embeddings``: [T, d] the suffix tokens of all classes one after another, positions added;
    ``eot_rows[c]``: the row of class c's EOT token in the packed prefix+suffix sequence;
    ``mask``: [P+T, P+T] boolean attention mask (True = may attend). The prefix is causal on
    itself; a suffix token sees the whole prefix and, causally, its own class's suffix -- exactly
    what it sees in its own full-length prompt.
    """

    def __init__(self, suffix_embeddings: Sequence[torch.Tensor], prefix_len: int, positional: torch.Tensor):
        super().__init__()
        P = prefix_len
        lengths = [int(s.shape[0]) for s in suffix_embeddings]
        T = sum(lengths)
        device = positional.device
        mask = torch.zeros(P + T, P + T, dtype=torch.bool, device=device)
        mask[:P, :P] = torch.ones(P, P, dtype=torch.bool, device=device).tril()
        eot_rows, start = [], P
        for S in lengths:
            mask[start: start + S, :P] = True
            mask[start: start + S, start: start + S] = torch.ones(S, S, dtype=torch.bool, device=device).tril()
            start += S
            eot_rows.append(start - 1)
        self.register_buffer("embeddings", torch.cat(
            [s + positional[P: P + len(s)].to(s.dtype) for s in suffix_embeddings]), persistent=False)
        self.register_buffer("eot_rows", torch.tensor(eot_rows, device=device), persistent=False)
        self.register_buffer("mask", mask, persistent=False)
