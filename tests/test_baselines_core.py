"""Linear-probe CLIP (lpclip's C search) and Tip-Adapter(-F) on small synthetic features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from coop.methods import linear_probe as lp
from coop.methods import tip_adapter as tip

N_CLASSES, DIM = 5, 16


def _clip_like(n_per_class: int, seed: int, views: int = 0, noise: float = 1.0):
    """Raw (unnormalised) features: a class prototype plus noise, a common offset, varied norms."""
    g = torch.Generator().manual_seed(1000)
    protos = torch.randn(N_CLASSES, DIM, generator=g)
    offset = 2 * torch.randn(DIM, generator=g)
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N_CLASSES).repeat_interleave(n_per_class)
    shape = (views, len(y), DIM) if views else (len(y), DIM)
    x = protos[y] + offset + noise * torch.randn(shape, generator=g)
    scale = 0.5 + torch.rand(shape[:-1] + (1,), generator=g) * 3
    return x * scale, y, protos


# ---------------------------------------------------------------- linear probe (lpclip)

def _lpclip_search(train_x, train_y, val_x, val_y, num_step=8):
    """lpclip/linear_probe.py's search, written out as it is there (plain sklearn calls)."""
    search_list = [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6]
    acc_list = []
    for c_weight in search_list:
        clf = LogisticRegression(solver="lbfgs", max_iter=1000, C=c_weight).fit(train_x, train_y)
        pred = clf.predict(val_x)
        acc_list.append(sum(pred == val_y) / len(val_y))
    c_peak = search_list[np.argmax(acc_list)]
    c_left, c_right = 1e-1 * c_peak, 1e1 * c_peak
    for _ in range(num_step):
        clf_left = LogisticRegression(solver="lbfgs", max_iter=1000, C=c_left).fit(train_x, train_y)
        acc_left = sum(clf_left.predict(val_x) == val_y) / len(val_y)
        clf_right = LogisticRegression(solver="lbfgs", max_iter=1000, C=c_right).fit(train_x, train_y)
        acc_right = sum(clf_right.predict(val_x) == val_y) / len(val_y)
        if acc_left < acc_right:
            c_final, acc_final = c_right, acc_right
            c_left = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_right = np.log10(c_right)
        else:
            c_final, acc_final = c_left, acc_left
            c_right = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_left = np.log10(c_left)
        c_left, c_right = np.power(10, c_left), np.power(10, c_right)
    return c_final, 100 * acc_final, acc_list


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
# (4, 2.0): tied grid peak; (6, 3.0): the last step takes the right end; (2, 0.5): easy data.
@pytest.mark.parametrize("seed,noise", [(1, 2.0), (4, 2.0), (6, 3.0), (2, 0.5)])
def test_linear_probe_search_is_lpclips(seed, noise):
    tx, ty, _ = _clip_like(3, seed, noise=noise)
    vx, vy, _ = _clip_like(4, seed + 100, noise=noise)
    tx, ty, vx, vy = tx.double().numpy(), ty.numpy(), vx.double().numpy(), vy.numpy()
    want_c, want_acc, grid_accs = _lpclip_search(tx, ty, vx, vy)
    assert len(set(grid_accs)) > 1  # the grid is not flat: picking its peak means something

    got = lp.search_c(torch.from_numpy(tx).float(), torch.from_numpy(ty), vx, vy)
    assert got["C"] == want_c
    assert got["val_accuracy"] == want_acc
    assert len(got["searched"]) == 7 + 2 * 8
    assert [c for c, _ in got["searched"][:7]] == [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6]
    assert [a for _, a in got["searched"][:7]] == [100 * a for a in grid_accs]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_run_linear_probe_predicts_with_the_chosen_c_on_raw_features():
    tx, ty, _ = _clip_like(3, 1, noise=2.0)
    vx, vy, _ = _clip_like(4, 101, noise=2.0)
    qx, _, _ = _clip_like(4, 202, noise=2.0)
    out = lp.run_linear_probe(tx, ty, vx, vy, qx)
    assert set(out) >= {"C", "val_accuracy", "searched", "predictions"}
    assert out["predictions"].dtype == np.int64 and out["predictions"].shape == (len(qx),)
    direct = LogisticRegression(solver="lbfgs", max_iter=1000, C=out["C"]).fit(tx.double().numpy(), ty.numpy())
    np.testing.assert_array_equal(out["predictions"], direct.predict(qx.double().numpy()))
    np.testing.assert_array_equal(lp.fit_predict(tx, ty, qx, out["C"]), out["predictions"])


