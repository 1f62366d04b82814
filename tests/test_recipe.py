"""CoOp's training recipe: each value, and the granularity it is applied at.

The expectations are CoOp's own, as read in its sources (not numbers taken from a run):

* github:KaiyangZhou/CoOp ``configs/trainers/CoOp/rn50_ep50.yaml``, ``rn50_ep100.yaml`` and
  ``rn50.yaml`` (the 200-epoch config; CoOp has no ``rn50_ep200.yaml``): OPTIM NAME "sgd", LR 0.002,
  MAX_EPOCH 50 / 100 / 200, LR_SCHEDULER "cosine", WARMUP_EPOCH 1, WARMUP_TYPE "constant",
  WARMUP_CONS_LR 1e-5; DATALOADER.TRAIN_X.BATCH_SIZE 32.
* CoOp ``COOP.md`` (Caltech101 commands): rn50_ep50 at 1 shot, rn50_ep100 at 2 and 4 shots, rn50
  (200 epochs) at 8 and 16 shots; ``scripts/coop/main.sh`` and ``train.py``: N_CTX 16, CSC False,
  CTX_INIT "", CLASS_TOKEN_POSITION "end".
* CoOp ``trainers/coop.py``: ``ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=dtype)``,
  ``nn.init.normal_(ctx_vectors, std=0.02)``, prompt ``[SOS] X*n_ctx name. [EOT]``; the scheduler is
  stepped by ``update_lr()`` only when ``(self.batch_idx + 1) == self.num_batches`` (once an epoch).
* github:KaiyangZhou/Dassl.pytorch ``dassl/optim/lr_scheduler.py`` (``ConstantWarmupScheduler`` around
  ``CosineAnnealingLR(optimizer, float(max_epoch))``), ``dassl/optim/optimizer.py`` (``torch.optim.SGD``
  with momentum, weight_decay, dampening, nesterov), ``dassl/config/defaults.py`` (MOMENTUM 0.9,
  WEIGHT_DECAY 5e-4, SGD_DAMPNING 0, SGD_NESTEROV False, WARMUP_RECOUNT True, TEST.FINAL_MODEL
  "last_step"), ``dassl/data/data_manager.py`` (``drop_last=is_train and len(data_source) >= batch_size``).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

import clip
from coop.methods import train as train_mod
from coop.methods.train import batches, fit, lr_at_epoch, run_coop
from coop.methods.train_config import TrainConfig, coop_epochs, crop_plan
from coop.model.clip_loader import RANDOM_ARCHS, random_clip
from coop.model.prompt_learner import CoOp
from coop.runs.experiment import Experiment, TrainSet
from coop.utils.seed import set_seed

# CoOp's values (sources in the module docstring).
COOP_LR = 0.002            # rn50*.yaml OPTIM.LR
COOP_WARMUP_EPOCH = 1      # rn50*.yaml OPTIM.WARMUP_EPOCH
COOP_WARMUP_LR = 1e-5      # rn50*.yaml OPTIM.WARMUP_CONS_LR
COOP_BATCH = 32            # rn50*.yaml DATALOADER.TRAIN_X.BATCH_SIZE
COOP_MOMENTUM = 0.9        # Dassl defaults.py OPTIM.MOMENTUM
COOP_WEIGHT_DECAY = 5e-4   # Dassl defaults.py OPTIM.WEIGHT_DECAY
COOP_N_CTX = 16            # CoOp train.py TRAINER.COOP.N_CTX, scripts/coop/main.sh NCTX=16
COOP_CTX_STD = 0.02        # CoOp trainers/coop.py nn.init.normal_(ctx_vectors, std=0.02)
COOP_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}  # COOP.md configs -> MAX_EPOCH
RN50_TEXT_WIDTH = 512      # CLIP RN50: transformer_width 512 = CoOp's ctx_dim (ln_final width)

NAMES = ["cat", "dog", "red car", "water lilly"]
_SGD = torch.optim.SGD  # the real class, for the reference computations while fit's is spied on


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is fastest, and much faster on a CPU shared with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- models

def _rn50_width_clip():
    """A CLIP with RN50's text width (512) but one text layer and a tiny ResNet: fast to build."""
    from clip.model import CLIP

    arch = dict(RANDOM_ARCHS["RN50"])
    assert arch["transformer_width"] == RN50_TEXT_WIDTH
    arch.update(image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=8, transformer_layers=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return CLIP(**arch).float().eval()


@pytest.fixture(scope="module")
def rn50_width():
    return _rn50_width_clip()


@pytest.fixture(scope="module")
def tiny_clip():
    """One tiny random CLIP for the module (CoOp freezes it; nothing here changes its weights)."""
    return random_clip("tiny")


# --------------------------------------------------------------------------- context init

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_context_init_is_normal_mean_0_std_002(rn50_width, seed):
    set_seed(seed)
    coop = CoOp(rn50_width, NAMES)
    ctx = coop.ctx.detach()
    assert ctx.shape == (COOP_N_CTX, RN50_TEXT_WIDTH)  # [16, 512]: M=16 shared (CSC False) vectors
    assert ctx.dtype == rn50_width.token_embedding.weight.dtype == torch.float32  # CLIP's dtype
    assert coop.ctx.requires_grad
    x = ctx.double().flatten()  # 8192 values: sd(std) ~ 1.6e-4, sd(mean) ~ 2.2e-4
    assert abs(x.mean().item()) < 0.001
    assert abs(x.std().item() - COOP_CTX_STD) < 0.001
    # normal, not merely the right moments (a uniform of std 0.02 has 57.7% within one std):
    within1 = (x.abs() < COOP_CTX_STD).double().mean().item()
    within2 = (x.abs() < 2 * COOP_CTX_STD).double().mean().item()
    assert abs(within1 - 0.6827) < 0.02 and abs(within2 - 0.9545) < 0.01
    set_seed(seed)
    assert torch.equal(CoOp(rn50_width, NAMES).ctx.detach(), ctx)  # the seed alone decides it
    set_seed(seed + 10)
    assert not torch.equal(CoOp(rn50_width, NAMES).ctx.detach(), ctx)


def test_context_init_shapes_for_the_tiny_model_and_class_specific(tiny_clip):
    width = tiny_clip.ln_final.weight.shape[0]
    set_seed(1)
    coop = CoOp(tiny_clip, NAMES)
    assert coop.ctx.shape == (COOP_N_CTX, width) and coop.ctx.dtype == torch.float32
    set_seed(1)
    csc = CoOp(tiny_clip, NAMES, csc=True)
    assert csc.ctx.shape == (len(NAMES), COOP_N_CTX, width)
    x = csc.ctx.detach().double().flatten()  # 4 x 16 x 128 = 8192 values, the same N(0, 0.02)
    assert abs(x.mean().item()) < 0.001 and abs(x.std().item() - COOP_CTX_STD) < 0.001
    assert [p is coop.ctx for p in coop.trainable_parameters()] == [True]


def test_defaults_are_m16_random_init_class_token_at_the_end(tiny_clip):
    cfg = TrainConfig()
    assert (cfg.n_ctx, cfg.class_token_position, cfg.ctx_init, cfg.csc) == (COOP_N_CTX, "end", None, False)
    set_seed(1)
    coop = CoOp(tiny_clip, NAMES)  # the class's own defaults
    assert (coop.n_ctx, coop.class_token_position, coop.csc) == (COOP_N_CTX, "end", False)
    # What the text encoder computes is CLIP's encoding of "[SOS] v1..v16 name . [EOT]": with the
    # context set to the embeddings of 16 words, it equals CLIP's encode_text of those words + name.
    words = " ".join(["a photo of a"] * 4)
    tokens = clip.tokenize([f"{words} {n}." for n in NAMES])
    assert len(clip.simple_tokenizer.SimpleTokenizer().encode(words)) == COOP_N_CTX
    with torch.no_grad():
        coop.ctx.copy_(tiny_clip.token_embedding(clip.tokenize(words))[0, 1: 1 + COOP_N_CTX])
        ours = coop.text_features()
        plain = coop.text_features(fast=False)
        ref = tiny_clip.encode_text(tokens)
        front = tiny_clip.encode_text(clip.tokenize([f"{n} {words}." for n in NAMES]))
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4)
    assert torch.allclose(plain, ref, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ours, front, atol=1e-2)  # the check can tell positions apart


