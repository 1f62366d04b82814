"""--precision fp32|amp|fp16, as CoOp offers it (issue 11).

Bounds tested (random weights, so they speak of arithmetic, not accuracy): image and text features
under amp (bfloat16 autocast on this CPU) or fp16 (CLIP's own convert_weights) have cosine >= 0.998
with fp32, and logits differ by at most 2% of logit_scale.exp() (the largest possible |logit|).
fp16 on a CPU is refused by every script with one line; the library still computes it, which is
how these tests reach it without a GPU.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from coop.model.clip_loader import random_clip
from coop.runs.experiment import TrainSet
from coop.model.precision import apply_to_model, autocast, check_precision, cpu_supports_bf16
from coop.model.prompt_learner import CoOp
from coop.methods.train import fit
from coop.methods.train_config import TrainConfig
from conftest import load_script

NAMES = ["ant", "car_side", "yin_yang", "dalmatian", "water_lilly", "x"]
COS, LOGIT_FRACTION = 0.998, 0.02  # random:tiny on noise; random:RN50 gives >= 0.99995
needs_bf16 = pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bfloat16")


def _cpu_half_works() -> bool:
    try:
        torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3).half(), torch.ones(1, 1, 1, 1).half())
        torch.ones(2, 2).half() @ torch.ones(2, 2).half()
        return True
    except RuntimeError:  # torch < 2.1 has no half-precision CPU kernels
        return False


needs_cpu_half = pytest.mark.skipif(not _cpu_half_works(), reason="this torch has no fp16 CPU kernels")


def _outputs(model, precision):
    R = model.visual.input_resolution
    x = torch.randn(6, 3, R, R, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    coop = CoOp(model, NAMES)
    with torch.no_grad(), autocast(precision, "cpu"):
        img = model.encode_image(x).float()
        text = coop.text_features().float()
        logits = coop(img).float()
    return img, text, logits, coop


@pytest.mark.parametrize("precision", [pytest.param("amp", marks=needs_bf16), pytest.param("fp16", marks=needs_cpu_half)])
def test_features_and_logits_are_close_to_fp32(precision):
    ref = _outputs(random_clip("tiny"), "fp32")
    model = random_clip("tiny")
    apply_to_model(model, precision)
    got = _outputs(model, precision)
    assert got[3].ctx.dtype == (torch.float16 if precision == "fp16" else torch.float32)  # CoOp: ctx in CLIP's dtype
    assert F.cosine_similarity(got[0], ref[0]).min() >= COS
    assert F.cosine_similarity(got[1], ref[1]).min() >= COS
    assert (got[2] - ref[2]).abs().max() <= LOGIT_FRACTION * model.logit_scale.exp().item()
    if precision == "fp16":
        assert model.visual.conv1.weight.dtype == torch.float16 and model.ln_final.weight.dtype == torch.float32


@pytest.mark.parametrize("precision,block_mod", [pytest.param("amp", None, marks=needs_bf16),
                                                pytest.param("fp16", None, marks=needs_cpu_half),
                                                pytest.param("amp", "lora", marks=needs_bf16),
                                                pytest.param("fp16", "adapter", marks=needs_cpu_half)])
def test_training_runs_and_learns_in_each_precision(precision, block_mod):
    model = apply_to_model(random_clip("tiny"), precision)
    torch.manual_seed(0)
    coop = CoOp(model, NAMES, block_mod=block_mod)
    feats = torch.randn(2, 12, model.text_projection.shape[1])
    train = TrainSet(feats, torch.arange(12) % len(NAMES), [0, 1, 0])
    ctx0 = coop.ctx.detach().clone()
    cfg = TrainConfig(shots=2, epochs=3, batch_size=4, lr=0.01, precision=precision, block_mod=block_mod)
    history = fit(coop, train, cfg, progress=False)
    assert all(torch.isfinite(torch.tensor(history["loss"]))) and not torch.equal(coop.ctx.detach(), ctx0)


def test_fp16_on_a_cpu_is_one_clear_error(synthetic_root, synthetic_split, tmp_path, capsys):
    from coop.utils.errors import UserError

    with pytest.raises(UserError, match="CUDA"):
        check_precision("fp16", "cpu")
    common = ["--model", "random:tiny", "--data-root", str(synthetic_root), "--split-file", synthetic_split.path,
              "--device", "cpu", "--results", str(tmp_path), "--precision", "fp16"]
    assert load_script("train_coop").main(common + ["--shots", "1"]) == 2
    assert load_script("zeroshot").main(common) == 2
    err = capsys.readouterr().err
    assert err.count("error: --precision fp16") == 2 and "Traceback" not in err
    assert not any(tmp_path.rglob("*.json"))
