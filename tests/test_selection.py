"""Which records belong together (coop/runs/selection.py), on made-up records: the frame of inputs,
settings shown apart, what is left out and said, and the fingerprint that decides a redraw."""
from __future__ import annotations

import copy

from coop.runs.selection import fingerprint, frame, select, settings

SPLIT, TEST, CODE, WEIGHTS = "s" * 64, "t" * 64, "c" * 64, "w" * 64


def rec(shots=1, seed=1, method="CoOp", test=TEST, code=CODE, split=SPLIT, weights=WEIGHTS, lr=0.002, run="r"):
    return {"method": method, "shots": shots, "seed": seed, "run_id": f"{run}{shots}{seed}{lr}{test[:1]}",
            "inputs": {"split_sha256": split, "test_images_sha256": test, "code_sha256": code,
                       "images_sha256": f"i{shots}{seed}"},
            "model": {"sha256": weights}, "identity": {"shots": shots, "seed": seed, "lr": lr},
            "settings": {"lr": lr, "epochs": "CoOp's"}}


def loaded(coop, zs=True, baselines=None):
    return {"zeroshot": {**rec(0, None, "Zero-shot CLIP"), "identity": {}} if zs else None,
            "coop": {"CoOp": coop}, "baselines": baselines or {}, "notes": []}


def test_the_frame_is_split_test_images_code_and_weights_not_the_runs_own_images():
    a, b = rec(1, 1), rec(2, 3)
    assert frame(a) == frame(b)  # different few-shot images, same frame
    for change in ({"test": "x" * 64}, {"code": "y" * 64}, {"split": "z" * 64}, {"weights": "v" * 64}):
        assert frame(rec(**change)) != frame(a), change


def test_settings_leave_out_shots_and_seed_only():
    assert settings(rec(1, 1)) == settings(rec(4, 3))
    assert settings(rec(lr=0.01)) != settings(rec())
    assert dict(settings(rec()))["lr"] == repr(0.002)


def test_runs_from_another_frame_are_left_out_and_named():
    stale = [rec(1, 3, test="x" * 64), rec(2, 3, code="y" * 64)]
    out = select(loaded([rec(1, 1), rec(1, 2), *stale]))
    assert [(r["shots"], r["seed"]) for r in out["coop"]["CoOp"]] == [(1, 1), (1, 2)]
    note = next(n for n in out["notes"] if "left out" in n)
    assert "2 runs" in note and "1 shot seed 3" in note and "2 shots seed 3" in note
    assert "other test images, code than the rest" in note  # what differs, named


def test_without_zero_shot_the_most_common_frame_is_the_reference():
    out = select(loaded([rec(1, 1), rec(1, 2), rec(1, 3, code="y" * 64)], zs=False))
    assert [r["seed"] for r in out["coop"]["CoOp"]] == [1, 2]


def test_other_settings_are_shown_apart_named_by_what_differs():
    out = select(loaded([rec(1, 1), rec(1, 2), rec(1, 3, lr=0.01)]))
    assert set(out["coop"]) == {"CoOp", "CoOp [lr=0.01]"}
    assert [r["seed"] for r in out["coop"]["CoOp"]] == [1, 2] and [r["seed"] for r in out["coop"]["CoOp [lr=0.01]"]] == [3]
    assert any("lr" in n and "not averaged" in n for n in out["notes"])


def test_one_group_keeps_its_name_and_adds_no_note():
    out = select(loaded([rec(1, 1), rec(2, 1)]))
    assert list(out["coop"]) == ["CoOp"] and out["notes"] == []


def test_baselines_and_prompt_variants_follow_the_same_frame():
    base = {"Tip-Adapter": [rec(1, 1, "Tip-Adapter"), rec(1, 2, "Tip-Adapter", test="x" * 64)]}
    data = loaded([rec(1, 1)], baselines=base)
    data["zeroshot_prompts"] = {"ensemble": rec(0, None, "Zero-shot CLIP", code="y" * 64)}
    out = select(data)
    assert [r["seed"] for r in out["baselines"]["Tip-Adapter"]] == [1] and out["zeroshot_prompts"] == {}


