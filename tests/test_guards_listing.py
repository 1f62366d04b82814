"""Issue 36, class 7: the parallel lines of ``run_all --print-commands``, as a user meets them.

Only path flags become absolute (a model *name* such as ViT-B/32 stays a name, a checkpoint file
becomes absolute); a relative $COOP_CACHE is made absolute in the lines (a line run from another folder
must not build a second cache); a run named twice by --only is listed, and made, once."""
from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import load_script

run_all = load_script("run_all")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """The demo's synthetic data and split (made by a listing of the demo, which runs nothing)."""
    out = tmp_path_factory.mktemp("listing")
    assert run_all.main(["--demo", "--results", str(out), "--print-commands"]) == 0
    return out / "demo"


def _listing(capsys, *argv) -> list:
    capsys.readouterr()
    assert run_all.main(list(argv) + ["--print-commands"]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    return captured.out.splitlines() + [captured.err.strip().splitlines()[-1]]  # the lines, then how to collect


def _flag(line: str, flag: str) -> str:
    words = shlex.split(line.split(": ", 1)[-1] if line.startswith(("1 run", "nothing")) else line)
    words = [w for w in words if "=" not in w or w.startswith("--")]  # the VAR=value prefix is not a word of it
    return words[words.index(flag) + 1]


def _plain(demo_data: Path, tmp_path: Path, *extra) -> list:
    return ["--data-root", str(demo_data / "data"), "--split-file", str(demo_data / "split.json"), "--results",
            str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "--shots", "1", "--seeds", "1",
            "--baselines", "none", "--device", "cpu", *extra]


@pytest.mark.parametrize("model", ["ViT-B/32", "RN101", "random:tiny"])
def test_a_model_name_stays_a_name_in_every_line(model, demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RN101").write_text("a file named like a model: load_clip still reads the name")
    lines = _listing(capsys, *_plain(demo_data, tmp_path, "--model", model, "--only", "coop/shots1_seed1"))
    assert len(lines) == 2 and all(_flag(line, "--model") == model for line in lines), lines


@pytest.mark.parametrize("path", ["weights/my.pt", "my_weights"])
def test_a_checkpoint_given_as_a_relative_file_becomes_absolute(path, demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / path).write_bytes(b"\0")  # never loaded: the listing only names it
    lines = _listing(capsys, *_plain(demo_data, tmp_path, "--model", path, "--only", "coop/shots1_seed1"))
    assert all(_flag(line, "--model") == str(tmp_path / path) for line in lines), lines


def test_a_relative_coop_cache_is_absolute_in_the_lines_and_a_line_run_elsewhere_uses_it(demo_data, tmp_path,
                                                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COOP_CACHE", "relcache")
    argv = [a for a in _plain(demo_data, tmp_path, "--model", "random:tiny") if a not in ("--cache-dir",
                                                                                          str(tmp_path / "cache"))]
    lines = _listing(capsys, *argv, "--only", "zeroshot")
    prefix = f"COOP_CACHE={tmp_path / 'relcache'} "
    assert lines[0].startswith(prefix) and prefix in lines[1], lines
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "COOP_CACHE": "relcache"}  # the same relative value, another folder
    p = subprocess.run(["sh", "-c", lines[0]], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "relcache").is_dir() and not (elsewhere / "relcache").exists()
    # given as a flag, the flag wins and no variable is set in the lines
    lines = _listing(capsys, *_plain(demo_data, tmp_path, "--model", "random:tiny", "--only", "zeroshot"))
    assert not any(line.startswith("COOP_CACHE=") or " COOP_CACHE=" in line for line in lines), lines


def test_a_run_named_twice_is_listed_once_and_made_once(demo_data, tmp_path, capsys):
    argv = _plain(demo_data, tmp_path, "--model", "random:tiny", "--epochs", "1", "--warmup-epochs", "0", "--views", "1",
                  "--only", "zeroshot", "--only", "coop/shots1_seed1", "--only", "coop/shots1_seed1", "--force")
    lines = _listing(capsys, *argv)
    assert [line.rsplit(" ", 1)[-1] for line in lines[:-1]] == ["zeroshot", "coop/shots1_seed1"], lines
    capsys.readouterr()
    assert run_all.main(argv) == 0
    err = capsys.readouterr().err
    assert "sweep: 2 runs" in err and "[2/2]" in err and "[3/" not in err, err
