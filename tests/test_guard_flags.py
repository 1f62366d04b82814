"""Issue 36, class 3: a flag either changes a run or is refused -- walked over every script and protocol.

Every script that makes runs builds them with ``runs_of(args)`` and calls coop.runs.flags.refuse_ignored
before any work; this test finds those scripts from their source, takes every option of their parser
(and every --protocol choice), sets it to a value other than its default, and checks that the command
either refuses it in one line naming the flag or makes different runs. A new flag, a new protocol or a
new script that writes records is covered without being listed here.
"""
from __future__ import annotations

import argparse
import re

import pytest

from coop.runs.flags import refuse_ignored
from coop.utils.errors import UserError
from script_parsers import SCRIPTS, load_script, parser_of, required_args

MAKERS = sorted(p for p in SCRIPTS.glob("*.py") if re.search(r"\b(write_result|run_sweep|run_coop|run_zeroshot)\b",
                                                                p.read_text(encoding="utf-8")))


def other_value(action, default):
    """A value of ``action`` other than its default, as it would be typed."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return []
    if action.choices:
        return [next(str(c) for c in action.choices if c != default)]
    if action.type is int:
        return [str((default or 1) + 1)]
    if action.type is float:
        return [str((default or 1.0) / 2)]
    if isinstance(default, str) and re.fullmatch(r"[\d ,]+", default):  # a list of integers: --shots "1 2 4"
        return ["3"]
    return [f"{default}x" if default else "a {}."]


def cases():
    for path in MAKERS:
        parser = parser_of(path)
        protocols = [a for a in parser._actions if a.dest == "protocol"]
        for protocol in (protocols[0].choices if protocols else [None]):
            for action in parser._actions:
                if action.option_strings and action.dest not in ("help", "protocol"):
                    yield pytest.param(path, protocol, action.dest, id=f"{path.stem}:{protocol}:{action.dest}")


def test_the_scripts_that_make_runs_are_found_and_each_calls_the_guard():
    assert {p.name for p in MAKERS} >= {"run_all.py", "train_coop.py", "zeroshot.py"}
    for path in MAKERS:
        text = path.read_text(encoding="utf-8")
        module = load_script(path)
        assert callable(getattr(module, "runs_of", None)), f"{path.name} makes runs but has no runs_of(args)"
        assert "refuse_ignored(" in text, f"{path.name} makes runs without coop.runs.flags.refuse_ignored"
        for dest in module.ACTS_ON:  # a flag the script acts on itself must be read by it
            assert f"args.{dest}" in text, f"{path.name}: ACTS_ON names {dest}, which the script never reads"


@pytest.mark.parametrize("path,protocol,dest", list(cases()))
def test_every_flag_changes_the_runs_or_is_refused(tmp_path, path, protocol, dest):
    parser, module = parser_of(path), load_script(path)
    if dest in module.ACTS_ON:
        pytest.skip(f"{dest}: the script acts on it itself")
    action = next(a for a in parser._actions if a.dest == dest)
    base = required_args(parser, None, tmp_path) + (["--protocol", protocol] if protocol else [])
    default = int(base[base.index(action.option_strings[-1]) + 1]) if action.required else action.default
    argv = base + [action.option_strings[-1]] + other_value(action, default)
    try:
        args = parser.parse_args(argv)  # a value the parser refuses is a one-line refusal too
        refuse_ignored(args, module.runs_of, module.ACTS_ON, what="this command")
        changed = module.runs_of(args) != module.runs_of(parser.parse_args(base))
    except UserError as e:
        assert action.option_strings[-1] in str(e) or "does nothing" in str(e) or str(e).count("\n") == 0
        return
    assert changed, f"{action.option_strings[-1]} changed nothing and was not refused"


def test_the_guard_can_fail(tmp_path):
    """A script whose runs ignore one of its flags is refused at that flag."""
    from dataclasses import dataclass

    from coop.runs.cli_args import ArgumentParser

    @dataclass
    class Run:
        a: int = 1

    p = ArgumentParser("probe")
    p.add_argument("--a", type=int, default=1)
    p.add_argument("--b", type=int, default=1)
    with pytest.raises(UserError, match="--b does nothing"):
        refuse_ignored(p.parse_args(["--a", "2", "--b", "3"]), lambda x: [Run(x.a)])
    refuse_ignored(p.parse_args(["--a", "2"]), lambda x: [Run(x.a)])
    refuse_ignored(p.parse_args(["--a", "2", "--b", "1"]), lambda x: [Run(x.a)])  # typed at its default: asks nothing


@pytest.mark.parametrize("flags,named", [
    (["--n-ctx", "8"], "--n-ctx"), (["--batch-size", "4"], "--batch-size"), (["--csc"], "--csc"),
    (["--class-token-position", "front"], "--class-token-position"), (["--shots", "4"], "--base2new-shots"),
    (["--templates", "ensemble"], "--templates")])
def test_as_the_user_meets_it_base2new_refuses_what_it_would_ignore(tmp_path, capsys, flags, named):
    run_all = load_script(SCRIPTS / "run_all.py")
    assert run_all.main(["--demo", "--results", str(tmp_path), "--protocol", "base2new", "--print-commands",
                         *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and named in err


def test_tip_search_without_a_tip_baseline_is_refused(tmp_path, capsys):
    run_all = load_script(SCRIPTS / "run_all.py")
    assert run_all.main(["--demo", "--results", str(tmp_path), "--baselines", "lp", "--tip-search", "val",
                         "--print-commands"]) == 2
    assert "--tip-search does nothing" in capsys.readouterr().err
