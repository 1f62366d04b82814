"""Tip-Adapter's smaller behaviours that the mutation pass found unpinned: the float32 arithmetic
whatever the features' dtype, a cache from a single [N, D] view or without the last class, logits
of features taken as given, and the search's answer when no grid point beats 0%."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from coop.methods import tip_adapter as tip

N_CLASSES, DIM = 4, 8


def _features(seed: int, shape):
    g = torch.Generator().manual_seed(seed)
    return 1.0 + torch.randn(shape, generator=g)  # raw, unnormalised


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def _problem():
    y = torch.arange(N_CLASSES).repeat_interleave(3)
    views = _features(1, (2, len(y), DIM))
    text_w = _unit(_features(2, (N_CLASSES, DIM)))
    val_f, test_f = _features(3, (12, DIM)), _features(4, (10, DIM))
    return views, y, val_f, y, test_f, text_w


def test_half_precision_features_are_computed_in_float32():
    """fp16 features (a CUDA CLIP's output) give what their float32 values give, in float32."""
    args = _problem()
    half = [a.half() if a.is_floating_point() else a for a in args]
    as_float = [a.float() for a in half]
    kw = dict(epochs=2, batch_size=5, search_step=(6, 4))
    got, want = tip.run_tip_adapter_f(*half, **kw), tip.run_tip_adapter_f(*as_float, **kw)
    assert got["keys"].dtype == torch.float32
    assert torch.equal(got["keys"], want["keys"]) and got["losses"] == want["losses"]
    assert torch.equal(got["predictions"], want["predictions"])
    keys, values = tip.cache_model(half[0], half[1], N_CLASSES)
    assert keys.dtype == values.dtype == torch.float32


def test_cache_of_a_single_view_and_without_the_last_class():
    views, y = _features(5, (6, DIM)), torch.tensor([0, 0, 1, 1, 2, 2])  # class 3 has no image
    keys, values = tip.cache_model(views, y, N_CLASSES)
    assert torch.allclose(keys, _unit(views), atol=1e-7, rtol=0)
    assert torch.equal(values, F.one_hot(y, N_CLASSES).float()) and values.shape == (6, N_CLASSES)


def test_logits_take_features_as_given_when_asked():
    f = 3.0 * _unit(_features(6, (5, DIM)))  # not unit length
    text_w, keys = _unit(_features(7, (N_CLASSES, DIM))), _unit(_features(8, (6, DIM)))
    values = F.one_hot(torch.arange(6) % N_CLASSES, N_CLASSES).float()
    got = tip.tip_logits(f, text_w, keys, values, alpha=2.0, beta=1.5, normalise=False)
    want = 100 * f @ text_w.T + 2.0 * torch.exp(-1.5 * (1 - f @ keys.T)) @ values
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-6)
    assert not torch.allclose(got, tip.tip_logits(f, text_w, keys, values, alpha=2.0, beta=1.5), atol=1e-2)


def test_search_with_no_point_above_zero_gives_alpha_and_beta_zero():
    """As search_hp: only a point strictly better than the best so far (starting at 0%) is kept."""
    views, y, val_f, _, _, text_w = _problem()
    keys, values = tip.cache_model(views, y, N_CLASSES)
    never = torch.full((len(val_f),), N_CLASSES)  # a label no prediction can equal
    assert tip.search_alpha_beta(val_f, never, text_w, keys, values, search_step=(6, 4)) == \
        {"alpha": 0.0, "beta": 0.0, "val_accuracy": 0.0, "tied": 6 * 4, "edge": [],
         "grid_points": 6 * 4}  # every grid point ties at 0%


def test_the_search_over_all_alphas_at_once_equals_one_alpha_at_a_time():
    """The search evaluates a beta's 20 alphas in one batch (the demo's time); the plain double loop of
    Tip-Adapter's ``search_hp`` must choose the same point with the same accuracy."""
    import torch

    from coop.methods import tip_adapter as T

    g = torch.Generator().manual_seed(3)
    for n, c in ((40, 10), (200, 50)):
        f = torch.randn(n, 32, generator=g)
        y = torch.randint(c, (n,), generator=g)
        text_w = T._normalise(torch.randn(c, 32, generator=g))
        keys = T._normalise(torch.randn(3 * c, 32, generator=g))
        values = torch.nn.functional.one_hot(torch.arange(3 * c) % c, c).float()
        got = T.search_alpha_beta(f, y, text_w, keys, values)
        fn = T._normalise(f)
        best = (0.0, 0.0, 0.0)
        betas, alphas = T.search_grid(T.SEARCH_SCALE, T.SEARCH_STEP)
        for beta in betas:
            cache = ((-1) * (beta - beta * (fn @ keys.t()))).exp() @ values
            for alpha in alphas:
                acc = T.accuracy(T.CLIP_SCALE * fn @ text_w.t() + cache * alpha, y)
                if acc > best[0]:
                    best = (acc, beta, alpha)
        assert (got["val_accuracy"], got["beta"], got["alpha"]) == best
