"""CoCoOp: CoOp's context shifted per image by a small meta-net, over a frozen CLIP.

Zhou et al., "Conditional Prompt Learning for Vision-Language Models" (CVPR 2022, arXiv
2203.05557); the official ``trainers/cocoop.py`` of github:KaiyangZhou/CoOp read as facts:

- M context vectors (4), initialised from the token embeddings of "a photo of a" (``ctx_init``:
  the embeddings after [SOS] of the tokenised words; the official code takes M = the number of
  words, we require the number of BPE tokens, the same for "a photo of a");
- a meta-net ``Linear(vis_dim, vis_dim // 16) - ReLU - Linear(vis_dim // 16, ctx_dim)`` (RN50:
  1024 -> 64 -> 512) whose output ``pi(x)`` is added to every context vector: v_m(x) = v_m + pi(x);
- the image feature is L2-normalised *before* the meta-net (``CustomCLIP.forward``); each image
  gets its own prompts ``[SOS] v_1(x) .. v_M(x) [CLASS] . [EOT]`` for every class, and
  ``logits[i, c] = exp(logit_scale) * <x_i, t_c(x_i)>`` with unit-norm text features.

The input is the cached raw output of CLIP's image encoder, as CoOp's (:class:`coop.CoOp`).
Two paths compute the same logits:

- *naive* (the official one): for each image, all n_cls prompts through the text encoder, 77 tokens
  each (or truncated after the last EOT);
- *fast*: with the causal mask ``[SOS] v_1(x)..v_M(x)`` is the same for every class of an image, so
  each image runs one packed sequence -- its prefix, then every class's remaining tokens (name, ".",
  EOT) under CoOp's block-causal mask (:class:`coop.model.text_encoder.PackedSuffix`) -- and B
  images run as a batch of B such sequences through CLIP's frozen blocks' own pieces.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import UserError
from .prompt_learner import CoOp, underscores_as_spaces
from .text_encoder import TextBlock

KIND = "cocoop"


def packed_block(blk: TextBlock, h: torch.Tensor, mask: torch.Tensor,
                 rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:meth:`TextBlock.forward_packed` for a batch of packed sequences sharing one mask.

    h: [B, T, d], mask: [T, T] (True = may attend) -> [B, T, d], or [B, len(rows), d] with ``rows``.
    """
    q, k, v = blk.qkv(h)  # each [B, H, T, hd]
    if rows is not None:
        q, mask, h = q[:, :, rows], mask[rows], h[:, rows]
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return blk.finish(h, blk.merge_heads(o))


