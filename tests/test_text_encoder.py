"""The fast text path (truncation, shared prefix) against the plain full-length computation."""
import pytest
import torch

import clip
from coop.model.prompt_learner import CoOp

# Class names of very different token lengths, including multi-word and rare words.
NAMES = ["ant", "car_side", "yin_yang", "dalmatian", "water_lilly", "Motorbikes", "a",
         "crocodile_head", "electric guitar with a very long and unusual name", "stop_sign",
         "brontosaurus", "x"]


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_ctx_init_gives_exactly_clips_encode_text(tiny_clip):
    coop = CoOp(tiny_clip, NAMES, n_ctx=4, ctx_init="a photo of a")
    with torch.no_grad():
        ref = tiny_clip.encode_text(clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES]))
        plain = coop.text_features(fast=False)
        fast = coop.text_features(fast=True)
    assert torch.equal(plain, ref)  # the plain path is CLIP's own computation, bit for bit
    for c in range(len(NAMES)):
        assert rel(fast[c], ref[c]) < 1e-5


def _features_and_grads(coop, fast, target):
    params = coop.trainable_parameters()
    feats = coop.text_features(fast=fast)
    loss = (feats * target).sum() + feats.square().sum()
    return feats.detach(), torch.autograd.grad(loss, params)


def _coop_with_moved_mod(clip_model, position, csc, block_mod):
    torch.manual_seed(0)
    coop = CoOp(clip_model, NAMES, n_ctx=16, class_token_position=position, csc=csc, block_mod=block_mod)
    with torch.no_grad():  # move the modification away from its identity start, so it is exercised
        for p in coop.encoder.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return coop


CASES = [("end", False), ("end", True), ("middle", False), ("front", False)]


@pytest.mark.parametrize("position,csc", CASES)
@pytest.mark.parametrize("block_mod", [None, "adapter", "lora"])
def test_fast_path_equals_full_length_in_fp32(tiny_clip, position, csc, block_mod):
    """What training uses: fp32. Features and the context's gradient agree to 1e-5 relative."""
    coop = _coop_with_moved_mod(tiny_clip, position, csc, block_mod)
    target = torch.randn(len(NAMES), tiny_clip.text_projection.shape[1])
    f_plain, g_plain = _features_and_grads(coop, False, target)
    f_fast, g_fast = _features_and_grads(coop, True, target)
    assert rel(f_fast, f_plain) < 1e-5
    assert g_plain[0].abs().sum() > 0 and rel(g_fast[0], g_plain[0]) < 1e-5  # [0] is .ctx


@pytest.mark.parametrize("position,csc", CASES)
@pytest.mark.parametrize("block_mod", [None, "adapter", "lora"])
def test_fast_path_is_exact_in_fp64(tiny_clip, position, csc, block_mod, monkeypatch):
    """In float64 rounding all but vanishes: every gradient (context and block modification,
    including scalar gates whose fp32 sums cancel) agrees to 1e-10, so the paths are the same maths."""
    # clip.model.LayerNorm computes in fp32 whatever the input (for fp16); let it run in fp64 here
    monkeypatch.setattr(clip.model.LayerNorm, "forward", torch.nn.LayerNorm.forward)
    coop = _coop_with_moved_mod(tiny_clip.double(), position, csc, block_mod).double()
    target = torch.randn(len(NAMES), tiny_clip.text_projection.shape[1], dtype=torch.float64)
    f_plain, g_plain = _features_and_grads(coop, False, target)
    f_fast, g_fast = _features_and_grads(coop, True, target)
    assert rel(f_fast, f_plain) < 1e-10
    assert len(g_fast) == len(g_plain) == len(coop.trainable_parameters())
    for gf, gp in zip(g_fast, g_plain):
        assert gp.abs().sum() > 0 and rel(gf, gp) < 1e-10


def test_shared_prefix_is_used_only_where_it_is_exact(tiny_clip):
    assert CoOp(tiny_clip, NAMES).uses_shared_prefix
    assert not CoOp(tiny_clip, NAMES, csc=True).uses_shared_prefix
    assert not CoOp(tiny_clip, NAMES, class_token_position="front").uses_shared_prefix


def test_fast_path_is_not_trivially_equal_when_it_should_differ(tiny_clip):
    """Guard against a test that cannot fail: a different context must give different features."""
    coop = CoOp(tiny_clip, NAMES)
    with torch.no_grad():
        a = coop.text_features(fast=True).clone()
        coop.ctx.add_(0.1 * torch.randn_like(coop.ctx))  # a constant shift would be absorbed by LayerNorm
        b = coop.text_features(fast=True)
    assert rel(a, b) > 1e-3


def _openai_attention(self, x):
    """OpenAI's own ``ResidualAttentionBlock.attention`` (github.com/openai/CLIP): the block's fixed
    77 x 77 mask, not sliced to the sequence length as clip-anytorch does."""
    mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
    return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]


@pytest.mark.parametrize("position,csc,block_mod", [("end", False, None), ("middle", False, None),
                                                    ("front", False, None), ("end", True, None),
                                                    ("end", False, "adapter"), ("middle", True, "lora")])
def test_every_path_gives_the_same_numbers_with_openais_clip(tiny_clip, monkeypatch, position, csc, block_mod):
    coop = _coop_with_moved_mod(tiny_clip, position, csc, block_mod)
    target = torch.randn(len(NAMES), tiny_clip.text_projection.shape[1], generator=torch.Generator().manual_seed(1))
    before = {fast: _features_and_grads(coop, fast, target) for fast in (False, True)}
    tokens = clip.tokenize([f"a photo of a {n}." for n in NAMES])
    with torch.no_grad():
        zs_before = tiny_clip.encode_text(tokens)

    monkeypatch.setattr(clip.model.ResidualAttentionBlock, "attention", _openai_attention)
    block = tiny_clip.transformer.resblocks[0]
    with pytest.raises(RuntimeError):  # the patch is OpenAI's behaviour: a short sequence fails there
        block(torch.zeros(10, 1, tiny_clip.ln_final.weight.shape[0]))
    for fast in (False, True):  # plain (77 tokens) and fast (truncated, shared prefix) paths
        feats, grads = _features_and_grads(coop, fast, target)
        assert torch.equal(feats, before[fast][0])
        assert all(torch.equal(g, h) for g, h in zip(grads, before[fast][1]))
    with torch.no_grad():
        assert torch.equal(tiny_clip.encode_text(tokens), zs_before)  # zero-shot: 77 tokens, CLIP's own path


def test_fast_path_equals_full_length_on_rn50s_text_tower():
    """The default case (class token at the end, shared context) on RN50's own text tower -- 12 blocks of
    width 512, 8 heads, random weights -- in fp32: the bound the report states holds at full size too."""
    from coop.model.clip_loader import load_clip

    model, _ = load_clip("random:RN50", device="cpu")
    assert len(model.transformer.resblocks) == 12 and model.transformer.width == 512
    coop = _coop_with_moved_mod(model, "end", False, None)
    target = torch.randn(len(NAMES), model.text_projection.shape[1])
    f_plain, g_plain = _features_and_grads(coop, False, target)
    f_fast, g_fast = _features_and_grads(coop, True, target)
    assert rel(f_fast, f_plain) < 1e-5
    assert g_plain[0].abs().sum() > 0 and rel(g_fast[0], g_plain[0]) < 1e-5
