"""A record is checked before it is trusted (coop/runs/validation.py), field by field, on made-up records."""
from __future__ import annotations

from pathlib import Path

import pytest

from coop.runs.provenance import run_id
from coop.runs.validation import expected_method, problems

CLASSES = ["ant", "bee"]


def good(**over):
    labels = [0, 0, 0, 1, 1, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, 1, 0, 0]  # ant 2/3 right, bee 3/5 right: 5 of 8
    rec = {"method": "CoOp", "shots": 2, "seed": 1, "accuracy": 62.5, "n_test": 8, "classnames": CLASSES,
           "per_class_accuracy": {"ant": round(200 / 3, 4), "bee": 60.0},
           "test_predictions": {"index": list(range(8)), "label": labels, "pred": pred},
           "identity": {"shots": 2, "seed": 1, "lr": 0.002}, "inputs": {"split_sha256": "s"}}
    rec.update(over)
    rec.setdefault("run_id", run_id(rec["identity"], rec["inputs"]))
    return rec


@pytest.mark.parametrize("path,method", [
    ("r/coop/shots1_seed1.json", "CoOp"), ("r/coop_lora/shots1_seed1.json", "CoOp+lora"),
    ("r/baselines/linear_probe/shots1_seed1.json", None),  # a baseline record names its own folder
    ("r/zeroshot_prompts/ensemble.json", "Zero-shot CLIP"), ("r/zeroshot.json", None)])
def test_the_method_a_folder_holds(path, method):
    assert expected_method(Path(path)) == method


def test_a_baseline_record_must_sit_in_the_folder_it_names():
    rec = good(kind="baseline", method="Tip-Adapter", folder="tip_adapter")
    assert problems(rec, Path("r/baselines/tip_adapter/shots2_seed1.json")) == []
    found = problems(rec, Path("r/baselines/linear_probe/shots2_seed1.json"))
    assert any("sits in baselines/linear_probe/" in p for p in found), found
    found = problems(good(kind="baseline", method="Tip-Adapter"), Path("r/baselines/mine/shots2_seed1.json"))
    assert found, "a baseline record without its folder is not trusted"


def test_a_consistent_record_has_no_problem():
    assert problems(good(), Path("r/coop/shots2_seed1.json")) == []
    assert problems(good(test_predictions=None), Path("r/coop/shots2_seed1.json")) == []


@pytest.mark.parametrize("over,needle", [
    ({"accuracy": 99.0}, "whole number"),                      # 7.92 of 8 images
    ({"accuracy": 75.0}, "outside its per-class"),             # possible count, impossible per class
    ({"accuracy": 101.0}, "not a percentage"),
    ({"accuracy": "high"}, "not a percentage"),
    ({"n_test": 0}, "n_test"),
    ({"n_test": 9, "accuracy": 55.5556}, "do not have n_test"),
    ({"per_class_accuracy": {"ant": 60.0, "bee": 66.6667}}, "class 'ant'"),
])
def test_an_impossible_accuracy_is_named(over, needle):
    found = problems(good(**over), Path("r/coop/shots2_seed1.json"))
    assert any(needle in p for p in found), found


def test_predictions_that_disagree_with_the_accuracy_are_named():
    rec = good()
    rec["test_predictions"]["pred"][2] = 0  # now 6 of 8 right, the record still says 62.5
    assert any("predictions' 75.0000" in p for p in problems(rec))


def test_a_run_id_that_is_not_the_hash_of_settings_and_inputs():
    rec = good()
    rec["identity"]["lr"] = 0.5
    assert any("run_id" in p for p in problems(rec))
    assert not any("run_id" in p for p in problems(good(), None))


def test_the_wrong_folder_or_file_name_is_named():
    assert any("folder of 'CoOp+lora'" in p for p in problems(good(), Path("r/coop_lora/shots2_seed1.json")))
    assert any("file name" in p for p in problems(good(), Path("r/coop/shots4_seed1.json")))
    assert any("file name" in p for p in problems(good(), Path("r/coop/shots2_seed3.json")))
    assert problems(good(), Path("r/elsewhere.json")) == []
