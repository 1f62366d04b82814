"""Device and dtype hygiene, tested on a CPU as a GPU would test it.

On CUDA, a tensor our code creates without ``device=`` lands on the CPU while the model and data are
on the GPU, and the first operation that mixes them fails. Here the model and data are on the CPU,
and :class:`StrayTensorsToMeta` sends every tensor that *our* code (a frame under ``coop/``) creates
without an explicit device to the ``meta`` device instead: the same mistake then fails the same way,
on the CPU. Factory calls made inside torch, torchvision or clip are left alone.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from conftest import load_script

PACKAGE = str(Path(__file__).resolve().parents[1] / "coop") + "/"
FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.empty, torch.full, torch.arange,
             torch.rand, torch.randn, torch.randint, torch.randperm, torch.eye, torch.linspace}


class StrayTensorsToMeta(TorchFunctionMode):
    """Tensors created by ``coop/`` code without ``device=`` go to ``meta`` (and are recorded)."""

    def __init__(self):
        super().__init__()
        self.rerouted = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in FACTORIES and kwargs.get("device") is None:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                kwargs["device"] = "meta"
                self.rerouted.append(f"{caller.f_code.co_filename[len(PACKAGE):]}:{caller.f_lineno}")
        return func(*args, **kwargs)


def test_the_mode_catches_a_stray_tensor(tmp_path):
    """The check can fail: code under coop/ that omits device= gets a tensor that cannot meet the model's."""
    probe = Path(PACKAGE) / "_device_probe_test.py"
    probe.write_text("import torch\n\ndef stray(x):\n    return x + torch.ones(x.shape)\n\n"
                     "def careful(x):\n    return x + torch.ones(x.shape, device=x.device)\n")
    try:
        sys.path_importer_cache.clear()
        import importlib

        mod = importlib.import_module("coop._device_probe_test")
        x = torch.zeros(3)
        with StrayTensorsToMeta() as mode:
            assert torch.equal(mod.careful(x), torch.ones(3))
            with pytest.raises((RuntimeError, NotImplementedError)):
                mod.stray(x)
        assert mode.rerouted and mode.rerouted[0].startswith("_device_probe_test.py")
    finally:
        probe.unlink()
        sys.modules.pop("coop._device_probe_test", None)


def _train_set(n_cls: int, dim: int, epochs: int):
    from coop.runs.experiment import TrainSet

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 2 * n_cls, dim, generator=g)
    labels = torch.arange(n_cls).repeat(2)
    return TrainSet(feats, labels, [e % 2 for e in range(epochs)])


@pytest.mark.parametrize("position,csc,block_mod,fast", [
    ("end", False, None, True), ("end", False, None, False), ("middle", False, None, True),
    ("front", False, None, True), ("end", True, None, True), ("end", False, "adapter", True),
    ("end", False, "lora", True), ("middle", False, "lora", True)])
def test_coop_training_creates_every_tensor_on_the_models_device(tiny_clip, position, csc, block_mod, fast):
    """Construction, training steps, evaluation: every prompt position, csc, block mods, fast and plain."""
    from coop.methods.train import fit
    from coop.methods.train_config import TrainConfig
    from coop.model.prompt_learner import CoOp

    names = ["cat", "dog", "red car"]
    cfg = TrainConfig(shots=2, seed=1, epochs=2, warmup_epochs=1, batch_size=4)
    dim = tiny_clip.text_projection.shape[1]
    with StrayTensorsToMeta() as mode:
        coop = CoOp(tiny_clip, names, n_ctx=4, class_token_position=position, csc=csc, block_mod=block_mod, fast=fast)
        history = fit(coop, _train_set(len(names), dim, cfg.epochs), cfg, progress=False)
        with torch.no_grad():
            logits = coop(torch.randn(5, dim, device="cpu"))
    assert not mode.rerouted, mode.rerouted
    assert logits.device.type == "cpu" and len(history["loss"]) == 2
    assert {t.device.type for t in [*coop.parameters(), *coop.buffers()]} == {"cpu"}


def test_zeroshot_and_coop_runs_end_to_end(synthetic_root, synthetic_split, tmp_path):
    """Zero-shot and one CoOp run through the library, encoding included (DataLoader in-process)."""
    from coop.features.encoder import EncodeOptions
    from coop.methods.train import run_coop
    from coop.methods.train_config import TrainConfig
    from coop.methods.zeroshot import ZeroShotConfig, run_zeroshot
    from coop.runs.experiment import Experiment

    split_file = tmp_path / "split.json"
    split_file.write_text(Path(synthetic_split.path).read_text())
    exp = Experiment("random:tiny", synthetic_root.parent, split_file, "cpu", tmp_path / "cache",
                     encode=EncodeOptions(batch_size=8, workers=0))
    common = dict(model="random:tiny", data_root=str(synthetic_root.parent), split_file=str(split_file),
                  device="cpu", results=str(tmp_path / "results"), workers=0)
    with StrayTensorsToMeta() as mode:
        zs = run_zeroshot(ZeroShotConfig(**common), exp)
        rec = run_coop(TrainConfig(shots=1, seed=1, epochs=2, warmup_epochs=1, views=2, **common), exp, progress=False)
    assert not mode.rerouted, mode.rerouted
    assert 0 <= zs["accuracy"] <= 100 and 0 <= rec["accuracy"] <= 100


