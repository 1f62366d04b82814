"""CLIP-Adapter, TaskRes, ZS-LP and CLAP (issue 39) against their official code.

The reference below is TRANSCRIBED from the official repositories (tests may hold such a transcription;
``coop/`` may not), trimmed to the branches these methods use (prints, CUDA moves, checkpoints and
logging dropped), otherwise as written:

* jusiro/CLAP @ dbdf4095b3d824546474c725539b9f4efff3ca0e, ``trainers/adapters.py``:
  ``AdapterMethod`` (``__init__``, ``init_TR``, ``init_clipA``, ``zero_shot_constraint``,
  ``init_lagrangian_multipliers``, ``outer_step``, ``forward``), ``CustomCLIP.forward_features``,
  ``forward_lp``, ``forward_task_residual``, ``forward_clipadapter``, ``TrainerXCostume.run_epoch``,
  ``ADAPTER.forward_backward`` (fp32 branch) and ``ADAPTER.train`` (the non-grid loop);
  ``configs/trainers/SGD_lr1e-1_B256_ep300.yaml``.
* KaiyangZhou/Dassl.pytorch @ c61a1b570ac6333bd50fb5ae06aea59002fb20bb: ``dassl/optim/optimizer.py``
  (``build_optimizer``, "sgd"), ``dassl/optim/lr_scheduler.py`` (``build_lr_scheduler`` "cosine",
  ``_BaseWarmupScheduler``, ``ConstantWarmupScheduler``; ``verbose`` dropped: this torch's
  ``LRScheduler`` no longer takes it), ``dassl/config/defaults.py`` (OPTIM defaults),
  ``dassl/data/data_manager.py`` (``drop_last`` of the train loader).
* gaopengcuhk/CLIP-Adapter @ 08d07f8b2ecafc6f1479fe636b26d464d7a5574e, ``clip_adapter.py``:
  ``Adapter``, ``CustomCLIP.forward``.

One shared departure is built into the reference: each epoch's shuffle draws ``torch.randperm`` from a
seeded generator instead of ``np.random.rand(n).argsort()``, so both sides see the same batch order.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

from coop.methods import adapter_recipe as recipe
from coop.methods import clap, clip_adapter, taskres

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These are tiny problems: intra-op threads only add OpenMP hand-offs (seconds on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------
# Transcribed reference: Dassl.pytorch (optimizer, scheduler, defaults)
# ---------------------------------------------------------------------------------------------------
DASSL_OPTIM_DEFAULTS = dict(NAME="adam", LR=0.0003, WEIGHT_DECAY=5e-4, MOMENTUM=0.9, SGD_DAMPNING=0,
                            SGD_NESTEROV=False, LR_SCHEDULER="single_step", MAX_EPOCH=10, WARMUP_EPOCH=-1,
                            WARMUP_TYPE="linear", WARMUP_CONS_LR=1e-5, WARMUP_MIN_LR=1e-5, WARMUP_RECOUNT=True)
# configs/trainers/SGD_lr1e-1_B256_ep300.yaml (OPTIM, DATALOADER.TRAIN_X.BATCH_SIZE)
CLAP_CONFIG = dict(NAME="sgd", LR=0.1, MAX_EPOCH=300, LR_SCHEDULER="cosine", WARMUP_EPOCH=1,
                   WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5, WEIGHT_DECAY=0.0)
CLAP_BATCH_SIZE = 256


def optim_cfg(**over):
    return SimpleNamespace(**{**DASSL_OPTIM_DEFAULTS, **CLAP_CONFIG, **over})


def dassl_build_optimizer(model, optim_cfg):
    param_groups = model.parameters() if isinstance(model, nn.Module) else model
    assert optim_cfg.NAME == "sgd"
    return torch.optim.SGD(param_groups, lr=optim_cfg.LR, momentum=optim_cfg.MOMENTUM,
                           weight_decay=optim_cfg.WEIGHT_DECAY, dampening=optim_cfg.SGD_DAMPNING,
                           nesterov=optim_cfg.SGD_NESTEROV)


class _BaseWarmupScheduler(torch.optim.lr_scheduler._LRScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        raise NotImplementedError

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]


def dassl_build_lr_scheduler(optimizer, optim_cfg):
    assert optim_cfg.LR_SCHEDULER == "cosine"
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(optim_cfg.MAX_EPOCH))
    if optim_cfg.WARMUP_EPOCH > 0:
        if not optim_cfg.WARMUP_RECOUNT:
            scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
        assert optim_cfg.WARMUP_TYPE == "constant"
        scheduler = ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
    return scheduler


def dassl_num_batches(n_images, batch_size):
    """len(train_loader_x): build_data_loader's drop_last=is_train and len(data_source) >= batch_size."""
    return len(torch.utils.data.DataLoader(range(n_images), batch_size=batch_size,
                                           drop_last=n_images >= batch_size))


