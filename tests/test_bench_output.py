"""scripts/bench.py writes fresh measurements beside the reference results/bench.json (issue 14)."""
from __future__ import annotations

import json

from conftest import ROOT, load_script


def test_bench_writes_a_dated_file_and_keeps_the_reference(tmp_path, synthetic_split, monkeypatch, capsys):
    bench = load_script("bench")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)  # the default folder, here a temporary one
    reference = (ROOT / "results" / "bench.json").read_bytes()
    assert bench.main(["--model", "random:tiny", "--split-file", synthetic_split.path, "--no-naive",
                       "--repeat", "1", "--shots", "1", "--seeds", "1"]) == 0
    written = list(tmp_path.glob("bench-????-??-??.json"))
    assert len(written) == 1 and (ROOT / "results" / "bench.json").read_bytes() == reference
    table = json.loads(written[0].read_text())["table"]
    step = next(line for line in table if "(a) training step" in line)
    assert "—" in step and " 0.0" not in step  # skipped naive cells are dashes, not zeros