def test_the_fingerprint_follows_what_would_be_shown():
    a = select(loaded([rec(1, 1), rec(1, 2)]))
    assert fingerprint(a) == fingerprint(copy.deepcopy(a))
    more = select(loaded([rec(1, 1), rec(1, 2), rec(1, 3)]))
    redone = select(loaded([rec(1, 1), rec(1, 2, run="q")]))
    other_method = copy.deepcopy(a)
    other_method["coop"]["CoOp+lora"] = other_method["coop"].pop("CoOp")
    noted = copy.deepcopy(a)
    noted["notes"] = ["a note"]
    assert len({fingerprint(x) for x in (a, more, redone, other_method, noted)}) == 5


def test_the_zero_shot_frame_wins_over_a_majority_and_is_kept():
    data = loaded([rec(1, 1, code="y" * 64), rec(1, 2, code="y" * 64), rec(1, 3)])  # zero-shot has CODE
    out = select(data)
    assert out["zeroshot"] is data["zeroshot"] and [r["seed"] for r in out["coop"]["CoOp"]] == [3]


def test_notes_already_there_are_kept_and_prompt_variants_of_the_frame_too():
    data = loaded([rec(1, 1)])
    data["notes"] = ["earlier note"]
    data["zeroshot_prompts"] = {"ensemble": rec(0, None, "Zero-shot CLIP")}
    out = select(data)
    assert out["notes"][0] == "earlier note" and list(out["zeroshot_prompts"]) == ["ensemble"]


def test_the_largest_settings_group_keeps_the_name_and_names_list_every_difference():
    odd = rec(1, 1, lr=0.01)
    odd["settings"]["epochs"] = 5
    out = select(loaded([odd, rec(1, 2), rec(1, 3)]))
    assert [r["seed"] for r in out["coop"]["CoOp"]] == [2, 3]
    assert set(out["coop"]) == {"CoOp", "CoOp [epochs=5, lr=0.01]"}


def test_the_fingerprint_sees_zero_shot_and_baselines():
    base = {"Tip-Adapter": [rec(1, 1, "Tip-Adapter", run="t")]}
    a = select(loaded([rec(1, 1)], baselines=base))
    other_zs = copy.deepcopy(a)
    other_zs["zeroshot"]["run_id"] = "another"
    other_base = copy.deepcopy(a)
    other_base["baselines"]["Tip-Adapter"][0]["run_id"] = "another"
    assert len({fingerprint(a), fingerprint(other_zs), fingerprint(other_base)}) == 3


def test_the_plain_name_does_not_depend_on_the_order_the_records_were_read():
    """Two groups alike in size: the plain name (what the report compares with) goes by the records'
    contents -- fewer departures from the recipe first -- never by which file came first."""
    faithful = [rec(1, 1), rec(1, 2)]
    departing = [rec(1, 1, lr=0.01, run="d"), rec(1, 2, lr=0.01, run="d")]
    for r in departing:
        r["departures"] = ["views"]
    for coop in (faithful + departing, departing + faithful, departing[::-1] + faithful[::-1]):
        out = select(loaded(copy.deepcopy(coop)))
        assert all(r["settings"]["lr"] == 0.002 for r in out["coop"]["CoOp"])
        assert any('"CoOp" is the one with lr=0.002' in n for n in out["notes"])
    # a group that covers more (shots, seed) cells wins over one with fewer departures
    wide = [rec(1, s, lr=0.01, run="w") for s in (1, 2, 3)]
    out = select(loaded([rec(1, 1), rec(1, 2)] + wide))
    assert [r["seed"] for r in out["coop"]["CoOp"]] == [1, 2, 3]
