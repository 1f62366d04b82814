"""Modifications of CLIP's text ``ResidualAttentionBlock`` that start as the identity and stay near it.

Each modification is a small module attached beside one frozen CLIP block (CLIP's source and
weights are never changed). It may add a per-token term to the block's query/key/value projection
(``qkv_delta``) or to its MLP branch (``mlp_delta``). Because both act token by token, the exact
shared-prefix text encoder of :mod:`coop.model.text_encoder` keeps working with them.

``adapter``: a bottleneck MLP beside the block's MLP, scaled by a per-layer gate that starts at 0,
    ``y = mlp(ln_2(x)); x = x + y + bounded(gate * up(QuickGELU(down(ln_2(x)))), y)``.
``lora``: low-rank updates of the query and value projections, ``q += bounded(B_q A_q ln_1(x), q)`` (same
    for v), with ``B`` initialised to zero as in LoRA.
The constraint (:func:`bounded`, :data:`BOUND`, fixed before any run): at every token the term changes
what it is added to -- the MLP's output, the query, the value -- by at most ``BOUND`` (10%) of that
quantity's norm; a larger term is scaled down to that length, its direction kept. At initialisation
both add exactly zero, so CoOp with them gives exactly CoOp's features.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

BLOCK_MODS = ("adapter", "lora")
BOUND = 0.1  # at each token a modification changes what it is added to by at most this share of its norm


def bounded(delta: torch.Tensor, base: torch.Tensor, bound: float = BOUND) -> torch.Tensor:
    """``delta`` with each token's vector (last dim) scaled down to at most ``bound`` * the norm of the same
    token's ``base``, its direction kept; shorter vectors unchanged, an exact zero stays zero. The norms
    are sqrt(sum of squares) clamped away from 0, so the gradient at a zero ``delta`` (the modification at
    initialisation) is finite: the factor is then exactly 1 and passes no gradient. The factor is computed in
    at least fp32 (in fp16 the clamp would flush to 0 and the squares overflow), then cast back."""
    wide = torch.promote_types(delta.dtype, torch.float32)  # fp16 would flush 1e-24 to 0 and overflow the squares
    norm = delta.to(wide).square().sum(-1, keepdim=True).clamp_min(1e-24).sqrt()
    limit = bound * base.to(wide).square().sum(-1, keepdim=True).sqrt()
    return delta * torch.clamp(limit / norm, max=1.0).to(delta.dtype)


class BlockMod(nn.Module):
    """Per-token additions to one block; ``None`` means "adds nothing"."""

    def qkv_delta(self, a: torch.Tensor, qkv: torch.Tensor) -> Optional[torch.Tensor]:
        """a = ln_1(x): [..., d]; qkv: the frozen projection of a, [..., 3d]; returns what to add to qkv."""
        return None

    def mlp_delta(self, m: torch.Tensor, y: torch.Tensor) -> Optional[torch.Tensor]:
        """m = ln_2(x): [..., d]; y = mlp(m), the frozen branch; returns what to add to y."""
        return None

    def size(self) -> float:
        """How far the trained modification is from the identity (0 at initialisation): for the adapter
        the Frobenius norm of g * up (its last layer's weight and bias scaled by the gate, so that a small
        gate with a large up is not mistaken for a small change), for LoRA that of its update B A (q and
        v together). Recorded per block in each run (report section 7.8); sign-free."""
        raise NotImplementedError


class GatedAdapter(BlockMod):
    def __init__(self, width: int, bottleneck: int = 8):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        nn.init.normal_(self.down.weight, std=width ** -0.5)
        nn.init.zeros_(self.down.bias)
        nn.init.normal_(self.up.weight, std=bottleneck ** -0.5)
        nn.init.zeros_(self.up.bias)
        self.gate = nn.Parameter(torch.zeros((), device="cpu"))  # 0 * anything finite == 0: exact identity at init

    def mlp_delta(self, m: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.down(m)
        return bounded(self.gate * self.up(h * torch.sigmoid(1.702 * h)), y)  # QuickGELU, as CLIP's MLP

    def size(self) -> float:
        up = torch.cat([self.up.weight.detach().float().flatten(), self.up.bias.detach().float()])
        return abs(float(self.gate.detach().float().cpu())) * float(up.norm().cpu())


class LoRA(BlockMod):
    def __init__(self, width: int, rank: int = 4):
        super().__init__()
        self.width = width
        # CPU generator, as every random init here: the same initial weights on every device
        self.a = nn.Parameter(torch.randn(2, rank, width, device="cpu") * width ** -0.5)  # for q and v
        self.b = nn.Parameter(torch.zeros(2, width, rank, device="cpu"))  # zero: exact identity at init

    def qkv_delta(self, a: torch.Tensor, qkv: torch.Tensor) -> torch.Tensor:
        q, _, v = qkv.chunk(3, dim=-1)
        dq = bounded(F.linear(F.linear(a, self.a[0]), self.b[0]), q)
        dv = bounded(F.linear(F.linear(a, self.a[1]), self.b[1]), v)
        return torch.cat([dq, torch.zeros_like(dq), dv], dim=-1)  # keys unchanged

    def size(self) -> float:
        return float(torch.linalg.matrix_norm(self.b.detach().float() @ self.a.detach().float()).norm().cpu())


def make_block_mod(name: str, width: int) -> BlockMod:
    """A new modification for one block of ``width``; ``name`` is one of :data:`BLOCK_MODS`."""
    if name == "adapter":
        return GatedAdapter(width)
    if name == "lora":
        return LoRA(width)
    raise ValueError(f"unknown block modification {name!r}; available: {', '.join(BLOCK_MODS)}")


def bonus_mods(spec: "str | None") -> list:
    """The modifications a sweep's --block-mod names, in :data:`BLOCK_MODS`' order: "all", "none" or names
    separated by spaces (a ValueError names what is unknown)."""
    words = (spec or "none").replace(",", " ").split()
    if words == ["all"]:
        return list(BLOCK_MODS)
    if words == ["none"]:
        return []
    unknown = [w for w in words if w not in BLOCK_MODS]
    if unknown or not words:
        raise ValueError(f"{' '.join(unknown) or spec!r} is not a block modification; use all, none or names from: "
                         f"{', '.join(BLOCK_MODS)}")
    return [m for m in BLOCK_MODS if m in words]
