"""Issue 36, class 2: records that belong together. Every consumer of a folder's records -- a figure, a
report, a summary, a timing table -- reads them through the one reader, ``coop.runs.results.load_results``
(``protocol="fewshot"`` or ``"base2new"``), which ends in ``coop.runs.selection.select``: runs made from
other data, weights or code are left out and named; a method's runs of other settings are shown apart,
named (``CoOp [epochs=3]``), never averaged with the rest.

The consumers are found, not listed: every module of ``coop/`` and ``scripts/`` is read (its syntax tree,
nothing imported) for the reader's names, and for the raw per-file reader (``read_result``,
``why_unreadable``, a glob of record files) -- which only modules that look at one file they were given
may use. Each consumer found must have a run here, and each run is made on one folder mixing settings and
models: two few-shot sweeps with other ``--epochs``, a run of other weights, two base-to-new sweeps with
other ``--epochs``, a base-to-new run of other weights. A module added without the reader, or without a
run here, fails ``test_every_record_reader_goes_through_the_selection``.
"""
from __future__ import annotations

import ast
import logging
import re
import shutil
from pathlib import Path
from typing import Dict, List, Set

import pytest
import torch

from conftest import ROOT, load_script

ENTRY = {"load_results", "load_base2new"}  # the one reader, and the base-to-new report's view of it
RAW = {"read_result", "why_unreadable", "_read"}  # one file's record, unselected
READER = {"coop/runs/results.py", "coop/runs/selection.py"}  # the reader itself
SINGLE_RECORD = {  # raw readers allowed: each looks at one file it was given, never at a folder's records
    "coop/runs/overwrite.py": "is the file at an output path a record of the kind this run may replace",
    "scripts/zeroshot.py": "its own evaluation file, before replacing it",
}
RECORD_GLOB = re.compile(r"seed|\.json")


def record_readers(roots: List[Path], base: Path = ROOT) -> Dict[str, Dict[str, Set[str]]]:
    """``{path: {"entry": names of the reader used, "raw": raw reads}}`` for every module under ``roots``
    that reads records: imports or calls the reader or the raw reader, or globs record files."""
    found: Dict[str, Dict[str, Set[str]]] = {}
    for root in roots:
        for f in sorted(Path(root).rglob("*.py")):
            entry, raw = set(), set()
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    for a in node.names:
                        if a.name in ENTRY:
                            entry.add(a.name)
                        elif a.name in RAW and (node.module or "").endswith("results"):
                            raw.add(a.name)
                elif isinstance(node, ast.Attribute) and node.attr in ENTRY | RAW - {"_read"}:
                    (entry if node.attr in ENTRY else raw).add(node.attr)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr in ("glob", "rglob", "iglob") and node.args
                      and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                      and RECORD_GLOB.search(node.args[0].value)):
                    raw.add(f"glob({node.args[0].value!r})")
            if entry or raw:
                found[f.resolve().relative_to(base.resolve()).as_posix() if f.resolve().is_relative_to(base.resolve())
                      else f.as_posix()] = {"entry": entry, "raw": raw}
    return found


def problems(found: Dict[str, Dict[str, Set[str]]], runners: Dict[str, str]) -> List[str]:
    """What the walk found wrong: a raw reader outside the reader and the single-record modules, a consumer
    without a run in this file."""
    out = []
    for path, use in sorted(found.items()):
        if path in READER:
            continue
        if use["raw"] and path not in SINGLE_RECORD:
            out.append(f"{path} reads records without the selection ({', '.join(sorted(use['raw']))}): read a "
                       f"folder's records with coop.runs.results.load_results(folder, protocol)")
        if use["entry"] and path not in runners:
            out.append(f"{path} is a consumer of records with no run in tests/test_consumers.py: add it to RUNNERS "
                       f"(a run on the mixed folder)")
    return out


