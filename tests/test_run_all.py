"""The whole sweep (scripts/run_all.py, scripts/run_all.sh): resumable, refuses to mix settings,
and a run killed at any moment leaves nothing half-written that a second run could trip over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import coop.runs.experiment
from coop import BLOCK_MODS
from coop.runs.results import load_results, read_result
from coop.data.split import read_split
from conftest import ROOT, load_script

SHOTS, SEEDS = (1, 2, 4), (1, 2, 3)  # run_all's defaults


run_all = load_script("run_all")


def snapshot(folder: Path) -> dict:
    """Every file below ``folder`` with its bytes and modification time."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_loading(*a, **k):
    raise AssertionError("a finished sweep loaded the model/data again")


def test_second_call_skips_finished_runs_and_rewrites_nothing(tmp_path, monkeypatch, capsys):
    argv = ["--demo", "--results", str(tmp_path), "--shots", "1 2", "--seeds", "1", "--epochs", "3", "--views", "2",
            "--no-report", "--device", "cpu"]
    results = tmp_path / "demo"
    assert run_all.main(argv) == 0
    jsons = [results / "zeroshot.json", results / "coop" / "shots1_seed1.json", results / "coop" / "shots2_seed1.json"]
    assert all(read_result(p) for p in jsons) and (results / "fewshot.png").is_file()
    first = snapshot(results)

    with monkeypatch.context() as m:
        m.setattr(coop.runs.experiment, "Experiment", _no_loading)
        assert run_all.main(argv) == 0
    assert snapshot(results) == first  # not one byte, not one mtime (the figure included)

    time.sleep(0.01)
    assert run_all.main(argv + ["--force"]) == 0  # redone
    forced = snapshot(results)
    for p in jsons + [results / "fewshot.png"]:
        assert forced[p.relative_to(results)][1] != first[p.relative_to(results)][1]
    for p in jsons:  # redone from the same seed: the same numbers
        assert read_result(p)["accuracy"] == json_accuracy(first, results, p)
    capsys.readouterr()

    other = [a if a != "3" else "4" for a in argv]  # --epochs 4
    assert run_all.main(other) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "epochs: 3 there, 4 now" in err and "--force" in err
    assert "Traceback" not in err
    assert snapshot(results) == forced
    assert run_all.main(other + ["--force"]) == 0
    assert all(read_result(p)["config"]["epochs"] == 4 for p in jsons[1:])


def json_accuracy(snap: dict, results: Path, path: Path) -> float:
    import json

    return json.loads(snap[path.relative_to(results)][0])["accuracy"]


