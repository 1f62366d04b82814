"""scripts/bench.py writes fresh measurements beside the reference results/bench.json (issue 14), and its
table shows the input path before and after and the encoder's share (one small bench run for both)."""
from __future__ import annotations

import json

from conftest import ROOT, load_script


def test_bench_writes_a_dated_file_keeps_the_reference_and_shows_the_input_path(tmp_path, synthetic_root,
                                                                                synthetic_split, monkeypatch):
    bench = load_script("bench")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)  # the default folder, here a temporary one
    reference = (ROOT / "results" / "bench.json").read_bytes()
    assert bench.main(["--model", "random:tiny", "--split-file", synthetic_split.path, "--data-root",
                       str(synthetic_root.parent), "--no-naive", "--repeat", "1", "--shots", "1", "--seeds", "1",
                       "--workers", "0"]) == 0
    written = list(tmp_path.glob("bench-????-??-??.json"))
    assert len(written) == 1 and (ROOT / "results" / "bench.json").read_bytes() == reference
    saved = json.loads(written[0].read_text())
    table, img = saved["table"], saved["image_encoder"]
    step = next(line for line in table if "(a) training step" in line)
    assert "—" in step and " 0.0" not in step  # skipped naive cells are dashes, not zeros
    ip = img["input_path_ms_per_crop"]
    for old, what in (("decode_per_crop", "decode per crop"), ("float_per_crop", "decode once, float per crop")):
        row = next(line for line in table if f"input path alone, ms/crop: {what}" in line)
        assert f"{ip[old]:.2f}" in row and f"{ip['ours']:.2f}" in row and f"{ip[old] / ip['ours']:.2f}x" in row
    share = next(line for line in table if "fresh crops / encoder alone, fp32" in line)
    assert f"{100 * img['fresh_crops_fp32_img_s'] / img['ours_channels_last_img_s']:.0f}%" in share
    assert "target ≥95%" in share and "cores" in table[0]  # the CPU it holds for is named