def test_the_benchmarks_measurements_use_the_models_device(tiny_clip):
    """bench.py's steps: inputs, the CoOp module, autocast and the timer follow the model's device."""
    from coop.measure import benchmark as B

    names = ["cat", "dog", "red car"]
    with StrayTensorsToMeta() as mode:
        for mod in (None, "adapter", "lora"):
            coop = B.build_coop(tiny_clip, names, block_mod=mod)
            for kind in ("ours", "truncated", "naive"):
                B.timeit(B.text_step(coop, kind), repeat=1, device="cpu")
        coop = B.build_coop(tiny_clip, names)
        for naive in (False, True):
            B.timeit(B.training_step(coop, tiny_clip, naive=naive, batch=4), repeat=1, device="cpu")
        assert B.image_throughput(tiny_clip, batch=2, repeat=1) > 0
    assert not mode.rerouted, mode.rerouted


@pytest.mark.skipif(not hasattr(torch, "float16"), reason="no half dtype")
def test_fp16_weights_keep_every_tensor_in_the_models_dtype(tiny_clip):
    """Under --precision fp16 CLIP's weights are half: the context and every block mod follow them."""
    from coop.model.precision import apply_to_model, model_dtype
    from coop.model.prompt_learner import CoOp

    apply_to_model(tiny_clip, "fp16")
    for mod in (None, "adapter", "lora"):
        coop = CoOp(tiny_clip, ["cat", "dog"], n_ctx=4, block_mod=mod)
        assert coop.ctx.dtype == model_dtype(tiny_clip) == torch.float16
        try:
            feats = coop.text_features(fast=True)
        except RuntimeError as e:  # torch builds without CPU half kernels (torch < 2.2)
            pytest.skip(f"no fp16 CPU kernels here: {e}")
        assert feats.dtype == torch.float16


def test_device_beyond_the_count_is_one_clear_line(capsys):
    zeroshot = load_script("zeroshot")
    for dev in ("cuda:7", "mps", "xpu:2"):
        assert zeroshot.main(["--model", "random:tiny", "--device", dev]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and dev in err[0], err


def test_a_device_index_past_the_count_is_refused(monkeypatch):
    """cuda:N with N >= the number of GPUs: named before any work (faked: two GPUs visible)."""
    from coop.model import device as D
    from coop.utils.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert D.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(UserError, match=r"has 2 cuda devices \(cuda:0\.\.cuda:1\)"):
        D.resolve_device("cuda:7")


def test_cuda_n_becomes_the_current_device(monkeypatch):
    from coop.model import device as D

    seen = []
    monkeypatch.setattr(torch.cuda, "set_device", seen.append)
    D.use_device(torch.device("cuda:1"))
    D.use_device(torch.device("cpu"))
    assert seen == [torch.device("cuda:1")]


def test_fp32_is_fp32_and_the_run_records_it():
    from coop.runs.provenance import environment
    from coop.utils.seed import set_seed

    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    set_seed(3)
    num = environment("cpu")["numerics"]
    assert num["tf32_matmul"] is False and num["tf32_cudnn"] is False and num["cudnn_deterministic"] is True
    assert num["deterministic_algorithms"] is True and num["device_type"] == "cpu"


def test_gpu_check_compares_devices_and_refuses_a_cpu(synthetic_root, capsys):
    """The GPU check's comparison runs (here CPU against CPU: zero difference) and the script wants a GPU."""
    gpu_check = load_script("gpu_check")
    rels = sorted(str(p.relative_to(synthetic_root)) for p in synthetic_root.rglob("*.jpg"))[:2]
    res = gpu_check.compare_with_cpu("cpu", synthetic_root, rels, model_name="random:tiny")  # the path, not RN50's size
    assert res["ok"] and set(res["relative_max_diff"]) == {"image", "zeroshot_text", "coop_text", "coop_logits"}
    assert max(res["relative_max_diff"].values()) == 0.0
    assert gpu_check.main(["--device", "cpu"]) == 2
    assert "not a CUDA GPU" in capsys.readouterr().err
