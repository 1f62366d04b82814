"""CoCoOp (``coop.model.cocoop``, ``coop.methods.cocoop_train``) against the official computation.

The reference below, ``_official_logits``, is a transcription of the official forward
(github:KaiyangZhou/CoOp, ``trainers/cocoop.py``: ``PromptLearner.__init__`` / ``forward``,
``TextEncoder.forward`` and ``CustomCLIP.forward`` from the image encoder's output on), in fp32,
with CLIP's own ``transformer`` over 77 tokens; it reads our model's ``ctx`` and ``meta_net`` only.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import clip
from coop.methods.cocoop_train import CoCoOpConfig, build, coop_base2new_config, cocoop_config, fit, predict
from coop.model.cocoop import CoCoOp
from coop.model.clip_loader import load_clip
from coop.runs.experiment import TrainSet
from coop.utils.errors import UserError
from coop.utils.seed import set_seed

NAMES = ["ant", "car_side", "yin_yang", "electric guitar with a very long and unusual name", "x", "water_lilly"]


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# --- the official computation, transcribed -----------------------------------------------------------
def _official_text_encoder(clip_model, prompts, tokenized_prompts):
    x = prompts + clip_model.positional_embedding
    x = x.permute(1, 0, 2)  # NLD -> LND
    x = clip_model.transformer(x)
    x = x.permute(1, 0, 2)  # LND -> NLD
    x = clip_model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokenized_prompts.argmax(dim=-1)] @ clip_model.text_projection


def _official_logits(clip_model, classnames, ctx, meta_net, image_features, ctx_init="a photo of a"):
    n_cls, n_ctx = len(classnames), ctx.shape[0]
    prompt_prefix = ctx_init
    classnames = [name.replace("_", " ") for name in classnames]
    prompts = [prompt_prefix + " " + name + "." for name in classnames]
    tokenized_prompts = torch.cat([clip.tokenize(p) for p in prompts])
    with torch.no_grad():
        embedding = clip_model.token_embedding(tokenized_prompts)
    token_prefix, token_suffix = embedding[:, :1, :], embedding[:, 1 + n_ctx:, :]

    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    bias = meta_net(image_features).unsqueeze(1)  # (batch, 1, ctx_dim)
    ctx_shifted = ctx.unsqueeze(0) + bias  # (batch, n_ctx, ctx_dim)
    prompts = []
    for ctx_shifted_i in ctx_shifted:
        ctx_i = ctx_shifted_i.unsqueeze(0).expand(n_cls, -1, -1)
        prompts.append(torch.cat([token_prefix, ctx_i, token_suffix], dim=1))
    prompts = torch.stack(prompts)
    logit_scale = clip_model.logit_scale.exp()
    logits = []
    for pts_i, imf_i in zip(prompts, image_features):
        text_features = _official_text_encoder(clip_model, pts_i, tokenized_prompts)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        logits.append(logit_scale * imf_i @ text_features.t())
    return torch.stack(logits)


def _official_ctx_init(clip_model, ctx_init="a photo of a"):
    n_ctx = len(ctx_init.split(" "))
    with torch.no_grad():
        return clip_model.token_embedding(clip.tokenize(ctx_init))[0, 1: 1 + n_ctx, :]


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rn50():
    model, _ = load_clip("random:RN50", device="cpu")
    return model


def _model_and_inputs(clip_model, names, n_img, seed=0):
    torch.manual_seed(seed)
    model = CoCoOp(clip_model, names)
    with torch.no_grad():  # move the context off its init: a generic point, not a special one
        model.ctx.add_(0.05 * torch.randn_like(model.ctx))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n_img, clip_model.visual.output_dim, generator=g)
    y = torch.randint(len(names), (n_img,), generator=g)
    return model, x, y


def _grads(model, x, y, **path):
    params = model.trainable_parameters()
    logits = model(x, **path)
    loss = F.cross_entropy(logits, y) + 0.01 * logits.square().mean()
    return logits.detach(), torch.autograd.grad(loss, params)


def _check_against_official(clip_model, names, n_img):
    model, x, y = _model_and_inputs(clip_model, names, n_img)
    assert torch.equal(CoCoOp(clip_model, names).ctx, _official_ctx_init(clip_model))
    with torch.no_grad():
        ref = _official_logits(clip_model, names, model.ctx, model.meta_net, x)
        for path in (dict(fast=True), dict(fast=False), dict(fast=False, truncate=True)):
            assert rel(model(x, **path), ref) < 1e-5, path
    _, g_naive = _grads(model, x, y, fast=False)
    _, g_fast = _grads(model, x, y, fast=True)
    names_ = [k for k, p in model.named_parameters() if p.requires_grad]
    assert names_ == ["ctx", "meta_net.linear1.weight", "meta_net.linear1.bias",
                      "meta_net.linear2.weight", "meta_net.linear2.bias"]
    for k, gf, gn in zip(names_, g_fast, g_naive):
        assert gn.abs().sum() > 0 and rel(gf, gn) < 1e-5, k


def test_fast_and_naive_equal_the_official_forward_on_tiny(tiny_clip):
    _check_against_official(tiny_clip, NAMES, n_img=3)


def test_fast_and_naive_equal_the_official_forward_on_rn50(rn50):
    """RN50's text tower (12 blocks of width 512) and meta-net 1024 -> 64 -> 512, random weights."""
    model = CoCoOp(rn50, NAMES[:5])
    assert (model.meta_net.linear1.in_features, model.meta_net.linear1.out_features,
            model.meta_net.linear2.out_features) == (1024, 64, 512)
    _check_against_official(rn50, NAMES[:5], n_img=2)


