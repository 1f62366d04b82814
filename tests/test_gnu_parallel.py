"""docs/parallel.md's GNU parallel section, run as the doc writes it (issue 40): the listing, ``parallel
-j 2 < runs.txt``, the collect command, with the section's ``SWEEP`` set to the demo's settings; the
checks of tests/test_parallel.py (records equal to a sequential sweep's, each run written once, nothing
pending) and the collect step's figure and report. Skipped where GNU parallel is not installed; in CI
(``CI=true``), where .ci/run installs it, that is an error instead."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spread import (FEWSHOT, assert_same_records, checkout, doc_blocks, drew, exported, nothing_pending, records,
                    sequential, written)


def _why_not() -> str:
    if shutil.which("parallel") is None:
        return "GNU parallel is not installed: apt-get install parallel, as .ci/run does"
    v = subprocess.run(["parallel", "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if "GNU parallel" not in v.stdout:
        return f"`parallel` here is not GNU parallel (moreutils' has another syntax): {v.stdout[:80]!r}"
    return ""


WHY_NOT = _why_not()
if WHY_NOT and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must run the GNU parallel test, not skip it: {WHY_NOT}")


@pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "GNU parallel present")
def test_the_docs_gnu_parallel_block_equals_a_sequential_sweep(tmp_path, tmp_path_factory, capsys):
    settings, block = doc_blocks("With GNU parallel")
    assert set(exported(settings)) == {"SWEEP"}, settings
    assert any(line.startswith("parallel ") for line in block.split("\n")), block
    argv = FEWSHOT + ["--results", str(tmp_path / "results")]
    assert not any(" " in a for a in argv)  # $SWEEP is split at spaces
    env = {**os.environ, "SWEEP": shlex.join(argv), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    work = checkout(tmp_path / "project")
    block_run = subprocess.Popen(["bash", "-c", block], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        expected = records(sequential(tmp_path_factory, FEWSHOT) / "demo")  # meanwhile (the block has one-process stretches)
        _, err = block_run.communicate(timeout=600)
    finally:
        if block_run.poll() is None:  # the block and what it started: parallel and its lines
            os.killpg(block_run.pid, signal.SIGKILL)
            block_run.wait()
    assert block_run.returncode == 0, err[-3000:]
    assert len((work / "runs.txt").read_text().splitlines()) == len(expected)
    results = tmp_path / "results" / "demo"
    assert sorted(written(err)) == sorted(str(results / name) for name in expected), err[-3000:]  # once each
    assert "0 to do" in err  # the collect command found every run done,
    for drawn in ("fewshot.png", "REPORT_demo.md"):  # and drew the figure and the report
        assert drew(err, results / drawn), drawn
    assert_same_records(records(results), expected)
    assert nothing_pending(argv, capsys)