# --------------------------------------------------------------------------- LR schedule

class _DasslConstantWarmupScheduler(LRScheduler):
    """Transcription of Dassl's ``_BaseWarmupScheduler`` + ``ConstantWarmupScheduler``
    (dassl/optim/lr_scheduler.py; ``verbose`` dropped: this torch's LRScheduler has none)."""

    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        self.cons_lr = cons_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)


def _dassl_epoch_lrs(max_epoch, lr=COOP_LR, warmup_epoch=COOP_WARMUP_EPOCH, cons_lr=COOP_WARMUP_LR):
    """The LR of every epoch as CoOp/Dassl produce it: build_lr_scheduler("cosine") with a constant
    warm-up (WARMUP_RECOUNT True: the cosine's last_epoch is left alone), stepped once after the
    last batch of each epoch (CoOp's forward_backward -> update_lr)."""
    param = nn.Parameter(torch.zeros(1))
    opt = _SGD([param], lr=lr, momentum=COOP_MOMENTUM, weight_decay=COOP_WEIGHT_DECAY)
    sched = _DasslConstantWarmupScheduler(opt, CosineAnnealingLR(opt, float(max_epoch)), warmup_epoch, cons_lr)
    out = []
    for _ in range(max_epoch):
        out.append(opt.param_groups[0]["lr"])  # every iteration of this epoch uses it
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("shots", [1, 2, 8])  # 50, 100 and 200 epochs
def test_lr_of_every_epoch_is_dassls(shots):
    cfg = TrainConfig(shots=shots)
    max_epoch = COOP_EPOCHS[shots]
    assert cfg.epochs == max_epoch
    dassl = _dassl_epoch_lrs(max_epoch)
    # the transcription itself, in closed form: warm-up epoch, then cosine from 0.002 with T_max = max_epoch
    closed = [COOP_WARMUP_LR] + [0.5 * COOP_LR * (1 + math.cos(math.pi * (e - 1) / max_epoch))
                                 for e in range(1, max_epoch)]
    assert dassl == pytest.approx(closed, rel=1e-9, abs=1e-15)
    ours = [lr_at_epoch(e, cfg) for e in range(cfg.epochs)]
    assert ours == pytest.approx(dassl, rel=1e-9, abs=1e-15)
    assert ours[0] == COOP_WARMUP_LR and ours[1] == COOP_LR and ours[-1] > 0


