"""Issue 36, class 6: waits that never end. A lock held by a stopped process (Ctrl-Z, SIGSTOP) made
zeroshot.py and train_coop.py wait silently forever on the feature cache. Every lock now waits through
one helper (coop.utils.flocks.wait_for_lock), which says after a few seconds who holds the lock, that
it is stopped and how to resume it, and says it again until the lock is free."""
from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "coop"


def _hold(lock: Path, then: str = "os.kill(os.getpid(), signal.SIGSTOP)") -> subprocess.Popen:
    """A process that takes the lock at ``lock``, says so, then ``then`` (by default: stops itself, as Ctrl-Z)."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, signal, sys, time
        os.makedirs({str(lock.parent)!r}, exist_ok=True)
        f = open({str(lock)!r}, "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        print("locked", flush=True)
        {then}
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _end(holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGCONT)
    holder.kill()
    holder.wait()


def test_a_run_waiting_for_the_feature_cache_held_by_a_stopped_process_says_who_and_how(
        synthetic_root, synthetic_split, tmp_path):
    from coop.features.cache import FeatureCache
    from coop.model.clip_loader import load_clip

    cache_dir = tmp_path / "cache"
    folder = FeatureCache(cache_dir, load_clip("random:tiny", device="cpu")[0].clip_info.sha256).dir  # fp32 on the CPU: the run's folder
    holder = _hold(folder / ".lock")
    lines: list = []
    run = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "zeroshot.py"), "--model", "random:tiny",
                            "--data-root", str(synthetic_root), "--split-file", synthetic_split.path,
                            "--results", str(tmp_path / "results"), "--cache-dir", str(cache_dir),
                            "--device", "cpu", "--workers", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: lines.extend(run.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not any(f"pid {holder.pid}" in line for line in lines):
            assert run.poll() is None, "".join(lines)
            time.sleep(0.2)
        said = [line for line in lines if f"pid {holder.pid}" in line]
        assert said, "".join(lines)
        assert "feature cache" in said[0] and "stopped" in said[0] and f"kill -CONT {holder.pid}" in said[0]
        assert run.poll() is None  # still waiting: nothing of the cache is written beside the holder
    finally:
        _end(holder)
    assert run.wait(timeout=120) == 0, "".join(lines)
    reader.join(timeout=10)
    assert (tmp_path / "results" / "zeroshot.json").is_file()


def test_the_wait_is_said_again_until_the_lock_is_free(tmp_path, monkeypatch, caplog):
    from coop.utils import flocks

    monkeypatch.setattr(flocks, "FIRST_NOTICE_S", 0.3)
    monkeypatch.setattr(flocks, "REPEAT_NOTICE_S", 0.4)
    lock = tmp_path / "x" / ".lock"
    holder = _hold(lock, then="time.sleep(1.8); sys.exit(0)")
    try:
        with open(lock, "a") as f, caplog.at_level(logging.WARNING):
            flocks.wait_for_lock(f, lock, "the test's lock")
    finally:
        _end(holder)
    waits = [r.getMessage() for r in caplog.records if "waiting for the lock of the test's lock" in r.getMessage()]
    assert len(waits) >= 3 and all(f"pid {holder.pid}" in w for w in waits), waits
    assert "got the lock of the test's lock" in caplog.records[-1].getMessage()


def test_a_refused_lock_names_a_stopped_holder_and_how_to_resume_it(tmp_path):
    from coop.runs.locks import folder_lock
    from coop.utils.errors import UserError

    holder = _hold(tmp_path / ".lock")
    try:
        with pytest.raises(UserError) as e:
            with folder_lock(tmp_path, exclusive=True):
                pass
    finally:
        _end(holder)
    assert f"pid {holder.pid}" in str(e.value) and f"kill -CONT {holder.pid}" in str(e.value)


def test_no_lock_in_the_package_waits_but_through_the_one_helper():
    """Every blocking flock in coop/ goes through coop.utils.flocks.wait_for_lock (so a new lock is never
    a silent wait); other flock calls must not block (LOCK_NB: they refuse at once and name the holder)."""
    blocking = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "utils" / "flocks.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bflock\(", line) and "LOCK_UN" not in line and "LOCK_NB" not in line:
                blocking.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not blocking, blocking
