"""What the tests of a sweep spread over processes share (xargs in test_parallel.py, GNU parallel in
test_gnu_parallel.py, a SLURM array in test_slurm.py): the records of a sequential sweep to compare
with, the comparison itself, the lines that say a run was written, and the code blocks of
docs/parallel.md that these tests run as the doc writes them."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Dict, List, Sequence

from coop.runs.results import read_result
from conftest import ROOT, load_script
from test_docs import HEADING, split_fences

PARALLEL_DOC = ROOT / "docs" / "parallel.md"
run_all = load_script("run_all")

# The demo's settings cut to one shot count, one seed, no baseline and no bonus (zero-shot, CoOp, the other
# prompt set), each value one shell word so that they fit the doc's $SWEEP.
FEWSHOT = ["--demo", "--shots", "1", "--seeds", "1", "--epochs", "2", "--baselines", "none", "--block-mod", "none",
           "--device", "cpu"]
# The base-to-new protocol on the demo, one seed (3 runs: zero-shot, CoOp, CoCoOp on the base classes).
BASE2NEW = ["--demo", "--protocol", "base2new", "--seeds", "1", "--device", "cpu"]


def records(results: Path) -> dict:
    """{path below ``results``: record} of every complete record (the feature cache's files left out)."""
    out = {}
    for f in sorted(results.rglob("*.json")):
        rec = read_result(f) if "cache" not in f.relative_to(results).parts[:-1] else None
        if rec is not None:
            out[f.relative_to(results).as_posix()] = rec
    return out


def assert_same_records(got: dict, expected: dict) -> None:
    """The same runs, each with the same run id, accuracy and per-image predictions."""
    assert sorted(got) == sorted(expected)
    for name, rec in expected.items():
        other = got[name]
        assert other["run_id"] == rec["run_id"], name  # same settings and inputs
        assert other["accuracy"] == rec["accuracy"], name
        assert json.dumps(other.get("test_predictions")) == json.dumps(rec.get("test_predictions")), name


def written(log_text: str) -> List[str]:
    """The records a process's log says it wrote, one entry per 'wrote RECORD.json' line."""
    return [line[len("wrote "):] for line in log_text.splitlines() if line.startswith("wrote ") and line.endswith(".json")]


def drew(log_text: str, path: Path) -> bool:
    """The log says ``path`` (a figure, a report) was written, and it is there."""
    return path.is_file() and any(line.startswith("wrote ") and line.endswith(str(path)) for line in log_text.splitlines())


_SEQUENTIAL: Dict[tuple, Path] = {}


def sequential(tmp_path_factory, argv: Sequence[str]) -> Path:
    """The results folder of ``run_all ARGV`` run in one process (once per test session and argv):
    what every spread sweep with the same flags must equal."""
    key = tuple(argv)
    if key not in _SEQUENTIAL:
        folder = tmp_path_factory.mktemp("sequential")
        assert run_all.main([*argv, "--no-report", "--results", str(folder)]) == 0
        _SEQUENTIAL[key] = folder
    return _SEQUENTIAL[key]


def nothing_pending(argv: Sequence[str], capsys) -> bool:
    """``run_all ARGV --print-commands`` lists nothing and says so."""
    capsys.readouterr()
    assert run_all.main([*argv, "--print-commands"]) == 0
    out, err = capsys.readouterr()
    return out == "" and "nothing to do" in err


def doc_blocks(heading: str, doc: Path = PARALLEL_DOC) -> List[str]:
    """The fenced code blocks of the section of ``doc`` whose heading starts with ``heading`` (up to the
    next heading of the same or a higher level), in order."""
    text = doc.read_text(encoding="utf-8")
    prose, _ = split_fences(text)  # fenced lines blanked, so a '# comment' in a block is no heading
    lines, prose_lines = text.split("\n"), prose.split("\n")
    start = level = None
    for i, line in enumerate(prose_lines):
        m = HEADING.match(line)
        if not m:
            continue
        if start is None and m.group(2).startswith(heading):
            start, level = i, len(m.group(1))
        elif start is not None and len(m.group(1)) <= level:
            return split_fences("\n".join(lines[start:i]))[1]
    assert start is not None, f"{doc.name} has no section '{heading}'"
    return split_fences("\n".join(lines[start:]))[1]


def exported(block: str) -> Dict[str, str]:
    """{NAME: value} of the ``export NAME=value`` lines of a settings block (a comment after them ignored)."""
    out = {}
    for line in block.split("\n"):
        m = re.match(r"\s*export\s+(.*)", line)
        if m:
            for word in shlex.split(m.group(1), comments=True):
                name, _, value = word.partition("=")
                out[name] = value
    return out


def checkout(folder: Path) -> Path:
    """A folder that runs the doc's commands like the project's folder (``python scripts/run_all.py``
    finds the project's script; run_all resolves its own path) while the files those commands write in
    the current folder (runs.txt, SLURM's logs) land there, not in the working tree."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    return folder