def test_the_paths_agree_to_1e10_in_fp64(tiny_clip, monkeypatch):
    """In float64 rounding all but vanishes: the two paths are the same maths."""
    monkeypatch.setattr(clip.model.LayerNorm, "forward", torch.nn.LayerNorm.forward)  # CLIP's casts to fp32
    model, x, y = _model_and_inputs(tiny_clip.double(), NAMES, 3)
    model.double()
    f_naive, g_naive = _grads(model, x.double(), y, fast=False)
    f_fast, g_fast = _grads(model, x.double(), y, fast=True)
    assert rel(f_fast, f_naive) < 1e-10
    assert all(rel(a, b) < 1e-10 for a, b in zip(g_fast, g_naive))


def test_each_image_has_its_own_prompts(tiny_clip):
    """Guard against a test that cannot fail: the meta-net's shift changes the text side per image."""
    model, x, _ = _model_and_inputs(tiny_clip, NAMES, 2)
    with torch.no_grad():
        ctx = model.instance_context(F.normalize(x, dim=-1))
        t = model.text_features_fast(ctx)
        assert rel(t[0], t[1]) > 1e-4
        one = model(x[1:])  # an image's logits do not depend on the other images of its batch
        assert rel(model(x)[1:], one) < 1e-6


def test_checkpoint_restores_on_the_other_half(tiny_clip):
    model, x, _ = _model_and_inputs(tiny_clip, NAMES[:3], 2)
    saved = model.checkpoint()
    assert saved["n_cls"] == 3 and saved["classnames"] == NAMES[:3] and saved["kind"] == "cocoop"
    same = CoCoOp.restore(tiny_clip, saved, NAMES[:3], trained_on=NAMES[:3])
    with torch.no_grad():
        assert torch.equal(same(x), model(x))
    other = CoCoOp.restore(tiny_clip, saved, NAMES[3:], trained_on=NAMES[:3])  # the new half: legitimate
    assert other.n_cls == 3 and all(torch.equal(other.learned_state()[k], v) for k, v in saved["state"].items())
    with pytest.raises(UserError, match="trained on 3 classes"):
        CoCoOp.restore(tiny_clip, saved, NAMES[3:], trained_on=NAMES[3:])
    with pytest.raises(UserError, match="not a CoCoOp checkpoint"):
        CoCoOp.restore(tiny_clip, {"state": saved["state"]}, NAMES, trained_on=NAMES[:3])
    bad = {**saved, "state": {**saved["state"], "ctx": torch.zeros(4, 7)}}
    with pytest.raises(UserError, match="another CLIP"):
        CoCoOp.restore(tiny_clip, bad, NAMES, trained_on=NAMES[:3])


