"""Issue 39: CLIP-Adapter, TaskRes, ZS-LP and CLAP as baselines of the sweep, wired exactly.

The exactness of each method against the official code is tests/test_adapters_official.py; here: a
baseline run hands each method what adapters.py hands it (the views of the CoOp run's own few-shot
images, CLIP's raw text features of the template, the model's logit scale), the validation-free ones
read no validation image, and their views are the crops CoOp's run of the same seed trains on (one
encoding for both).
"""
from __future__ import annotations

import pytest
import torch

from coop.methods import adapter_methods, adapter_recipe, clap, clip_adapter, taskres
from coop.methods.baselines import BaselineConfig, FewShotData, run_baseline
from coop.methods.table import method
from coop.methods.train import training_set
from coop.methods.train_config import TrainConfig
from coop.runs.experiment import Experiment

OPTIONS = {"epochs": 3, "views": 2}


@pytest.fixture(scope="module")
def exp(synthetic_root, synthetic_split, tmp_path_factory):
    return Experiment("random:tiny", synthetic_root, synthetic_split.path, "cpu",
                      tmp_path_factory.mktemp("adapters-cache"))


def _cfg(key, **options):
    return BaselineConfig(method=key, shots=2, seed=1, model="random:tiny", device="cpu",
                          options={**OPTIONS, **options})


def test_their_views_are_the_crops_coop_trains_on(exp):
    data = FewShotData(exp, _cfg("clap"), _cfg("clap").train_items(exp.split), [])
    views, labels = data.views()
    coop = training_set(exp, TrainConfig(shots=2, seed=1, epochs=5, model="random:tiny", device="cpu"))
    assert torch.equal(views, coop.features[:2]) and torch.equal(labels, coop.labels)


@pytest.mark.parametrize("key,run,kwargs", [
    ("clip_adapter", clip_adapter.run_clip_adapter, {"grid": {"lr": (0.1,), "ratio": (0.2, 0.6)}}),
    ("taskres", taskres.run_taskres, {"grid": {"lr": (0.1,), "alpha": (0.2, 1.0)}}),
    ("zs_lp", clap.run_zs_lp, {}), ("clap", clap.run_clap, {})])
def test_a_run_is_the_method_on_raw_text_features_and_the_runs_views(exp, key, run, kwargs):
    options = {"grid": {k: list(v) for k, v in kwargs["grid"].items()}} if "grid" in kwargs else {}
    cfg = _cfg(key, **options)
    rec = run_baseline(cfg, exp)
    plan = cfg.validation_plan(exp.split)
    data = FewShotData(exp, cfg, cfg.train_items(exp.split), plan["items"])
    views, labels = data.views()
    val = (data.val_x, data.val_y) if method(key).protocol != "validation-free" else (None, None)
    raw = data.text_raw
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(len(raw)))  # CLIP's raw features, not normalised
    out = run(views, labels, *val, data.test_x, raw, seed=1, epochs=3, logit_scale=data.logit_scale, **kwargs)
    assert rec["test_predictions"]["pred"] == out["predictions"].tolist()
    assert rec["hyperparameters"]["train_loss"] == [round(float(x), 6) for x in out["train_loss"]]
    assert rec["protocol"] == method(key).protocol
    if method(key).protocol == "validation-free":
        assert rec["validation"]["images"] == 0 and "val_shots" not in rec["identity"]


def test_the_demo_caps_and_the_defaults_are_the_recipe():
    for key in ("clip_adapter", "taskres", "zs_lp", "clap"):
        m = method(key)
        assert m.options["epochs"] == adapter_recipe.EPOCHS == 300 and m.options["views"] == 20
        assert m.demo["epochs"] < m.options["epochs"] and m.views is adapter_methods.VIEWS
    assert method("clip_adapter").options["grid"]["ratio"][0] == pytest.approx(clip_adapter.RATIO)
    assert method("clap").options["adaptive"] is False  # the published CLAP keeps its multipliers fixed