class CoCoOp(CoOp):
    """CoOp's prompt learner (end position, one shared context) plus CoCoOp's meta-net.

    Args:
        clip_model: a CLIP from :func:`coop.load_clip`; its parameters are frozen.
        classnames: class names in label order.
        n_ctx: number of context vectors M (4 in CoCoOp's config).
        ctx_init: words to initialise the context from ("a photo of a"); ``None`` draws it from
            N(0, 0.02) and needs ``n_ctx``.
        fast: use the fast path (per-image prefix) by default; ``forward(x, fast=False)`` is naive.
        prompt_name: the words a prompt uses for a class name (the data set's; default CoOp's).

    Trainable: ``ctx`` [M, ctx_dim] and ``meta_net`` (``linear1``, ``linear2``: weights and biases).
    """

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], n_ctx: int = 4,
                 ctx_init: Optional[str] = "a photo of a", fast: bool = True,
                 prompt_name: Callable[[str], str] = underscores_as_spaces):
        super().__init__(clip_model, classnames, n_ctx=n_ctx, class_token_position="end", ctx_init=ctx_init,
                         csc=False, block_mod=None, fast=fast, prompt_name=prompt_name)
        vis_dim = clip_model.visual.output_dim
        ctx_dim = clip_model.ln_final.weight.shape[0]
        hidden = vis_dim // 16
        if hidden < 1:
            raise ValueError(f"the image features have {vis_dim} dimensions; CoCoOp's meta-net needs at least 16")
        self.ctx_init = ctx_init
        # made on the CPU after the context (the official order; the same init on every device)
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, hidden)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(hidden, ctx_dim)),
        ])).to(device=self.ctx.device, dtype=self.ctx.dtype)  # fp16 under --precision fp16 (official: .half())

    @property
    def n_cls(self) -> int:
        return len(self.classnames)

    def instance_context(self, image_features: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features [B, D] -> the context of each image, ``ctx + meta_net(x)``: [B, M, d]."""
        bias = self.meta_net(image_features.to(self.ctx.dtype))  # [B, d]
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1)

    def text_features_naive(self, ctx: torch.Tensor, truncate: bool = False) -> torch.Tensor:
        """The official computation: per image, its n_cls prompts through the text encoder.

        ctx: [B, M, d] -> unnormalised text features [B, n_cls, embed_dim]; 77 tokens each unless
        ``truncate`` (then cut after the last EOT, which is exact too).
        """
        out = []
        for ctx_i in ctx:
            ctx_i = ctx_i.unsqueeze(0).expand(self.n_cls, -1, -1)
            prompts = torch.cat([self.token_prefix, ctx_i, self.token_suffix], dim=1)
            out.append(self.encoder(prompts, self.eot, truncate=truncate))
        return torch.stack(out)

    def text_features_fast(self, ctx: torch.Tensor) -> torch.Tensor:
        """The same [B, n_cls, embed_dim] from one packed sequence per image, the images as a batch.

        Image i's sequence is its prefix ``[SOS] ctx[i]`` (P = 1 + M tokens) followed by every class's
        suffix; the suffix tokens see the whole prefix of their image and, causally, their own class.
        The last block computes only the EOT rows.
        """
        enc, suffix = self.encoder, self.suffix
        B, P = ctx.shape[0], 1 + self.n_ctx
        prefix = torch.cat([self.token_prefix[:1].expand(B, -1, -1), ctx], dim=1)
        prefix = prefix + enc.positional_embedding[:P].to(ctx.dtype)
        h = torch.cat([prefix, suffix.embeddings.unsqueeze(0).expand(B, -1, -1)], dim=1)  # [B, P+T, d]
        last = len(enc.blocks) - 1
        for i, blk in enumerate(enc.blocks):
            h = packed_block(blk, h, suffix.mask, suffix.eot_rows if i == last else None)
        return enc.project(h)  # [B, n_cls, embed_dim]

    def forward(self, image_features: torch.Tensor, fast: Optional[bool] = None,
                truncate: bool = False) -> torch.Tensor:
        """Raw image features [B, D] -> logits [B, n_cls] (fp32).

        ``fast`` chooses the path (default: the model's ``fast``); ``truncate`` applies to the naive one.
        """
        fast = self.fast if fast is None else fast
        x = F.normalize(image_features.float(), dim=-1)  # before the meta-net, as CustomCLIP.forward
        ctx = self.instance_context(x)
        text = self.text_features_fast(ctx) if fast else self.text_features_naive(ctx, truncate)
        text = F.normalize(text.float(), dim=-1)
        return self.logit_scale.exp() * torch.bmm(text, x.unsqueeze(-1)).squeeze(-1)

    # --- saving and restoring ----------------------------------------------------------------------
    def checkpoint(self) -> Dict:
        """What a trained CoCoOp is rebuilt from: its settings, the classes it was trained on, the tensors.

        The learned tensors do not depend on the classes (the context is class-agnostic), so they can
        be evaluated on other classes -- the base-to-new protocol itself; ``classnames`` and
        ``n_cls`` record what they were trained on.
        """
        return {"kind": KIND, "n_ctx": self.n_ctx, "ctx_init": self.ctx_init, "n_cls": self.n_cls,
                "classnames": list(self.classnames), "state": self.learned_state()}

    @classmethod
    def restore(cls, clip_model: nn.Module, saved: Dict, classnames: Sequence[str],
                trained_on: Sequence[str], fast: bool = True,
                prompt_name: Callable[[str], str] = underscores_as_spaces) -> "CoCoOp":
        """A CoCoOp over ``classnames`` (the classes to evaluate) with the tensors of ``saved``.

        ``trained_on``: the classes the caller says ``saved`` was trained on (the base half); they
        must be the recorded ones, in order.
        """
        if not isinstance(saved, dict) or saved.get("kind") != KIND:
            raise UserError("the state to restore is not a CoCoOp checkpoint (CoCoOp.checkpoint()); "
                            "a CoOp context is loaded with coop.methods.context.load_context")
        names = list(saved["classnames"])
        if saved["n_cls"] != len(names):
            raise UserError(f"the CoCoOp checkpoint records n_cls={saved['n_cls']} but {len(names)} class names; "
                            f"it is damaged: retrain")
        if list(trained_on) != names:
            raise UserError(f"the CoCoOp checkpoint was trained on {len(names)} classes ({', '.join(names[:3])}, ...), "
                            f"not on the {len(trained_on)} given ({', '.join(list(trained_on)[:3])}, ...); "
                            f"pass the base half of the split it was trained with")
        model = cls(clip_model, classnames, n_ctx=saved["n_ctx"], ctx_init=saved["ctx_init"], fast=fast,
                    prompt_name=prompt_name)
        model.load_learned(saved["state"])
        return model.eval()

    def load_learned(self, state: Dict[str, torch.Tensor]) -> None:
        """Copy saved tensors (:meth:`learned_state`) into the trainable parameters, checked."""
        own = dict((k, p) for k, p in self.named_parameters() if p.requires_grad)
        if set(state) != set(own):
            raise UserError(f"the saved CoCoOp state has {sorted(state)}, this model needs {sorted(own)}")
        for k, p in own.items():
            if tuple(state[k].shape) != tuple(p.shape):
                raise UserError(f"the saved CoCoOp state's {k} is {tuple(state[k].shape)}, this CLIP needs "
                                f"{tuple(p.shape)}: it was learned over another CLIP; pass the same --model")
        with torch.no_grad():
            for k, p in own.items():
                p.copy_(state[k])
