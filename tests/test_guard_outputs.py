"""Issue 36, class 1: one guard for every file a user names, walked over every script's parser.

For every option of every script that names an output file, a finished run record and a user's file at
that path are refused (bytes unchanged) and, with --force, set aside (kept, renamed); a file of the
same kind is written over. A new script whose --out bypasses the guard fails here without anyone
adding it to a list.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from coop.runs.outputs import kind_of
from coop.utils.errors import UserError
from script_parsers import ROOT, parser_of, required_args, script_parsers, unguarded_outputs

PARSERS = script_parsers()
OUTPUTS = [(name, action, kind) for name, p in PARSERS.items() for action, kind in getattr(p, "outputs", [])
           if kind != "folder"]
RECORD = {"schema": 3, "kind": "coop", "method": "CoOp", "complete": True, "accuracy": 50.0, "shots": 1, "seed": 1}


def test_every_output_option_of_every_script_goes_through_the_guard():
    assert len(PARSERS) >= 12 and len(OUTPUTS) >= 7, (len(PARSERS), len(OUTPUTS))
    missing = {name: unguarded_outputs(p) for name, p in PARSERS.items() if unguarded_outputs(p)}
    assert not missing, f"output options declared with add_argument instead of add_output: {missing}"


def test_a_new_script_that_bypasses_the_guard_is_caught(tmp_path):
    script = tmp_path / "new_tool.py"
    script.write_text("from coop.runs.cli_args import ArgumentParser\n"
                      "def parse_args(argv=None):\n"
                      "    p = ArgumentParser('a new tool')\n"
                      "    p.add_argument('--out', help='write the table here')\n"
                      "    return p.parse_args(argv)\n")
    assert unguarded_outputs(parser_of(script)) == ["--out"]


def _place(path, what):
    path.parent.mkdir(parents=True, exist_ok=True)
    if what == "record":
        path.write_text(json.dumps(RECORD))
    else:
        path.write_bytes(b"my own notes, not this project's\n")
    return path.read_bytes()


def _target(tmp_path, kind, name):
    suffix = {"figure": ".png", "report": ".md"}.get(kind, ".json")
    return tmp_path / "R" / "coop" / f"{name}{suffix}"


@pytest.mark.parametrize("what", ["record", "user"])
@pytest.mark.parametrize("script,action,kind", OUTPUTS, ids=[f"{n}:{a.option_strings[-1]}" for n, a, _ in OUTPUTS])
def test_each_output_refuses_a_record_and_a_users_file_and_force_sets_it_aside(tmp_path, script, action, kind, what):
    parser = PARSERS[script]
    target = _target(tmp_path, kind if isinstance(kind, str) else "json", "shots1_seed1")
    before = _place(target, "record" if what == "record" and target.suffix == ".json" else "user")
    argv = required_args(parser, action, tmp_path) + [action.option_strings[-1], str(target)]
    with pytest.raises(UserError, match="pass --force to set it aside"):
        parser.parse_args(argv)
    assert target.read_bytes() == before
    parser.parse_args(argv + ["--force"])
    assert not target.exists()
    kept = list(target.parent.glob(target.name + ".set-aside-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == before


@pytest.mark.parametrize("kind", ["bench", "check_env", "sweep_timing", "zeroshot"])
def test_an_output_of_the_same_kind_is_written_over(tmp_path, kind):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"kind": kind}))
    from coop.runs.outputs import claim

    claim(p, kind)  # no error, nothing moved
    assert p.exists() and kind_of(p) == kind


def test_the_committed_reference_numbers_take_force():
    from coop.runs.outputs import claim

    bench = ROOT / "results" / "bench.json"
    with pytest.raises(UserError, match="committed bench file"):
        claim(bench, "bench")


@pytest.mark.parametrize("argv", [
    ["scripts/sweep_timing.py", "--results", "{R}", "--out", "{R}/coop/shots1_seed1.json"],
    ["scripts/check_env.py", "--no-measure", "--json", "{R}/coop/shots1_seed1.json"],
    ["scripts/bench.py", "--out", "{R}/coop/shots1_seed1.json"],
])
def test_as_the_user_meets_it_a_run_record_is_not_replaced(tmp_path, argv):
    """The cases found: each exited 0 and replaced the record."""
    record = tmp_path / "coop" / "shots1_seed1.json"
    before = _place(record, "record")
    cmd = [sys.executable] + [a.replace("{R}", str(tmp_path)) for a in argv]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "error:" in r.stderr and "--force" in r.stderr, r.stderr
    assert record.read_bytes() == before