# --------------------------------------------------------------------------- fit, spied on

class _Spy:
    """Replaces torch.optim.SGD with a subclass that records every instance and every step's LRs."""

    def __init__(self, monkeypatch):
        self.optimizers, self.step_lrs = [], []
        spy = self

        class SpySGD(torch.optim.SGD):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                spy.optimizers.append(self)

            def step(self, *args, **kwargs):
                spy.step_lrs.append([g["lr"] for g in self.param_groups])
                return super().step(*args, **kwargs)

        monkeypatch.setattr(torch.optim, "SGD", SpySGD)
        self.cls = SpySGD


def _check_optimizer(spy, coop):
    assert len(spy.optimizers) == 1, "fit must build exactly one torch.optim.SGD"
    opt = spy.optimizers[0]
    assert type(opt) is spy.cls
    assert len(opt.param_groups) == 1 and [id(p) for p in opt.param_groups[0]["params"]] == [id(coop.ctx)]
    g = opt.param_groups[0]
    assert g["momentum"] == COOP_MOMENTUM and g["weight_decay"] == COOP_WEIGHT_DECAY
    assert g["dampening"] == 0 and g["nesterov"] is False


def test_fit_sgd_recipe_one_lr_per_epoch_batches_and_fresh_crops(tiny_clip, monkeypatch):
    spy = _Spy(monkeypatch)
    epochs, n = 6, 70  # 70 images: two full batches of 32 an epoch, the last 6 dropped (Dassl)
    cfg = TrainConfig(shots=16, seed=1, epochs=epochs)  # CoOp's defaults otherwise
    assert cfg.batch_size == COOP_BATCH
    _, plan = crop_plan(cfg)
    assert plan == list(range(epochs))  # fresh mode: crop e in epoch e
    dim = tiny_clip.text_projection.shape[1]
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(epochs, n, dim, generator=g)  # a distinct crop of each image per epoch
    train = TrainSet(feats, torch.arange(n) % len(NAMES), plan)
    set_seed(1)
    coop = CoOp(tiny_clip, NAMES)
    seen = []
    coop.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    history = fit(coop, train, cfg, progress=False)

    _check_optimizer(spy, coop)
    per_epoch = n // COOP_BATCH  # Dassl: drop_last since n >= batch size
    assert len(spy.step_lrs) == len(seen) == epochs * per_epoch
    dassl = _dassl_epoch_lrs(epochs)
    for i, lrs in enumerate(spy.step_lrs):
        e = i // per_epoch
        assert lrs == [lr_at_epoch(e, cfg)], f"step {i} (epoch {e}) ran at {lrs}"
        assert lrs[0] == pytest.approx(dassl[e], rel=1e-9)
    assert len(set(lr for (lr,) in spy.step_lrs)) == epochs  # the LR does change between epochs
    assert history["lr"] == [lr_at_epoch(e, cfg) for e in range(epochs)]
    assert history["epoch"] == list(range(1, epochs + 1))

    rows = {e: {tuple(r.tolist()): i for i, r in enumerate(feats[e])} for e in range(epochs)}
    for e in range(epochs):
        used = []
        for x in seen[e * per_epoch: (e + 1) * per_epoch]:
            assert x.shape == (COOP_BATCH, dim)
            for r in x:
                key = tuple(r.tolist())
                assert key in rows[e], f"epoch {e} saw a row that is not of crop {e}"
                used.append(rows[e][key])
        assert len(used) == len(set(used)) == per_epoch * COOP_BATCH  # no image twice in an epoch


