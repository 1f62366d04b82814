"""Every script's argparse parser, for tests that walk all of them (no hand-kept list of scripts or flags).

Each script in ``scripts/`` builds its parser in ``parse_args(argv)`` with coop's ``ArgumentParser``;
:func:`parser_of` calls it and catches the parser at the moment it would parse, so nothing runs.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, List

import pytest

from coop.runs.cli_args import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
OUTPUT_NAMES = ("--out", "--output", "--json", "--save", "--dest", "--write")


class _Caught(Exception):
    pass


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parser_of(path: Path) -> ArgumentParser:
    """The parser ``path``'s ``parse_args`` builds (caught before it parses anything)."""
    module = load_script(path)
    assert hasattr(module, "parse_args"), f"{path.name} has no parse_args(argv): every script builds its parser there"
    caught: List[ArgumentParser] = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        raise _Caught

    mp = pytest.MonkeyPatch()
    mp.setattr(ArgumentParser, "parse_known_args", catch)
    try:
        module.parse_args([])
    except _Caught:
        pass
    finally:
        mp.undo()
    assert caught, f"{path.name}'s parse_args does not use coop.runs.cli_args.ArgumentParser"
    return caught[0]


def script_parsers(folder: Path = SCRIPTS) -> Dict[str, ArgumentParser]:
    return {p.name: parser_of(p) for p in sorted(folder.glob("*.py"))}


def looks_like_output(action) -> bool:
    return any(s in OUTPUT_NAMES for s in action.option_strings)


def unguarded_outputs(parser: ArgumentParser) -> List[str]:
    """Options that name an output but were not declared with ``add_output`` (so nothing guards them)."""
    guarded = {id(a) for a, _ in getattr(parser, "outputs", [])}
    return [a.option_strings[-1] for a in parser._actions if looks_like_output(a) and id(a) not in guarded]


def required_args(parser: ArgumentParser, skip, tmp: Path) -> List[str]:
    """Values for the parser's required options (other than ``skip``) that parse."""
    out: List[str] = []
    for a in parser._actions:
        if a.required and a is not skip and a.option_strings:
            value = "1" if a.type in (int, float) else str(tmp / f"required{len(out)}")
            out += [a.option_strings[-1], value]
    return out