# ---------------------------------------------------------------------------------------------------
# Transcribed reference: jusiro/CLAP trainers/adapters.py
# ---------------------------------------------------------------------------------------------------
class AdapterMethod(nn.Module):
    def __init__(self, cfg, logit_scale, base_text_features, clip_dtype=torch.float16):
        super().__init__()
        self.device = clip_dtype  # clip_model.dtype: fp16 under the default TRAINER.ADAPTER.PREC
        self.logit_scale = logit_scale
        self.initialization = cfg.INIT
        self.apply_constraint = cfg.CONSTRAINT
        self.distance = "l2"
        self.register_buffer("base_text_features", base_text_features)
        self.alpha_constraint = torch.zeros((base_text_features.shape[0])).to(self.device)
        self.base_text_features = base_text_features
        if "ZS" in self.initialization:
            self.prototypes = nn.Parameter(base_text_features.clone())
        elif "TR" in self.initialization:
            self.init_TR(alpha=0.5)
        elif "ClipA" in self.initialization:
            self.init_clipA()
        else:
            assert False

    def init_TR(self, alpha=0.5):
        self.alpha = alpha
        self.grid_search_param = {"lr": [1e-1, 1e-2, 1e-3], "alpha": list(np.arange(0.2, 1.2, 0.2))}
        self.prototypes = nn.Parameter(torch.zeros_like(self.base_text_features.clone()))

    def init_clipA(self, ratio=0.2):
        self.grid_search_param = {"lr": [1e-1, 1e-2, 1e-3], "ratio": list(np.arange(0.2, 1, 0.2))}
        self.ratio = ratio
        self.prototypes = nn.Parameter(self.base_text_features.clone())
        self.prototypes.requires_grad = False
        self.mlp = nn.Sequential(
            nn.Linear(self.base_text_features.shape[-1], self.base_text_features.shape[-1] // 4, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(self.base_text_features.shape[-1] // 4, self.base_text_features.shape[-1], bias=False),
            nn.ReLU(inplace=True)
        ).to(self.device)

    def zero_shot_constraint(self):
        if "l2" in self.apply_constraint:
            disimilitude = (self.prototypes - self.base_text_features.clone()).pow(2).sum(-1)
        elif "cosine" in self.apply_constraint:
            disimilitude = (1 - torch.nn.functional.cosine_similarity(self.prototypes, self.base_text_features.clone()))
        else:
            assert False
        return torch.mean(self.alpha_constraint * disimilitude)

    def init_lagrangian_multipliers(self, labels_ds, logits_ds):
        if "balanced" in self.apply_constraint:
            performance = torch.ones(logits_ds.shape[-1]).to(torch.float)
        else:
            with torch.no_grad():
                labels_one_hot = torch.nn.functional.one_hot(labels_ds).cpu()
                performance = torch.diag(torch.softmax(logits_ds, -1).t() @ labels_one_hot.to(torch.float32)) / \
                    labels_one_hot.sum(0)
                if "corrected" in self.apply_constraint:
                    performance *= (logits_ds.shape[-1] / torch.sum(performance).item())
                if "constant" in self.apply_constraint:
                    performance = torch.ones(logits_ds.shape[-1]).to(torch.float) * torch.mean(performance).item()
        self.alpha_constraint = torch.clone(performance).to(self.device)
        self.penalty_parameter = torch.zeros_like(self.alpha_constraint).to(self.device)

    def outer_step(self):
        def phr(h, lambd, rho):
            x = lambd + rho * h
            y_sup = 1 / (2 * rho) * (x ** 2 - lambd ** 2)
            y_inf = - 1 / (2 * rho) * (lambd ** 2)
            grad_y_sup = x
            grad_y_inf = torch.zeros_like(h)
            sup = x >= 0
            return (torch.where(sup, y_sup, y_inf), torch.where(sup, grad_y_sup, grad_y_inf))

        disimilitude = (self.prototypes - self.base_text_features.clone()).pow(2).sum(-1)
        phr_value, phr_grad = phr(disimilitude, self.alpha_constraint, self.penalty_parameter)
        self.alpha_constraint = phr_grad.detach().clone()
        self.penalty_parameter = disimilitude.detach().clone()

    def forward(self):
        return self.prototypes


def forward_features(adapter, features):  # CustomCLIP.forward_features (self.adapter -> adapter)
    if "TR" in adapter.initialization:
        return forward_task_residual(adapter, features)
    elif "ClipA" in adapter.initialization:
        return forward_clipadapter(adapter, features)
    return forward_lp(adapter, features)


def forward_lp(adapter, features):
    prototypes = adapter()
    image_features_norm = features / features.norm(dim=-1, keepdim=True)
    prototypes_norm = prototypes / prototypes.norm(dim=-1, keepdim=True)
    logit_scale = adapter.logit_scale.exp()
    return image_features_norm @ prototypes_norm.t() * logit_scale


def forward_task_residual(adapter, features):
    prototypes = adapter()
    prototypes = adapter.base_text_features + adapter.alpha * prototypes
    image_features_norm = features / features.norm(dim=-1, keepdim=True)
    prototypes_norm = prototypes / prototypes.norm(dim=-1, keepdim=True)
    logit_scale = adapter.logit_scale.exp()
    return image_features_norm @ prototypes_norm.t() * logit_scale


def forward_clipadapter(adapter, features):
    prototypes = adapter()
    x = adapter.mlp(features)
    features = adapter.ratio * x + (1 - adapter.ratio) * features
    image_features_norm = features / features.norm(dim=-1, keepdim=True)
    prototypes_norm = prototypes / prototypes.norm(dim=-1, keepdim=True)
    logit_scale = adapter.logit_scale.exp()
    return image_features_norm @ prototypes_norm.t() * logit_scale


def official_train(adapter, features_train, labels_train, n_images, optim, batch_size, generator):
    """ADAPTER.train (non-grid) + run_epoch + forward_backward (fp32) on the pooled features."""
    adapter.float()  # self.model = self.model.float()
    if adapter.apply_constraint != "none":
        adapter.device = torch.device("cpu")  # ADAPTER.train: self.model.adapter.device = self.device
        with torch.no_grad():
            logits_zs = forward_features(adapter, features_train)  # extract_features(partition="train")
        adapter.init_lagrangian_multipliers(labels_train, logits_zs)
    optimizer = dassl_build_optimizer(adapter, optim)
    sched = dassl_build_lr_scheduler(optimizer, optim)
    num_batches = dassl_num_batches(n_images, batch_size)
    epoch_losses = []
    for epoch in range(optim.MAX_EPOCH):
        features, labels = features_train.clone(), labels_train.clone()
        idx = torch.randperm(features.shape[0], generator=generator)  # shared departure (np.random in the source)
        features, labels = features[idx, :], labels[idx]
        losses = []
        for batch_idx in range(num_batches):
            batch_init, batch_end = batch_idx * batch_size, (batch_idx + 1) * batch_size
            output = forward_features(adapter, features[batch_init:batch_end])
            loss_ce = F.cross_entropy(output, labels[batch_init:batch_end])
            if adapter.apply_constraint != "none":
                loss = loss_ce + adapter.zero_shot_constraint()
            else:
                loss = loss_ce
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if (batch_idx + 1) == num_batches:
                sched.step()
        if "adaptative" in adapter.apply_constraint:
            adapter.outer_step()
        epoch_losses.append(sum(losses) / len(losses))
    return epoch_losses


def official_clip_adapter_forward(adapter_fc, image_features, text_features, logit_scale, ratio=0.2):
    """gaopengcuhk/CLIP-Adapter clip_adapter.py CustomCLIP.forward after the encoders."""
    x = adapter_fc(image_features)
    image_features = ratio * x + (1 - ratio) * image_features
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    return logit_scale.exp() * image_features @ text_features.t()


# ---------------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------------
C, D = 5, 32
LOG_SCALE = math.log(100.0)


def logit_scale_param():
    return nn.Parameter(torch.tensor(LOG_SCALE), requires_grad=False)


SCALE = float(torch.tensor(LOG_SCALE).exp())


def rand(seed, *shape, shift=0.5):
    return shift + torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def problem(n_per_class=2, views=3, seed=0):
    y = torch.arange(C).repeat(n_per_class)
    v = rand(seed, views, len(y), D)
    text = 3.0 * rand(seed + 1, C, D)  # raw (unnormalised) text features, as adapters.py has them
    return v, y, text


def cfg(init, constraint="none"):
    return SimpleNamespace(INIT=init, CONSTRAINT=constraint)


# ---------------------------------------------------------------------------------------------------
# Constants and recipe
# ---------------------------------------------------------------------------------------------------
def test_official_constants():
    o = optim_cfg()
    assert (recipe.LR, recipe.EPOCHS, recipe.BATCH_SIZE) == (o.LR, o.MAX_EPOCH, CLAP_BATCH_SIZE)
    assert (recipe.MOMENTUM, recipe.WEIGHT_DECAY, recipe.DAMPENING, recipe.NESTEROV) == (
        o.MOMENTUM, o.WEIGHT_DECAY, o.SGD_DAMPNING, o.SGD_NESTEROV)
    assert (recipe.WARMUP_EPOCHS, recipe.WARMUP_LR) == (o.WARMUP_EPOCH, o.WARMUP_CONS_LR) and recipe.N_VIEWS == 20
    tr = AdapterMethod(cfg("TR"), logit_scale_param(), rand(0, C, D))
    ca = AdapterMethod(cfg("ClipA"), logit_scale_param(), rand(0, C, D))
    assert taskres.ALPHA == tr.alpha == 0.5 and clip_adapter.RATIO == ca.ratio == 0.2
    assert {k: list(v) for k, v in taskres.GRID.items()} == tr.grid_search_param
    assert {k: list(v) for k, v in clip_adapter.GRID.items()} == ca.grid_search_param
    assert ca.mlp[0].weight.shape == (D // clip_adapter.REDUCTION, D)
    assert clap.CONSTRAINT == "l2" and clap.ADAPTIVE is False  # experiment_CLAP.txt: "ZS l2"


@pytest.mark.parametrize("grid", [taskres.GRID, clip_adapter.GRID])
def test_grid_order_is_sklearns(grid):
    from sklearn.model_selection import ParameterGrid

    assert recipe.param_grid(grid) == [{k: float(v) for k, v in p.items()} for p in ParameterGrid(dict(grid))]


@pytest.mark.parametrize("n", [1, 100, 255, 256, 257, 400, 1600])
def test_batches_per_epoch_is_dassls_loader_length(n):
    assert recipe.batches_per_epoch(n, 256) == dassl_num_batches(n, 256)


@pytest.mark.filterwarnings("ignore:Detected call of")  # schedulers stepped without optimizer steps
def test_schedule_is_dassls_constant_warmup_then_cosine():
    for epochs in (300, 5):
        ours_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        ref_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        ours = recipe.WarmupCosine(ours_opt, epochs)
        ref = dassl_build_lr_scheduler(ref_opt, optim_cfg(MAX_EPOCH=epochs))
        got, want = [], []
        for _ in range(epochs):
            got.append(ours_opt.param_groups[0]["lr"])
            want.append(ref_opt.param_groups[0]["lr"])
            ours.step()
            ref.step()
        assert got == want
    assert got[0] == 1e-5 and got[1] == 0.1 and got[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 3 / 5)) / 2)