def _env():
    return {**os.environ, "PYTHON": sys.executable,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_killed_sweep_leaves_no_half_written_result_and_resumes(tmp_path):
    out = tmp_path / "out"
    argv = ["--demo", "--results", str(out), "--epochs", "6", "--views", "2", "--no-report", "--device", "cpu",
            "--baselines", "lp tip"]  # the three baselines this test lists; the others are test_baselines.py's
    results = out / "demo"
    log = open(tmp_path / "run_all.log", "wb")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run_all.sh"), *argv], cwd=tmp_path, env=_env(),
                            stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not list((results / "coop").glob("*.json")):
            assert proc.poll() is None, (tmp_path / "run_all.log").read_text()
            assert time.time() < deadline, "no CoOp result appeared"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up: as a power cut or an OOM kill
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL

    done = sorted((results / "coop").glob("*.json"))
    assert 1 <= len(done) < len(SHOTS) * len(SEEDS), "the sweep was not killed mid-way"
    # Whatever was written is complete; only the split file is not a result.
    for p in results.rglob("*.json"):
        if p.name == "split.json":
            read_split(p)
        elif "data" not in p.relative_to(results).parts:
            assert read_result(p) is not None, p
    left = sorted(p.name for p in out.rglob(".*.tmp"))  # a kill mid-write may leave a temp file, never a result

    # Stale temp files as a kill during a write leaves them: they must be ignored, never read as results.
    stale = [results / "coop" / ".shots4_seed3.json.k1ll3d.tmp", results / ".zeroshot.json.k1ll3d.tmp"]
    for p in stale:
        p.write_text('{"schema": 1, "kind": "coop", "accuracy": 99.0, "sho')
    cache_tmp = next((results / "cache").iterdir()) / ".test-0123456789ab.pt.k1ll3d.tmp"
    cache_tmp.write_bytes(b"half a tensor")
    before = {p: p.stat().st_mtime_ns for p in done}

    assert run_all.main(argv) == 0
    expected = [results / c / f"shots{k}_seed{s}.json" for c in ("coop", *(f"coop_{m}" for m in BLOCK_MODS))
                for k in SHOTS for s in SEEDS]
    expected += [results / "coop_longer" / f"shots{SHOTS[0]}_seed{s}.json" for s in SEEDS]  # section 8's check
    expected += [results / "zeroshot.json"]  # coop_adapter, coop_lora: the bonus runs by default
    expected += [results / "baselines" / m / f"shots{k}_seed{s}.json" for m in ("linear_probe", "tip_adapter",
                                                                              "tip_adapter_f") for k in SHOTS for s in SEEDS]
    assert all(read_result(p) is not None for p in expected)
    assert sorted(p for p in results.rglob("*.json") if "data" not in p.relative_to(results).parts) == \
        sorted(expected + [results / "split.json", results / ".drawn.json", results / "zeroshot_prompts" / "ensemble.json"])
    assert (results / "fewshot.png").is_file()
    assert {p: p.stat().st_mtime_ns for p in done} == before  # finished runs were not redone
    loaded = load_results(results)
    assert len(loaded["coop"]["CoOp"]) == len(SHOTS) * len(SEEDS) and loaded["zeroshot"] is not None
    # The second run removed what the killed writer left (its pid is in the name and it no longer runs) and
    # left no temp file of its own; names that carry no writer's pid are not touched.
    after = sorted(p.name for p in out.rglob(".*.tmp"))
    assert after == sorted([p.name for p in stale] + [cache_tmp.name]) and not set(left) & set(after)


def test_ctrl_c_keeps_finished_results_and_says_so(tmp_path):
    argv = ["--demo", "--results", str(tmp_path), "--shots", "1 2", "--epochs", "10", "--views", "2", "--no-report",
            "--device", "cpu"]
    results = tmp_path / "demo"
    err = open(tmp_path / "stderr.log", "w+b")
    # SIGINT as in a foreground terminal, even when the suite itself runs as a background job (which ignores it)
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_all.py"), *argv], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=err,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 180
        while not list((results / "coop").glob("*.json")):
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "stderr.log").read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    text = (tmp_path / "stderr.log").read_text()
    assert "interrupted: finished results are kept" in text and "Traceback" not in text
    done = list((results / "coop").glob("*.json"))
    assert 1 <= len(done) < 6 and all(read_result(p) is not None for p in done)
    assert not list(results.rglob(".*.tmp"))  # an interrupted write cleans up after itself


def test_run_all_sh_passes_arguments_and_exit_code(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run_all.sh"), "--demo", "--results", str(tmp_path),
                           "--seeds", "1 x"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --seeds '1 x' does not parse") and "Traceback" not in proc.stderr
    assert not (tmp_path / "demo").exists()


def test_the_sweep_checks_under_training_at_its_smallest_shot_count_unless_told_not_to(tmp_path):
    """Section 8's check (issue 38): plain CoOp at the smallest shot count again with twice the epochs, one run
    per seed, in coop_longer/ under its own method name; --no-longer leaves it out; base-to-new refuses it."""
    from coop.methods.train_config import TrainConfig

    run_all = load_script("run_all")
    base = ["--results", str(tmp_path), "--seeds", "1 2", "--baselines", "none", "--block-mod", "none"]
    for shots, epochs, want in (("1 2 4", None, 100), ("2 4", None, 200), ("1 2", "7", 14)):
        args = run_all.parse_args(base + ["--shots", shots] + (["--epochs", epochs] if epochs else []))
        longer = [r for r in run_all.plan_of(args).runs if isinstance(r, TrainConfig) and r.variant]
        assert [(r.shots, r.seed, r.epochs) for r in longer] == [(int(shots.split()[0]), s, want) for s in (1, 2)]
        assert {r.result_path().parent.name for r in longer} == {"coop_longer"}
        assert {r.method() for r in longer} == {f"CoOp [epochs={want}]"}
    args = run_all.parse_args(base + ["--no-longer"])
    assert not [r for r in run_all.plan_of(args).runs if isinstance(r, TrainConfig) and r.variant]
    assert run_all.main(["--demo", "--results", str(tmp_path / "b"), "--protocol", "base2new", "--no-longer",
                         "--print-commands"]) == 2
