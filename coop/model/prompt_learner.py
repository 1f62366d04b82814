"""CoOp: learnable context vectors in front of (or around) the class name, over a frozen CLIP.

Zhou et al., "Learning to Prompt for Vision-Language Models" (IJCV 2022, arXiv 2109.01134). The
hand-written prompt "a photo of a {class}." becomes ``[SOS] v1 .. vM [CLASS] . [EOT]``, where the
M context vectors live in CLIP's token-embedding space and are the only thing trained.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .precision import model_dtype
from .text_encoder import PackedSuffix, TextEncoder

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def underscores_as_spaces(words: str) -> str:
    """CoOp's reading of a class name or of ``ctx_init`` (its ``.replace("_", " ")``): ``car_side`` -> ``car side``.
    A data set may read its class names otherwise: it passes ``prompt_name`` (coop.data.folders.Dataset)."""
    return words.replace("_", " ")


def _tokenizer():
    import clip

    return clip.tokenize, clip.clip._tokenizer


class CoOp(nn.Module):
    """Prompt learner + frozen CLIP text encoder; ``forward(image_features)`` gives logits.

    Args:
        clip_model: a CLIP from :func:`coop.load_clip`. Its parameters are frozen
            (``requires_grad=False``); their values never change.
        classnames: class names in label order.
        n_ctx: number of context vectors M (16 in CoOp).
        class_token_position: ``"end"`` (CoOp's default), ``"middle"`` or ``"front"``.
        ctx_init: words to initialise the context from, e.g. ``"a photo of a"`` (then ``n_ctx``
            must equal their number of tokens); ``None`` draws it from N(0, 0.02) as CoOp does.
        csc: class-specific context (one set of M vectors per class) instead of a shared one.
        block_mod: a name from :data:`coop.BLOCK_MODS` to add a modification to every text block.
        fast: use the exact fast text encoder (truncation, and the shared prefix for ``end``).
        prompt_name: the words a prompt uses for a class name (the data set's; default CoOp's, ``_`` read
            as a space).
    """

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], n_ctx: int = 16,
                 class_token_position: str = "end", ctx_init: Optional[str] = None, csc: bool = False,
                 block_mod: Optional[str] = None, fast: bool = True,
                 prompt_name: Callable[[str], str] = underscores_as_spaces):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"class_token_position must be one of {CLASS_TOKEN_POSITIONS}, got {class_token_position!r}")
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1, got {n_ctx}")
        for p in clip_model.parameters():
            p.requires_grad_(False)
        tokenize, tokenizer = _tokenizer()
        names = [prompt_name(c) for c in classnames]
        n_cls = len(names)
        width = clip_model.ln_final.weight.shape[0]
        device = clip_model.token_embedding.weight.device
        dtype = model_dtype(clip_model)  # fp32, or fp16 under --precision fp16 (as CoOp's clip_model.dtype)

        if ctx_init:
            words = underscores_as_spaces(ctx_init).strip()
            init_len = len(tokenizer.encode(words))
            if init_len != n_ctx:
                raise ValueError(f"ctx_init {ctx_init!r} is {init_len} tokens but n_ctx={n_ctx}; pass n_ctx={init_len}")
            with torch.no_grad():
                ctx = clip_model.token_embedding(tokenize(words).to(device))[0, 1: 1 + n_ctx].to(dtype)
            if csc:
                ctx = ctx.unsqueeze(0).repeat(n_cls, 1, 1)
            prefix_words = words
        else:
            # drawn by the CPU generator, then moved: the same initial context on every device
            ctx = torch.empty(n_cls, n_ctx, width, device="cpu") if csc else torch.empty(n_ctx, width, device="cpu")
            nn.init.normal_(ctx, std=0.02)
            prefix_words = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(ctx.to(device=device, dtype=dtype))  # [n_ctx, width], or [n_cls, n_ctx, width] with csc

        prompts = [f"{prefix_words} {name}." for name in names]
        tokenized = tokenize(prompts).to(device)  # [n_cls, 77]
        with torch.no_grad():
            embedding = clip_model.token_embedding(tokenized).to(dtype)  # [n_cls, 77, width]
        self.register_buffer("token_prefix", embedding[:, :1], persistent=False)        # SOS
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:], persistent=False)  # CLASS . EOT pad
        self.register_buffer("eot", tokenized.argmax(dim=-1), persistent=False)  # EOT has the largest id
        self.name_lens = [len(tokenizer.encode(name)) for name in names]

        self.classnames = list(classnames)
        self.prompts = prompts
        self.n_ctx, self.csc, self.class_token_position = n_ctx, csc, class_token_position
        self.block_mod, self.fast = block_mod, fast
        self.encoder = TextEncoder(clip_model, block_mod)
        self.logit_scale = clip_model.logit_scale

        if class_token_position == "end" and not csc:
            P = 1 + n_ctx
            self.suffix = PackedSuffix(
                [self.token_suffix[c, : int(self.eot[c]) - P + 1] for c in range(n_cls)],
                prefix_len=P, positional=clip_model.positional_embedding.detach(),
            )
        self.to(device)  # everything it made (block modifications included) on the model's device

    @property
    def uses_shared_prefix(self) -> bool:
        return self.fast and self.class_token_position == "end" and not self.csc

    def trainable_parameters(self) -> List[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def prompt_embeddings(self) -> torch.Tensor:
        """The full prompts as CLIP's text encoder sees them: [n_cls, 77, width]."""
        n_cls = self.token_prefix.shape[0]
        ctx = self.ctx if self.csc else self.ctx.unsqueeze(0).expand(n_cls, -1, -1)
        prefix, suffix = self.token_prefix, self.token_suffix
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        rows = []
        half = self.n_ctx // 2
        for c, n in enumerate(self.name_lens):
            name, rest = suffix[c: c + 1, :n], suffix[c: c + 1, n:]  # class tokens; ". EOT pad"
            if self.class_token_position == "front":
                rows.append(torch.cat([prefix[c: c + 1], name, ctx[c: c + 1], rest], dim=1))
            else:  # middle
                rows.append(torch.cat([prefix[c: c + 1], ctx[c: c + 1, :half], name, ctx[c: c + 1, half:], rest], dim=1))
        return torch.cat(rows)

    def text_features(self, fast: Optional[bool] = None) -> torch.Tensor:
        """Unnormalised text features of every class's prompt, [n_cls, embed_dim].

        ``fast=False`` is the plain computation: all 77 positions through every block.
        """
        fast = self.fast if fast is None else fast
        if fast and self.uses_shared_prefix:
            return self.encoder.forward_shared_prefix(torch.cat([self.token_prefix[0], self.ctx]), self.suffix)
        return self.encoder(self.prompt_embeddings(), self.eot, truncate=fast)

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``logit_scale.exp() * cos(image, text)``: [B, D] x [n_cls, D] -> [B, n_cls]."""
        image_features, text_features = image_features.float(), text_features.float()  # fp16 text: fp32 logits
        return self.logit_scale.exp() * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).t()

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.logits(image_features, self.text_features())

    def learned_state(self) -> dict:
        """The trained tensors only (context and block-modification weights), for saving."""
        return {k: v.detach().cpu() for k, v in self.named_parameters() if v.requires_grad}