# -- the folder mixing settings and models, made by the scripts as a user would ------------------------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """``results/demo/``: CoOp at 1 shot, seeds 1-2 with --epochs 2 and seed 3 with --epochs 3 (a second sweep
    into the same folder), seed 4 with other weights; ``base2new/``: zero-shot, CoOp and CoCoOp seed 1 with
    --epochs 2, seed 2 with --epochs 3 (a second sweep), CoOp seed 3 with other weights."""
    from coop.model.clip_loader import random_clip
    from coop.runs import provenance

    CODE.append(provenance.code_sha256())  # one code for every run: others may edit the tree while this runs
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(provenance, "code_sha256", lambda: CODE[0])
        return _make_mixed(tmp_path_factory.mktemp("mixed"), random_clip)


CODE: List[str] = []


def _make_mixed(root: Path, random_clip) -> Path:
    run_all, train = load_script("run_all"), load_script("train_coop")
    few = ["--demo", "--shots", "1", "--baselines", "none", "--device", "cpu", "--results", str(root)]
    assert run_all.main(few + ["--seeds", "1 2", "--epochs", "2"]) == 0
    assert run_all.main(few + ["--seeds", "3", "--epochs", "3"]) == 0
    demo = root / "demo"
    other = root / "other_weights.pt"  # a real run of other weights, cheaply: tiny CLIP, every weight moved
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in random_clip("tiny").state_dict().items()}, other)
    where = ["--data-root", str(demo / "data"), "--split-file", str(demo / "split.json"), "--cache-dir",
             str(demo / "cache"), "--device", "cpu", "--model", str(other)]
    assert train.main(where + ["--results", str(demo), "--shots", "1", "--seed", "4", "--epochs", "2"]) == 0
    b2n = ["--demo", "--protocol", "base2new", "--base2new-shots", "2", "--device", "cpu", "--results", str(root)]
    assert run_all.main(b2n + ["--seeds", "1", "--epochs", "2"]) == 0
    assert run_all.main(b2n + ["--seeds", "2", "--epochs", "3"]) == 0
    assert run_all.main(["--protocol", "base2new", "--base2new-shots", "2", "--seeds", "3", "--epochs", "2",
                         "--results", str(demo), "--only", "base2new/coop/shots2_seed3"] + where) == 0
    for f in ("fewshot.png", "REPORT_demo.md", "base2new/base2new.png"):
        (demo / f).unlink(missing_ok=True)  # each consumer below draws its own
    return demo


PLAIN_COOP = re.compile(r"(?:^|[\s|])CoOp\s+(?:\||\d)")  # a line or row about the group named "CoOp" itself
AVERAGED = re.compile(r"\bs[34]=|\b1, ?2, ?3\b|\bof [34] seeds|\b[34] seeds\b|\bseed [34]\b|\b[34] 个种子")
B2N_ROW = re.compile(r"^\| ((?:Co)?CoOp(?: \[[^]]*\])?) \| [\d.]+(?: ± [\d.]+)? \| [\d.]+(?: ± [\d.]+)? \| [\d.]+ \| (\d+) \|$", re.M)


def fewshot_shown_apart(text: str) -> None:
    """The few-shot runs: seeds 1-2 as "CoOp", seed 3 as "CoOp [epochs=3]", seed 4 left out and named."""
    assert "CoOp [epochs=3]" in text, "the --epochs 3 run is not shown apart under its own name"
    assert re.search(r"left out \(1 shots? seed 4\): made from other[^\n]*weights", text), "the other weights' run is not named"
    plain = [line for line in text.splitlines() if PLAIN_COOP.search(line)]
    assert plain, "nothing about CoOp's own runs"
    bad = [line for line in plain if AVERAGED.search(line)]
    assert not bad, f"CoOp averaged with runs that do not belong together: {bad}"


def base2new_shown_apart(text: str) -> None:
    """The base-to-new runs: each --epochs its own row (one seed each), CoOp seed 3 left out and named."""
    assert "CoOp [epochs=3]" in text and "CoCoOp [epochs=3]" in text, "base-to-new runs of other settings not shown apart"
    assert re.search(r"left out \(2 shots seed 3\): made from other[^\n]*weights", text), "the other weights' run is not named"
    rows = B2N_ROW.findall(text)
    assert {"CoOp", "CoCoOp"} <= {m for m, _ in rows}, "no base-to-new table rows"
    assert all(n == "1" for _, n in rows), f"a base-to-new row averages runs that do not belong together: {rows}"
    verdicts = [line for line in text.splitlines() if "CoCoOp" in line or "Zero-shot CLIP" in line]  # base-to-new's
    bad = [v for v in verdicts if re.search(r"\b[23] (?:个种子配对|对种子|个种子与同一次运行配对|个种子各与)", v)]
    assert not bad, f"paired over seeds of other settings: {bad}"


def _report(demo: Path, tmp: Path, capsys) -> str:
    """scripts/report.py on the mixed folder (one rendering for the report's two consumer modules)."""
    if demo not in REPORTS:
        out = tmp / "report.md"
        assert load_script("report").main(["--results", str(demo), "--out", str(out)]) == 0
        REPORTS[demo] = out.read_text(encoding="utf-8")
    return REPORTS[demo]


REPORTS: Dict[Path, str] = {}


def run_report(demo, tmp, capsys, caplog, monkeypatch):
    text = _report(demo, tmp, capsys)
    fewshot_shown_apart(text)
    if "基类到新类" in text and "CoCoOp" in text:  # the report holds the base-to-new section too
        base2new_shown_apart(text)


def run_report_base2new(demo, tmp, capsys, caplog, monkeypatch):
    text = _report(demo, tmp, capsys)
    assert "CoCoOp [epochs=3]" in text, "the report has no base-to-new section from the records"
    base2new_shown_apart(text)


def run_base2new_finish(demo, tmp, capsys, caplog, monkeypatch):
    from coop.report.base2new import finish_base2new, load_base2new

    from coop.report.base2new import title

    folder = tmp / "base2new"
    shutil.copytree(demo / "base2new", folder)
    finish_base2new(folder)
    recs = load_base2new(folder)  # what the figure draws: each setting its own group of one seed, seed 3 left out
    assert set(recs) >= {"CoCoOp", "CoCoOp [epochs=3]"} and {len(r) for r in recs.values()} == {1}, recs
    assert any("seed 3" in n for n in recs.notes) and (folder / "base2new.png").is_file()
    # the figure's title names the records' model
    assert "random:tiny" in title(recs) and "RN50" not in title(recs)


def figure_shown_apart(summary) -> None:
    """The figure's own numbers: CoOp's line over seeds 1-2 only, the --epochs 3 run (when drawn) a line of its own."""
    seeds = {m: sorted({s for k in d["shots"].values() for s in k["seeds"]}) for m, d in summary["methods"].items()}
    assert seeds.get("CoOp") == [1, 2], seeds
    assert seeds.get("CoOp [epochs=3]", [3]) == [3] and not any(4 in s for s in seeds.values()), seeds


def _drawn(monkeypatch) -> list:
    """Every summary the few-shot figure is drawn from, as the consumer calls it."""
    import coop.report.plot as plot

    drawn, real = [], plot.plot_fewshot
    monkeypatch.setattr(plot, "plot_fewshot", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    return drawn


def run_plot(demo, tmp, capsys, caplog, monkeypatch):
    drawn = _drawn(monkeypatch)
    with caplog.at_level(logging.INFO):
        assert load_script("plot").main(["--results", str(demo), "--out", str(tmp / "fig")]) == 0
    fewshot_shown_apart(caplog.text + capsys.readouterr().err)
    figure_shown_apart(drawn[0])


def run_make_figures(demo, tmp, capsys, caplog, monkeypatch):
    drawn = _drawn(monkeypatch)
    script = load_script("make_figures")
    monkeypatch.setattr(script, "ROOT", tmp)  # report/figures/demo_fewshot.png goes under tmp, not the project
    with caplog.at_level(logging.WARNING):
        assert script.main(["--out", str(tmp / "figs"), "--arch", "tiny", "--split-file", str(demo / "split.json"),
                            "--demo-results", str(demo), "--no-report"]) == 0
    assert (tmp / "report" / "figures" / "demo_fewshot.png").is_file()
    figure_shown_apart(drawn[0])
    assert re.search(r"left out \(1 shots? seed 4\)", caplog.text + capsys.readouterr().err), "the other weights' run is not named"


def run_summary(demo, tmp, capsys, caplog, monkeypatch):
    from coop.pipeline.sweep import summary_lines

    with caplog.at_level(logging.WARNING):
        lines = list(summary_lines(demo))
    fewshot_shown_apart("\n".join(lines) + caplog.text)


def run_run_all(demo, tmp, capsys, caplog, monkeypatch):
    from coop.runs import provenance

    monkeypatch.setattr(provenance, "code_sha256", lambda: CODE[0])  # the fixture's code: nothing to redo
    results, drawn = tmp / "r", _drawn(monkeypatch)
    shutil.copytree(demo.parent, results)
    few = ["--demo", "--shots", "1", "--baselines", "none", "--device", "cpu", "--results", str(results)]
    assert load_script("run_all").main(few + ["--seeds", "1 2", "--epochs", "2"]) == 0  # nothing to run: it draws
    fewshot_shown_apart((results / "demo" / "REPORT_demo.md").read_text(encoding="utf-8"))
    figure_shown_apart(drawn[0])


def run_timing(demo, tmp, capsys, caplog, monkeypatch):
    capsys.readouterr()
    assert load_script("sweep_timing").main(["--results", str(demo), "--out", str(tmp / "t.json")]) == 0
    text = capsys.readouterr().out
    assert "seed 4" not in text.split("note:")[0], "the other weights' run is timed among the sweep's stages"
    fewshot_shown_apart(text)


RUNNERS = {  # every consumer the walk finds: how it runs on the mixed folder
    "coop/report/document.py": "run_report",
    "coop/report/base2new_section.py": "run_report_base2new",
    "coop/report/base2new.py": "run_base2new_finish",
    "coop/pipeline/sweep.py": "run_summary",
    "scripts/plot.py": "run_plot",
    "scripts/make_figures.py": "run_make_figures",
    "scripts/run_all.py": "run_run_all",
    "coop/measure/sweep_timing.py": "run_timing",
}


def test_every_record_reader_goes_through_the_selection():
    found = record_readers([ROOT / "coop", ROOT / "scripts"])
    assert {"coop/runs/results.py", "coop/report/document.py", "scripts/plot.py"} <= set(found), "the walk sees the readers"
    assert not problems(found, RUNNERS), "\n".join(problems(found, RUNNERS))
    stale = [p for p in RUNNERS if (ROOT / p).exists() and p not in found]
    assert not stale, f"RUNNERS lists modules that no longer read records: {stale}"


def test_the_walk_catches_a_new_consumer_without_the_guard(tmp_path):
    """The check can fail: a throwaway module that globs and reads records itself, and one that uses the
    reader but has no run here, are both named."""
    pkg = tmp_path / "coop" / "report"
    pkg.mkdir(parents=True)
    (pkg / "leaderboard.py").write_text(
        "from ..runs.results import read_result\n\ndef best(folder):\n"
        "    return max((read_result(f) for f in folder.glob('coop/shots*_seed*.json')), key=lambda r: r['accuracy'])\n")
    (pkg / "histogram.py").write_text("def draw(folder):\n    from ..runs.results import load_results\n"
                                      "    return load_results(folder)\n")
    (pkg / "by_hand.py").write_text("import json\n\ndef accs(folder):\n"
                                    "    return [json.loads(f.read_text())['accuracy'] for f in folder.rglob('*.json')]\n")
    said = "\n".join(problems(record_readers([tmp_path / "coop"], base=tmp_path), RUNNERS))
    assert "coop/report/leaderboard.py reads records without the selection (glob('coop/shots*_seed*.json'), read_result)" in said
    assert "coop/report/by_hand.py reads records without the selection (glob('*.json'))" in said
    assert "coop/report/histogram.py is a consumer of records with no run" in said


@pytest.mark.parametrize("path", sorted(RUNNERS))
def test_each_consumer_shows_apart_or_leaves_out_and_names(path, mixed, tmp_path, capsys, caplog, monkeypatch):
    if not (ROOT / path).exists():
        pytest.skip(f"{path} is not in this tree")
    globals()[RUNNERS[path]](mixed, tmp_path, capsys, caplog, monkeypatch)