# ---------------------------------------------------------------- Tip-Adapter

@pytest.fixture(scope="module")
def data():
    views, y, protos = _clip_like(4, seed=3, views=3, noise=1.5)
    val_f, val_y, _ = _clip_like(8, seed=4, noise=1.5)
    test_f, test_y, _ = _clip_like(8, seed=5, noise=1.5)
    g = torch.Generator().manual_seed(6)
    # Poor text classifier (noisy prototypes), so the cache and alpha/beta matter.
    text_w = protos + 2.5 * torch.randn(protos.shape, generator=g)
    text_w = text_w / text_w.norm(dim=-1, keepdim=True)
    return dict(views=views, y=y, val_f=val_f, val_y=val_y, test_f=test_f, test_y=test_y, text_w=text_w)


def _norm(x):
    return x / x.norm(dim=-1, keepdim=True)


def test_cache_keys_and_values(data):
    keys, values = tip.cache_model(data["views"], data["y"], N_CLASSES)
    want = _norm(data["views"].mean(dim=0))  # build_cache_model: average raw views, then normalise
    assert torch.allclose(keys, want, atol=1e-6, rtol=0)
    assert torch.allclose(keys.norm(dim=-1), torch.ones(len(keys)), atol=1e-6)
    # Normalising each view first would be a different cache here (the views' norms differ).
    assert not torch.allclose(keys, _norm(_norm(data["views"]).mean(dim=0)), atol=1e-4)
    assert values.dtype == torch.float32 and values.shape == (len(data["y"]), N_CLASSES)
    assert torch.equal(values.sum(dim=1), torch.ones(len(values)))
    assert torch.equal(values.argmax(dim=1), data["y"])
    assert set(values.unique().tolist()) == {0.0, 1.0}


def test_tip_logits_alpha_zero_is_zero_shot_and_cache_term_matches(data):
    keys, values = tip.cache_model(data["views"], data["y"], N_CLASSES)
    f = data["test_f"]
    zero_shot = 100 * _norm(f) @ data["text_w"].T
    assert torch.equal(tip.tip_logits(f, data["text_w"], keys, values, alpha=0.0, beta=5.0), zero_shot)
    fn = _norm(f)
    cache = torch.exp(-2.0 * (1 - fn @ keys.T)) @ values
    got = tip.tip_logits(f, data["text_w"], keys, values, alpha=1.5, beta=2.0)
    assert torch.allclose(got, zero_shot + 1.5 * cache, atol=1e-4, rtol=1e-5)


def _brute_force(val_f, val_y, text_w, keys, values, scale, step):
    f = _norm(val_f)
    betas = [i * (scale[0] - 0.1) / step[0] + 0.1 for i in range(step[0])]
    alphas = [i * (scale[1] - 0.1) / step[1] + 0.1 for i in range(step[1])]
    results = []  # (correct, beta, alpha) in search_hp's order
    for beta in betas:
        for alpha in alphas:
            logits = 100. * f @ text_w.T + ((-1) * (beta - beta * (f @ keys.T))).exp() @ values * alpha
            results.append((int((logits.argmax(dim=1) == val_y).sum()), beta, alpha))
    return results


