"""The sweep spread over processes with tools users already have (issue 28): ``run_all --print-commands``
lists one command per pending run; ``xargs -P 2`` runs them two at a time on one results folder and
one feature cache; ``run_all`` then collects them. The records equal a sequential sweep's."""
from __future__ import annotations

import shlex
import subprocess
import sys

from conftest import ROOT
from spread import assert_same_records, records, run_all, written

ARGV = ["--demo", "--shots", "1 2", "--seeds", "1", "--epochs", "2", "--baselines", "lp", "--no-report",
        "--device", "cpu"]


def test_the_demos_commands_under_xargs_equal_a_sequential_sweep(tmp_path, capsys):
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert run_all.main(ARGV + ["--results", str(seq)]) == 0
    capsys.readouterr()
    assert run_all.main(ARGV + ["--results", str(par), "--print-commands"]) == 0  # the lines name scripts/run_all.py
    listing = capsys.readouterr().out
    lines = listing.strip().splitlines()
    expected = records(seq / "demo")
    assert len(lines) == len(expected)  # one command per run, nothing else on stdout
    keys = [shlex.split(line)[-1] for line in lines]
    assert keys[0] == "zeroshot" and sorted(keys) == sorted(k[: -len(".json")] for k in expected)
    # two processes at a time, sharing the results folder and the feature cache (--demo: RESULTS/demo/cache)
    assert all(shlex.split(line)[:2] == [sys.executable, str(ROOT / "scripts" / "run_all.py")] for line in lines)
    runs = subprocess.run(["xargs", "-d", "\n", "-P", "2", "-I{}", "sh", "-c", "{}"], input=listing,
                          capture_output=True, text=True, timeout=600, cwd="/")
    assert runs.returncode == 0, runs.stderr[-3000:]
    wrote = written(runs.stderr)
    assert len(wrote) == len(set(wrote)) == len(expected)  # no run written twice, none lost
    assert run_all.main(ARGV + ["--results", str(par)]) == 0  # collects them
    assert "0 to do" in capsys.readouterr().err
    assert_same_records(records(par / "demo"), expected)  # same run ids, accuracies, per-image predictions
    assert run_all.main(ARGV + ["--results", str(par), "--print-commands"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "nothing to do" in err  # nothing pending


def test_the_listing_takes_only_whole_flags_names_only_and_says_how_to_collect(tmp_path, capsys):
    """A shortened flag (--res, --print) would be copied into every line unseen: refused. --only narrows
    the listing; a corrupt zero-shot record stops only the lines that read it, and its error names the one
    run to redo; the collect command on stderr never carries --force (it would redo every run)."""
    argv = ARGV + ["--results", str(tmp_path)]
    assert run_all.main(ARGV + ["--res", str(tmp_path), "--print-commands"]) == 2
    assert "unrecognized arguments: --res" in capsys.readouterr().err
    assert run_all.main(argv + ["--print"]) == 2 and not (tmp_path / "demo").exists()
    capsys.readouterr()
    assert run_all.main(argv + ["--print-commands", "--force", "--only", "coop/shots2_seed1"]) == 0
    out, err = capsys.readouterr()
    assert [shlex.split(line)[-2:] for line in out.splitlines()] == [["--only", "coop/shots2_seed1"]]
    assert "--force" in out and "1 run to do" in err
    collect = shlex.split(err.split("collect them: ")[1].splitlines()[0])
    assert collect[1].endswith("run_all.py") and "--force" not in collect and "--only" not in collect
    assert run_all.main(argv + ["--print-commands", "--only", "coop/shots9_seed1"]) == 2
    assert "is not a run of this sweep" in capsys.readouterr().err
    # a record that cannot be read: the whole listing names the one run to redo; a line of another run goes on
    (tmp_path / "demo").mkdir(exist_ok=True)
    (tmp_path / "demo" / "zeroshot.json").write_text('{"schema": 1, "kind": "zeroshot", "accu')
    assert run_all.main(argv + ["--print-commands"]) == 2
    assert "--only zeroshot --force to redo just this run" in capsys.readouterr().err
    assert run_all.main(argv + ["--print-commands", "--only", "coop/shots1_seed1"]) == 0
    assert capsys.readouterr()[0].rstrip().endswith("--only coop/shots1_seed1")