# --- training ----------------------------------------------------------------------------------------
def _toy_train(clip_model, n_cls=4, shots=3, epochs=6, seed=0):
    """Class-dependent features with per-crop noise: U = epochs crops of N = n_cls * shots images."""
    g = torch.Generator().manual_seed(seed)
    means = 3 * torch.randn(n_cls, clip_model.visual.output_dim, generator=g)
    labels = torch.arange(n_cls).repeat_interleave(shots)
    feats = means[labels].unsqueeze(0) + torch.randn(epochs, len(labels), means.shape[1], generator=g)
    return TrainSet(feats, labels, list(range(epochs)))


def _train(clip_model, seed, cfg):
    set_seed(seed)
    model = build(clip_model, NAMES[:4], cfg)
    history = fit(model, _toy_train(clip_model, epochs=cfg.epochs), cfg, progress=False)
    return model, history


def test_training_reduces_the_loss_and_is_deterministic(tiny_clip):
    cfg = cocoop_config(shots=3, epochs=6, lr=0.05)
    cfg.check()
    model, h = _train(tiny_clip, 1, cfg)
    assert h["epoch"] == list(range(1, 7)) and h["lr"][0] == cfg.warmup_lr
    assert h["loss"][-1] < 0.9 * h["loss"][1]  # after the warm-up epoch
    again, h2 = _train(tiny_clip, 1, cfg)
    assert h2 == h and all(torch.equal(a, b) for a, b in zip(model.learned_state().values(),
                                                             again.learned_state().values()))
    other, h3 = _train(tiny_clip, 2, cfg)
    assert h3 != h
    feats = _toy_train(tiny_clip, epochs=1, seed=5).features[0]  # 12 unseen crops
    logits = predict(model, feats, batch_size=5)
    with torch.no_grad():
        assert rel(logits, model(feats)) < 1e-6 and logits.shape == (12, 4)
    assert all(p.grad is None for p in tiny_clip.parameters())  # CLIP stays frozen


def test_training_labels_must_fit_the_half(tiny_clip):
    cfg = cocoop_config(shots=3, epochs=2)
    model = build(tiny_clip, NAMES[:2], cfg)
    with pytest.raises(UserError, match="relabel"):
        fit(model, _toy_train(tiny_clip, n_cls=4, epochs=2), cfg, progress=False)


def test_recipes_are_the_official_configs():
    c = CoCoOpConfig()  # vit_b16_c4_ep10_batch1_ctxv1.yaml, base2new_train.sh
    assert (c.shots, c.batch_size, c.epochs, c.lr, c.momentum, c.weight_decay, c.warmup_epochs, c.warmup_lr,
            c.n_ctx, c.ctx_init) == (16, 1, 10, 0.002, 0.9, 5e-4, 1, 1e-5, 4, "a photo of a")
    assert c.identity()["method"] == "cocoop" and c.settings()["epochs"] == "CoCoOp's"
    o = coop_base2new_config()  # vit_b16_ctxv1.yaml
    assert (o.shots, o.batch_size, o.epochs, o.lr, o.n_ctx, o.ctx_init, o.csc, o.class_token_position) == \
        (16, 32, 200, 0.002, 4, "a photo of a", False, "end")
    with pytest.raises(UserError, match="shared context"):
        CoCoOpConfig(csc=True).check()


def test_bench_row_has_every_path(tiny_clip):
    from coop.measure.bench_cocoop import cocoop_step_times

    row = cocoop_step_times(tiny_clip, NAMES, eval_batch=2, repeat=1)
    for kind in ("train", "eval"):
        assert all(row[f"{kind}_{p}_{c}_s"] > 0 for p in ("naive", "truncated", "fast") for c in ("wall", "cpu"))
        assert row[f"{kind}_speedup_fast_wall"] > 0 and row[f"{kind}_speedup_fast_cpu"] > 0
