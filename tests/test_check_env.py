"""scripts/check_env.py: the precision rule, the projection arithmetic, a broken torchvision, the
script end to end without its measurement. Expectations are computed here from the split file and
CoOp's recipe, not taken from a run."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from conftest import load_script
from coop.data.split import read_split
from coop.model.precision import cpu_supports_bf16
from coop.pipeline import machine_check as M
from coop.utils.paths import SPLIT

EPOCHS = {1: 50, 2: 100, 4: 100}  # CoOp's recipe at 1, 2, 4 shots
SHOTS, SEEDS = (1, 2, 4), (1, 2, 3)


def expected_work(n_cls: int, n_test: int) -> dict:
    """Steps and crops of shots 1 2 4 x seeds 1 2 3, by hand: batch 32, drop-last when a full batch
    exists; nested shot sets, so each seed encodes its 4-shot images with the longest run's crops."""
    steps = len(SEEDS) * sum(EPOCHS[k] * (n_cls * k // 32 if n_cls * k >= 32 else 1) for k in SHOTS)
    return {"n_test": n_test, "n_classes": n_cls, "steps": steps,
            "fresh": len(SEEDS) * n_cls * 4 * max(EPOCHS.values()), "views4": len(SEEDS) * n_cls * 4 * 4}


def fake_meas(rate: float, step: float, load: float = 0.0) -> dict:
    return {"load_s": load, "units": {"fp32": {"encoder_img_s": rate, "crops_img_s": rate, "step_s": step}},
            "demo": {"load_s": load, "units": {"fp32": {"crops_img_s": rate, "step_s": step}}}}


@pytest.mark.parametrize("device, bf16, cuda, precision, words", [
    ("cpu", False, False, "fp32", ["bfloat16", "refused", "amp"]),
    ("cpu", True, False, "amp", ["bfloat16", "autocast"]),
    ("cuda", False, True, "amp", ["fp16", "fp32"]),
    ("cuda", True, True, "amp", ["fp16"]),
])
def test_choose_precision(device, bf16, cuda, precision, words):
    choice, reason = M.choose_precision(device, bf16, cuda)
    assert choice == precision
    for w in words:
        assert w in reason
    if device == "cuda":
        assert "bfloat16" not in reason


def test_cpu_run_beside_a_gpu_says_so():
    assert "--device cuda" in M.choose_precision("cpu", False, True)[1]
    assert "--device cuda" not in M.choose_precision("cpu", False, False)[1]


def test_sweep_counts_match_the_split_file():
    raw = json.loads(SPLIT.read_text())
    exp = expected_work(len({it[1] for part in raw.values() for it in part}), len(raw["test"]))
    c = M.split_counts(read_split(SPLIT))
    assert (c["n_test"], c["n_classes"], c["steps"]) == (exp["n_test"], exp["n_classes"], exp["steps"])
    assert c["crops"] == {"fresh": exp["fresh"], "views4": exp["views4"]}


def test_projection_is_the_hand_computed_sum():
    raw = json.loads(SPLIT.read_text())
    exp = expected_work(len({it[1] for part in raw.values() for it in part}), len(raw["test"]))
    counts = {"sweep": M.split_counts(read_split(SPLIT))}
    sweep = M.project(fake_meas(10.0, 0.1, load=3.0), counts)["sweep"]
    assert set(sweep) == {"fresh_fp32", "views4_fp32"}
    for mode in ("fresh", "views4"):
        hand = exp["n_test"] / 10 + exp[mode] / 10 + exp["steps"] * 0.1 + 3.0
        assert math.isclose(sweep[f"{mode}_fp32"]["total_s"], hand, rel_tol=1e-12)
        assert math.isclose(sweep[f"{mode}_fp32"]["train_s"], exp["steps"] * 0.1, rel_tol=1e-12)
    faster = M.project(fake_meas(20.0, 0.1, load=3.0), counts)["sweep"]
    for key in sweep:  # doubling the throughput halves the encoding and leaves training alone
        assert math.isclose(faster[key]["encode_s"], sweep[key]["encode_s"] / 2, rel_tol=1e-12)
        assert faster[key]["train_s"] == sweep[key]["train_s"]


def test_demo_projection_uses_the_demos_own_tree(tmp_path):
    _, demo = M.demo_tree(tmp_path)
    per_class, n_cls = 12, 10  # make_synthetic_data's defaults, split 50/20/30
    n_test = n_cls * (per_class - round(per_class * 0.5) - round(per_class * 0.2))
    exp = expected_work(n_cls, n_test)
    counts = {"sweep": M.split_counts(demo), "demo": M.split_counts(demo)}
    d = M.project(fake_meas(100.0, 0.01, load=0.5), counts)["demo"]["fp32"]
    hand = n_test / 100 + exp["fresh"] / 100 + exp["steps"] * 0.01 + 0.5 + M.DEMO_FIXED_S
    assert math.isclose(d["total_s"], hand, rel_tol=1e-12)


@pytest.mark.parametrize("torch_version, tv", [("2.14.1+cu130", "0.29.*"), ("2.1.2", "0.16.*"),
                                              ("1.13.1+cpu", "0.14.*"), ("nightly", None)])
def test_matching_torchvision(torch_version, tv):
    assert M.matching_torchvision(torch_version) == tv


def break_nms(monkeypatch):
    import torchvision.ops

    def nms(*a, **k):
        raise RuntimeError("operator torchvision::nms does not exist\nmore lines of C++ context")
    monkeypatch.setattr(torchvision.ops, "nms", nms)


def test_broken_torchvision_is_reported_with_the_fix(monkeypatch):
    assert M.check_torchvision_ops()["ok"]
    break_nms(monkeypatch)
    r = M.check_torchvision_ops()
    assert not r["ok"] and r["error"] == "RuntimeError: operator torchvision::nms does not exist"
    base = torch.__version__.split("+")[0]
    assert f'"torch=={base}"' in r["fix"] and "torchvision==" in r["fix"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in r["fix"]


def test_parse_cpuinfo():
    text = "processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 avx512f amx_bf16\n"
    info = M.parse_cpuinfo(text)
    assert info["model"] == "Some CPU 9000"
    assert info["flags"] == {"avx2": True, "avx512f": True, "avx512_bf16": False, "amx_bf16": True}
    assert M.parse_cpuinfo("") == {"model": None, "flags": {f: None for f in M.CPU_FLAGS}}


def test_clip_from_openais_repository(monkeypatch):
    real = M.dist_version
    monkeypatch.setattr(M, "dist_version", lambda name: None if name == "clip-anytorch" else real(name))
    assert M.clip_version() == "OpenAI's clip from its repository"


def test_notes():
    assert M.busy_note(0.1) is None and M.busy_note(None) is None
    assert "60% of the CPU" in M.busy_note(0.6)
    # 20 s on 2 cores: the machine used 30 CPU-s, this process 18 -> others 12 of 40
    assert math.isclose(M.others_share((100.0, 5.0), (130.0, 23.0), 20.0, 2), 12 / 40)
    assert M.others_share((None, 5.0), (None, 23.0), 20.0, 2) is None
    proj = {"sweep": {"fresh_fp32": {"total_s": 100.0}, "fresh_amp": {"total_s": 150.0}}}
    assert "fp32" in M.amp_note(proj)
    proj["sweep"]["fresh_amp"]["total_s"] = 50.0
    assert M.amp_note(proj) is None


def test_script_without_measuring(tmp_path, capsys):
    out_json = tmp_path / "check.json"
    assert load_script("check_env").main(["--no-measure", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out and "Python " in out and "scikit-learn " in out and "clip " in out
    cuda = torch.cuda.is_available()
    assert re.search(rf"^  device +{'cuda' if cuda else 'cpu'}", out, re.M)
    expected = "amp" if cuda or cpu_supports_bf16() else "fp32"
    assert re.search(rf"^  precision +{expected}: ", out, re.M)
    assert "skipped (--no-measure)" in out and "bash scripts/run_all.sh --demo" in out
    r = json.loads(out_json.read_text())
    assert r["precision"]["choice"] == expected and "measurements" not in r
    assert r["counts"]["sweep"]["crops"]["fresh"] == M.split_counts(read_split(SPLIT))["crops"]["fresh"]


def test_script_with_broken_torchvision_exits_1(monkeypatch, capsys):
    break_nms(monkeypatch)
    assert load_script("check_env").main([]) == 1  # no --no-measure: the measurement is skipped anyway
    out = capsys.readouterr().out
    assert "BROKEN: RuntimeError: operator torchvision::nms does not exist" in out
    assert "fix: reinstall torch and torchvision" in out and "skipped (torchvision must load first)" in out


def test_script_reports_the_projections_of_a_faked_measurement(monkeypatch, capsys):
    """The measured branch of the report, with unit costs faked (no timing runs here)."""
    def fake_measure(device, precisions, root, demo, names):
        m = fake_meas(10.0, 0.1)
        m["units"] = {p: {"encoder_img_s": 12.0, "crops_img_s": 10.0, "step_s": 0.1} for p in precisions}
        return {**m, "model": "random:RN50", "device": device, "threads": 2, "elapsed_s": 14.0,
                "others_cpu_share": 0.0, "what": "faked",
                "base2new_units": {"coop_step_s": 0.2, "cocoop_step_s": 0.3, "cocoop_eval_img_s": 0.1}}
    monkeypatch.setattr(M, "measure", fake_measure)
    assert load_script("check_env").main([]) == 0
    out = capsys.readouterr().out
    # base-to-new, 100 classes: 3 seeds x 800 base images; CoOp 200 epochs x 25 steps, CoCoOp 10 x 800 steps
    b2n = (3 * 800 * 200 / 10 + 3 * 5000 * 0.2 + 3 * 8000 * 0.3 + 3 * len(json.loads(SPLIT.read_text())["test"]) * 0.1
           + len(json.loads(SPLIT.read_text())["test"]) / 10) / 60
    assert re.search(rf"base-to-new .*480,000 crops \+ 15,000 CoOp \+ 24,000 CoCoOp steps: fresh crops {b2n:.0f} min", out)
    raw = json.loads(SPLIT.read_text())
    exp = expected_work(len({it[1] for part in raw.values() for it in part}), len(raw["test"]))
    fresh_min = (exp["n_test"] / 10 + exp["fresh"] / 10 + exp["steps"] * 0.1) / 60
    assert re.search(rf"sweep, fresh crops \(default\).*: fp32 {fresh_min:.0f} min \({0.75 * fresh_min:.0f} min-"
                     rf"{1.25 * fresh_min:.0f} min\)", out)
    assert "±25% estimates" in out and "demo, projected (not run)" in out
    assert re.search(r"^  measured +random:RN50 .* in 14.0 s", out, re.M) and "warning" not in out