# ---------------------------------------------------------------------------------------------------
# Forwards
# ---------------------------------------------------------------------------------------------------
def test_clip_adapter_logits_equal_both_official_forwards():
    f, text = rand(10, 7, D), rand(11, C, D)
    ref = AdapterMethod(cfg("ClipA"), logit_scale_param(), text).float()
    with torch.no_grad():
        ref.mlp[0].weight.copy_(rand(12, D // 4, D) * 0.3)
        ref.mlp[2].weight.copy_(rand(13, D, D // 4) * 0.3)
    for ratio in (0.2, 0.6000000000000001):
        ref.ratio = ratio
        got = clip_adapter.clip_adapter_logits(f, ref.mlp[0].weight, ref.mlp[2].weight, text, ratio, SCALE)
        torch.testing.assert_close(got, forward_clipadapter(ref, f), atol=1e-5, rtol=0)
        torch.testing.assert_close(got, official_clip_adapter_forward(ref.mlp, f, text, ref.logit_scale, ratio),
                                   atol=1e-5, rtol=0)


def test_clip_adapter_init_is_the_official_fp16_rounded_linear_init():
    torch.manual_seed(3)  # the source draws nn.Linear's init from the global generator
    ref = AdapterMethod(cfg("ClipA"), logit_scale_param(), rand(0, C, D)).float()
    w1, w2 = clip_adapter.init_adapter(D, recipe.seeded(3))
    assert torch.equal(w1, ref.mlp[0].weight) and torch.equal(w2, ref.mlp[2].weight)
    torch.manual_seed(3)
    plain = nn.Linear(D, D // 4, bias=False).weight
    assert torch.equal(clip_adapter.init_adapter(D, recipe.seeded(3), fp16_init=False)[0], plain)
    assert not torch.equal(plain, w1)  # the rounding is real


def test_taskres_logits_equal_official_forward():
    f, text = rand(20, 7, D), rand(21, C, D)
    ref = AdapterMethod(cfg("TR"), logit_scale_param(), text)
    with torch.no_grad():
        ref.prototypes.copy_(rand(22, C, D))
    for alpha in (0.5, 0.2, 1.0):
        ref.alpha = alpha
        got = taskres.taskres_logits(f, ref.prototypes, text, alpha, SCALE)
        torch.testing.assert_close(got, forward_task_residual(ref, f), atol=1e-5, rtol=0)


def test_lp_logits_equal_official_forward():
    f, text = rand(30, 7, D), rand(31, C, D)
    ref = AdapterMethod(cfg("ZS"), logit_scale_param(), text)
    torch.testing.assert_close(clap.lp_logits(f, text, SCALE), forward_lp(ref, f), atol=1e-5, rtol=0)
    with torch.no_grad():
        ref.prototypes.copy_(rand(32, C, D))
    torch.testing.assert_close(clap.lp_logits(f, ref.prototypes, SCALE), forward_lp(ref, f), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------
# CLAP: multipliers, constraint, outer step
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["l2", "balanced", "corrected", "constant"])
def test_initial_multipliers_equal_official(mode):
    y = torch.arange(C).repeat(4)
    logits = 20 * rand(40, len(y), C)
    ref = AdapterMethod(cfg("ZS", "l2" if mode == "l2" else f"l2_{mode}"), logit_scale_param(), rand(41, C, D))
    ref.device = torch.device("cpu")  # ADAPTER.train sets the trainer's device before this call
    ref.init_lagrangian_multipliers(y, logits)
    torch.testing.assert_close(clap.zero_shot_multipliers(logits, y, mode), ref.alpha_constraint.float(),
                               atol=1e-6, rtol=0)


def test_constraint_and_outer_step_equal_official():
    base = rand(50, C, D)
    ref = AdapterMethod(cfg("ZS", "l2adaptative"), logit_scale_param(), base, clip_dtype=torch.float32)
    with torch.no_grad():
        ref.prototypes.copy_(base + 0.3 * rand(51, C, D))
    lam = torch.tensor([0.5, -2.0, 0.0, 1.5, -0.1])  # negative ones reach the PHR's lower branch
    rho = torch.tensor([0.0, 0.1, 2.0, 0.0, 0.01])
    ref.alpha_constraint, ref.penalty_parameter = lam.clone(), rho.clone()
    torch.testing.assert_close(clap.constraint_penalty(ref.prototypes, base, lam), ref.zero_shot_constraint(),
                               atol=1e-6, rtol=1e-6)
    got_lam, got_rho = clap.outer_step(ref.prototypes, base, lam, rho)
    ref.outer_step()
    torch.testing.assert_close(got_lam, ref.alpha_constraint, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got_rho, ref.penalty_parameter, atol=1e-6, rtol=1e-6)
    assert got_lam[1] == 0 and got_lam[0] == 0.5  # rho 0: the multiplier stays


# ---------------------------------------------------------------------------------------------------
# Training: our recipe against the official loop on the same features, weights and batch order
# ---------------------------------------------------------------------------------------------------
EPOCHS = 4


@pytest.mark.parametrize("n_per_class,batch_size", [(2, 8), (4, 8), (1, 256)])  # 1 batch (drop_last), 2, 1 (N < batch)
def test_zs_lp_and_clap_training_equal_official(n_per_class, batch_size):
    views, y, text = problem(n_per_class)
    pool_x, pool_y = recipe.feature_pool(views, y)
    n = len(y)
    for constraint in ("none", "l2", "l2adaptative"):
        ref = AdapterMethod(cfg("ZS", constraint), logit_scale_param(), text.clone(), clip_dtype=torch.float32)
        ref_losses = official_train(ref, pool_x, pool_y, n, optim_cfg(MAX_EPOCH=EPOCHS), batch_size, recipe.seeded(7))
        mult = None
        if constraint != "none":
            mult = clap.zero_shot_multipliers(clap.lp_logits(pool_x, text, SCALE), pool_y)
        w, losses, final = clap.train_lp(pool_x, pool_y, text, n_images=n, epochs=EPOCHS, generator=recipe.seeded(7),
                                         batch_size=batch_size, logit_scale=SCALE, multipliers=mult,
                                         adaptive="adaptative" in constraint)
        torch.testing.assert_close(w, ref.prototypes.detach(), atol=1e-5, rtol=1e-5)
        assert losses == pytest.approx(ref_losses, abs=1e-5)
        if constraint != "none":
            torch.testing.assert_close(final, ref.alpha_constraint, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(w, text, atol=1e-3)  # it trained


@pytest.mark.parametrize("n_per_class,batch_size", [(2, 8), (4, 8)])
def test_taskres_training_equals_official(n_per_class, batch_size):
    views, y, text = problem(n_per_class, seed=3)
    pool_x, pool_y = recipe.feature_pool(views, y)
    ref = AdapterMethod(cfg("TR"), logit_scale_param(), text.clone())
    ref.alpha = 0.4
    ref_losses = official_train(ref, pool_x, pool_y, len(y), optim_cfg(MAX_EPOCH=EPOCHS, LR=0.01), batch_size,
                                recipe.seeded(8))
    res, losses = taskres.train_taskres(pool_x, pool_y, text, n_images=len(y), alpha=0.4, lr=0.01, epochs=EPOCHS,
                                        generator=recipe.seeded(8), batch_size=batch_size, logit_scale=SCALE)
    torch.testing.assert_close(res, ref.prototypes.detach(), atol=1e-6, rtol=1e-5)
    assert losses == pytest.approx(ref_losses, abs=1e-5) and res.abs().max() > 0


@pytest.mark.parametrize("n_per_class,batch_size", [(2, 8), (4, 8)])
def test_clip_adapter_training_equals_official(n_per_class, batch_size):
    views, y, text = problem(n_per_class, seed=5)
    pool_x, pool_y = recipe.feature_pool(views, y)
    torch.manual_seed(9)
    ref = AdapterMethod(cfg("ClipA"), logit_scale_param(), text.clone())
    ref.ratio = 0.6000000000000001
    w1, w2 = ref.mlp[0].weight.detach().float().clone(), ref.mlp[2].weight.detach().float().clone()
    ref_losses = official_train(ref, pool_x, pool_y, len(y), optim_cfg(MAX_EPOCH=EPOCHS), batch_size,
                                recipe.seeded(4))
    t1, t2, losses = clip_adapter.train_clip_adapter(pool_x, pool_y, text, w1, w2, n_images=len(y),
                                                     ratio=ref.ratio, lr=0.1, epochs=EPOCHS,
                                                     generator=recipe.seeded(4), batch_size=batch_size,
                                                     logit_scale=SCALE)
    torch.testing.assert_close(t1, ref.mlp[0].weight.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(t2, ref.mlp[2].weight.detach(), atol=1e-6, rtol=1e-5)
    assert losses == pytest.approx(ref_losses, abs=1e-5) and not torch.equal(t1, w1)
    assert torch.equal(ref.prototypes, text)  # the text side is frozen in the source


# ---------------------------------------------------------------------------------------------------
# run_<method>: the whole run against the reference, the protocols, the result's shape
# ---------------------------------------------------------------------------------------------------
def split(seed=0):
    views, y, text = problem(3, views=2, seed=seed)
    val_x, val_y = rand(seed + 60, 10, D), torch.arange(10) % C
    test_x = rand(seed + 61, 12, D)
    return views, y, val_x, val_y, test_x, text


def test_run_clap_equals_the_official_run():
    views, y, val_x, val_y, test_x, text = split()
    out = clap.run_clap(views, y, val_x, val_y, test_x, text, seed=11, epochs=EPOCHS, batch_size=8, logit_scale=SCALE)
    pool_x, pool_y = views.reshape(-1, D), y.repeat(views.shape[0])
    ref = AdapterMethod(cfg("ZS", "l2"), logit_scale_param(), text.clone(), clip_dtype=torch.float32)
    ref_losses = official_train(ref, pool_x, pool_y, len(y), optim_cfg(MAX_EPOCH=EPOCHS), 8, recipe.seeded(11))
    with torch.no_grad():
        want = forward_features(ref, test_x).argmax(1)
        val = 100.0 * float((forward_features(ref, val_x).argmax(1) == val_y).sum()) / len(val_y)
    assert torch.equal(out["predictions"], want) and out["val_accuracy"] == val
    assert out["train_loss"] == pytest.approx(ref_losses, abs=1e-5)
    assert out["multipliers"] == pytest.approx(ref.alpha_constraint.tolist(), abs=1e-6)
    assert out["protocol"] == "validation-free" and out["constraint"] == "l2" and out["adaptive"] is False


def test_run_clip_adapter_fixed_equals_the_official_run():
    views, y, val_x, val_y, test_x, text = split(2)
    out = clip_adapter.run_clip_adapter(views, y, val_x, val_y, test_x, text, seed=5, epochs=EPOCHS, grid=None,
                                        batch_size=8, logit_scale=SCALE)
    g = recipe.seeded(5)  # the run draws the MLP's init, then the batch order, from one seeded generator
    w = [torch.empty(D // 4, D), torch.empty(D, D // 4)]
    for t in w:
        nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)  # nn.Linear.reset_parameters
    ref = AdapterMethod(cfg("ClipA"), logit_scale_param(), text.clone())
    with torch.no_grad():
        ref.mlp[0].weight.copy_(w[0].half())
        ref.mlp[2].weight.copy_(w[1].half())
    ref_losses = official_train(ref, views.reshape(-1, D), y.repeat(2), len(y), optim_cfg(MAX_EPOCH=EPOCHS), 8, g)
    with torch.no_grad():
        assert torch.equal(out["predictions"], forward_features(ref, test_x).argmax(1))
    assert out["train_loss"] == pytest.approx(ref_losses, abs=1e-5)
    assert (out["ratio"], out["lr"], out["protocol"], out["searched"]) == (0.2, 0.1, "fixed", [])


@pytest.mark.parametrize("module,run,key", [(taskres, taskres.run_taskres, "alpha"),
                                            (clip_adapter, clip_adapter.run_clip_adapter, "ratio")])
def test_grid_search_picks_the_first_best_on_validation(module, run, key):
    views, y, val_x, val_y, test_x, text = split(4)
    grid = {"lr": (0.1, 0.001), key: module.GRID[key][:2]}
    out = run(views, y, val_x, val_y, test_x, text, seed=3, epochs=3, grid=grid, batch_size=8)
    assert [{k: p[k] for k in ("lr", key)} for p in out["searched"]] == recipe.param_grid(grid)
    accs = [p["val_accuracy"] for p in out["searched"]]
    best = out["searched"][accs.index(max(accs))]
    assert (out[key], out["lr"], out["val_accuracy"]) == (best[key], best["lr"], best["val_accuracy"])
    fixed = run(views, y, val_x, val_y, test_x, text, seed=3, epochs=3, grid=None, batch_size=8,
                **{key: best[key], "lr": best["lr"]})
    assert torch.equal(out["predictions"], fixed["predictions"]) and out["train_loss"] == fixed["train_loss"]
    assert out["protocol"] == "fewshot-validation"
    with pytest.raises(ValueError, match="validation set"):
        run(views, y, None, None, test_x, text, seed=3, epochs=1, grid=grid)


def test_zs_lp_result_and_zero_shot_start():
    views, y, val_x, val_y, test_x, text = split(6)
    out = clap.run_zs_lp(views, y, val_x, val_y, test_x, text, seed=1, epochs=2, batch_size=8)
    assert set(out) == {"predictions", "val_accuracy", "lr", "epochs", "protocol", "train_loss"}
    assert out["predictions"].dtype == torch.long and out["predictions"].shape == (12,) and len(out["train_loss"]) == 2
    # epoch 0 runs at the warm-up lr 1e-5: one epoch barely moves the zero-shot prototypes
    one = clap.run_zs_lp(views, y, None, None, test_x, text, seed=1, epochs=1, batch_size=8)
    assert one["val_accuracy"] is None
    assert torch.equal(one["predictions"], clap.lp_logits(test_x, text).argmax(1))
    again = clap.run_zs_lp(views, y, val_x, val_y, test_x, text, seed=1, epochs=2, batch_size=8)
    assert torch.equal(again["predictions"], out["predictions"]) and again["train_loss"] == out["train_loss"]