@pytest.mark.parametrize("shots", sorted(COOP_EPOCHS))
def test_recipe_values_and_epochs_per_shot_count(shots):
    cfg = TrainConfig(shots=shots)
    assert coop_epochs(shots) == cfg.epochs == COOP_EPOCHS[shots]
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (COOP_LR, COOP_MOMENTUM, COOP_WEIGHT_DECAY, COOP_BATCH)
    assert (cfg.warmup_epochs, cfg.warmup_lr) == (COOP_WARMUP_EPOCH, COOP_WARMUP_LR)
    assert cfg.views is None and cfg.precision == "fp32"
    cfg.check()
    name, plan = crop_plan(cfg)
    assert plan == list(range(COOP_EPOCHS[shots]))  # one fresh crop per epoch, none repeated
    assert name == str(cfg.seed)


@pytest.mark.parametrize("batch_size", [COOP_BATCH, 8, 1])
def test_batches_are_dassls_train_loader(batch_size):
    """The batch sizes of torch's DataLoader(RandomSampler, drop_last=len >= batch_size)."""
    for n in range(1, 100):
        loader = torch.utils.data.DataLoader(range(n), batch_size=batch_size, shuffle=True,
                                             drop_last=n >= batch_size)
        expected = [len(b) for b in loader]
        out = batches(n, batch_size, torch.Generator().manual_seed(n))
        assert [len(b) for b in out] == expected, n
        flat = torch.cat(out).tolist()
        assert len(flat) == len(set(flat)) and set(flat) <= set(range(n))
    assert torch.cat(batches(96, COOP_BATCH, torch.Generator().manual_seed(0))).tolist() != list(range(96))  # shuffled


# --------------------------------------------------------------------------- run_coop

def test_run_coop_evaluates_the_last_epochs_model(synthetic_root, synthetic_split, tmp_path, monkeypatch):
    exp = Experiment("random:tiny", synthetic_root, synthetic_split.path, device="cpu", cache_dir=tmp_path / "cache")
    spy = _Spy(monkeypatch)
    built, calls, fitted = [], [], {}

    class RecordingCoOp(CoOp):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

        def forward(self, image_features):
            out = super().forward(image_features)
            calls.append((image_features.detach().clone(), self.ctx.detach().clone(), out.detach().clone()))
            return out

    real_fit = train_mod.fit

    def recording_fit(coop, train, cfg, progress=True):
        fitted["ctx0"] = coop.ctx.detach().clone()
        fitted["n_calls0"] = len(calls)
        history = real_fit(coop, train, cfg, progress)
        fitted.update(coop=coop, train=train, ctx=coop.ctx.detach().clone(), n_calls=len(calls))
        return history

    monkeypatch.setattr(train_mod, "CoOp", RecordingCoOp)
    monkeypatch.setattr(train_mod, "fit", recording_fit)
    epochs = 3
    cfg = TrainConfig(shots=2, seed=1, epochs=epochs, results=str(tmp_path / "results"))
    rec = run_coop(cfg, exp, progress=False)

    assert len(built) == 1 and fitted["coop"] is built[0]
    coop = built[0]
    assert coop.n_ctx == COOP_N_CTX and coop.class_token_position == "end"
    _check_optimizer(spy, coop)
    # 2 shots x 10 classes = 20 images < 32: Dassl keeps the one small batch, so one step an epoch
    assert fitted["n_calls"] - fitted["n_calls0"] == len(spy.step_lrs) == epochs
    assert [lrs[0] for lrs in spy.step_lrs] == [lr_at_epoch(e, cfg) for e in range(epochs)]
    train = fitted["train"]
    assert train.crop_of_epoch == list(range(epochs)) and train.features.shape[0] == epochs  # fresh crops
    for a in range(epochs):
        for b in range(a):
            assert not torch.equal(train.features[a], train.features[b])
    assert not torch.equal(fitted["ctx"], fitted["ctx0"])  # training moved the context

    test = exp.test_set()
    evals = calls[fitted["n_calls"]:]
    assert len(evals) == 3, "three evaluations after training: the few-shot validation set, the training images, the test set"
    assert len(evals[0][0]) == rec["validation"]["images"] and torch.equal(evals[0][1], fitted["ctx"])
    assert len(evals[1][0]) == rec["fit_view"]["images"] == len(rec["fewshot_train"]) and torch.equal(evals[1][1], fitted["ctx"])
    x, ctx, logits = evals[2]
    assert torch.equal(x, test.features)
    assert torch.equal(ctx, fitted["ctx"]), "the evaluated context is not the last epoch's"
    assert rec["test_predictions"]["pred"] == logits.argmax(-1).tolist()
    saved = torch.load(tmp_path / "results" / "coop" / rec["context_file"], weights_only=True)
    assert torch.equal(saved["state"]["ctx"], fitted["ctx"])
    assert rec["history"]["epoch"] == list(range(1, epochs + 1))