@pytest.mark.parametrize("scale,step", [((12, 5), (30, 10)), ((7, 10), (13, 7))])
def test_search_returns_the_best_grid_point(data, scale, step):
    keys, values = tip.cache_model(data["views"], data["y"], N_CLASSES)
    results = _brute_force(data["val_f"], data["val_y"], data["text_w"], keys, values, scale, step)
    counts = [r[0] for r in results]
    assert max(counts) > min(counts)  # the grid matters on these features
    best = results[counts.index(max(counts))]  # first maximum, as search_hp's strict ">"
    got = tip.search_alpha_beta(data["val_f"], data["val_y"], data["text_w"], keys, values, scale, step)
    assert (got["beta"], got["alpha"]) == (best[1], best[2])
    assert got["val_accuracy"] == pytest.approx(100 * best[0] / len(data["val_y"]))
    assert got["tied"] == counts.count(max(counts))  # how many grid points reach the best: said by the report


def test_run_tip_adapter_uses_the_searched_point(data):
    d = data
    out = tip.run_tip_adapter(d["views"], d["y"], d["val_f"], d["val_y"], d["test_f"], d["text_w"],
                              search_step=(40, 10))
    keys, values = tip.cache_model(d["views"], d["y"], N_CLASSES)
    want = tip.tip_logits(d["test_f"], d["text_w"], keys, values, out["alpha"], out["beta"]).argmax(dim=1)
    assert torch.equal(out["predictions"], want)
    assert out["val_accuracy"] > 0


def test_tip_adapter_f_is_deterministic_trains_keys_and_reduces_to_tip_adapter(data):
    d = data
    args = (d["views"], d["y"], d["val_f"], d["val_y"], d["test_f"], d["text_w"])
    kw = dict(search_step=(40, 10), batch_size=8)
    a = tip.run_tip_adapter_f(*args, epochs=6, seed=0, **kw)
    b = tip.run_tip_adapter_f(*args, epochs=6, seed=0, **kw)
    assert torch.equal(a["keys"], b["keys"]) and a["losses"] == b["losses"]
    assert torch.equal(a["predictions"], b["predictions"])
    assert (a["alpha"], a["beta"], a["val_accuracy"]) == (b["alpha"], b["beta"], b["val_accuracy"])
    assert len(a["losses"]) == 6 and all(np.isfinite(a["losses"]))

    cache_keys, _ = tip.cache_model(d["views"], d["y"], N_CLASSES)
    assert not torch.allclose(a["keys"], cache_keys, atol=1e-4)
    c = tip.run_tip_adapter_f(*args, epochs=6, seed=1, **kw)
    assert not torch.equal(a["keys"], c["keys"])  # the seed drives the shuffling

    zero = tip.run_tip_adapter_f(*args, epochs=0, **kw)
    plain = tip.run_tip_adapter(*args, search_step=(40, 10))
    assert torch.equal(zero["keys"], cache_keys) and zero["losses"] == []
    assert torch.equal(zero["predictions"], plain["predictions"])
    assert (zero["alpha"], zero["beta"], zero["val_accuracy"]) == (plain["alpha"], plain["beta"], plain["val_accuracy"])


def test_lpclip_refits_the_grid_peak_at_the_second_step_as_the_docstring_says():
    """Issue 29: the docstring said the grid's peak is never refitted; lpclip's second step fits
    10 ** log10(peak) as one end of its range (the same C up to rounding), and so does search_c."""
    import math

    import numpy as np

    from coop.methods import linear_probe

    doc = linear_probe.__doc__
    assert "never refitted" not in doc and "The grid's peak is refitted" in doc
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    y = np.arange(40) % 4
    x[:, :4] += 2.0 * np.eye(4)[y]
    vx = rng.normal(size=(20, 6))
    vy = np.arange(20) % 4
    vx[:, :4] += 2.0 * np.eye(4)[vy]
    found = linear_probe.search_c(x, y, vx, vy, num_step=2)
    grid = [c for c, _ in found["searched"][:7]]
    peak = grid[int(np.argmax([a for _, a in found["searched"][:7]]))]
    second_step = [c for c, _ in found["searched"][9:11]]
    assert any(math.isclose(c, peak, rel_tol=1e-12) for c in second_step), (peak, second_step)
