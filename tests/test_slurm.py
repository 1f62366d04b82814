"""docs/parallel.md's SLURM section, run as the doc writes it on a real SLURM (issue 40).

A module fixture starts a private single-node cluster: Debian's ``slurm-wlm`` (slurmctld and slurmd
in the foreground, as this process's children) and ``munge`` (its own key and socket, unless a system
munged answers), with a ``slurm.conf`` of its own in a temporary folder (``SLURM_CONF`` points at it;
ports chosen free on 127.0.0.1; the machine's CPUs; ``proctrack/linuxproc``, ``task/none``,
``select/cons_tres``). Every daemon it starts is stopped by its pid however the tests end (the
fixture's finalizer; each also dies with this process, through PR_SET_PDEATHSIG).

The tests read the section's code blocks from the doc -- the settings (``export SWEEP=... TASK=...``),
the submission (the listing, the array, the collect job depending on it) and the resubmission after a
failed task -- and run them with bash as written, with the settings' variables set to the demo's values,
from a folder that stands for the project's (``scripts`` is the project's own; ``runs.txt`` and SLURM's
logs land there). They check what tests/test_parallel.py checks for xargs: the records equal a
sequential sweep's (run ids, accuracies, per-image predictions), each run is written once, nothing is
pending afterwards, and the collect job drew the figure and the report. The few-shot sweep also loses
its zero-shot task to ``scancel`` while it encodes the test split, and is finished by submitting again.

Skipped, with the reason, where the programs are missing or the tests do not run as root (slurmd must);
in CI (``CI=true``), where .ci/run installs them, that is an error instead.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from spread import (BASE2NEW, FEWSHOT, assert_same_records, checkout, doc_blocks, drew, exported, nothing_pending,
                    records, sequential, written)

PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
SECTION = "On a SLURM cluster"
TASK = "--cpus-per-task=1"  # what each run gets here: one of the machine's CPUs (no GPU to give)
JOBS_TIMEOUT = 600.0  # seconds; only a failure waits that long (a loaded machine takes minutes)


def _why_not() -> str:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return (f"SLURM and munge are not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge, "
                f"as .ci/run does")
    if os.geteuid() != 0:
        return "slurmd runs jobs as their users: the private cluster needs root"
    return ""


WHY_NOT = _why_not()
if WHY_NOT and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must run the SLURM tests, not skip them: {WHY_NOT}")
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "SLURM present")


# --- the private cluster -----------------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the child before exec: end when this test process ends, even killed (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


class Cluster:
    """A single-node SLURM in ``folder``; ``env`` is what its commands (and the jobs) need."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.procs: Dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_"))}
        self.env["SLURM_CONF"] = str(folder / "slurm.conf")
        # `python` in the doc's commands (and in the jobs, which inherit this environment) is this venv's
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.start_seconds = 0.0

    def _spawn(self, name: str, argv: List[str]) -> subprocess.Popen:
        out = open(self.dir / f"{name}.out", "wb")
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                 cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            out.close()
        self.procs[name] = p
        return p

    def _wait(self, what: str, ready, timeout: float = 120.0) -> None:
        t_end = time.monotonic() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > t_end:
                raise RuntimeError(f"the private SLURM did not start ({what}; ended: {dead}):\n{self.logs()}")
            time.sleep(0.05)

    def _munge_socket(self) -> Optional[str]:
        """None when a system munged answers (slurm's default socket then), else this cluster's own."""
        if subprocess.run(["munge", "-n"], capture_output=True, env=self.env, timeout=10).returncode == 0:
            return None
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = str(self.dir / "munge.sock")
        self._spawn("munged", ["munged", "--foreground", f"--socket={sock}", f"--key-file={key}",
                               f"--pid-file={self.dir / 'munged.pid'}", f"--log-file={self.dir / 'munged.log'}",
                               f"--seed-file={self.dir / 'munged.seed'}"])
        self._wait("munged", lambda: subprocess.run(["munge", "-n", "-S", sock], capture_output=True,
                                                     timeout=10).returncode == 0)
        return sock

    def start(self) -> None:
        t0 = time.monotonic()
        sock = self._munge_socket()
        d = self.dir
        for sub in ("state", "spool"):
            (d / sub).mkdir()
        (d / "plugstack.conf").write_text("")
        conf = f"""\
ClusterName=cooptest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
{f"AuthInfo=socket={sock}" if sock else ""}
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "slurmctld.log"}
SlurmdLogFile={d / "slurmd.log"}
PlugStackConfig={d / "plugstack.conf"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerParameters=sched_interval=1
KillWait=5
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={_cpus()} State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        (d / "slurm.conf").write_text(conf)
        self._spawn("slurmctld", ["slurmctld", "-D"])
        self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost"])
        self._wait("the node idle", lambda: self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip() == "idle")
        # ready when a job has run (the controller schedules its first job a few seconds after it starts)
        self.run("sbatch", "--quiet", "-o", "/dev/null", "--wrap", "true", cwd=d)
        self._wait("a first job", lambda: not self.jobs())
        self.start_seconds = time.monotonic() - t0

    def run(self, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run(list(argv), capture_output=True, text=True, env=self.env, timeout=60, **kw)
        if check:
            assert r.returncode == 0, f"{shlex.join(argv)}: {r.stderr}"
        return r

    def jobs(self) -> List[str]:
        """The jobs not finished yet: 'ID STATE REASON' each (array tasks one by one)."""
        return self.run("squeue", "-h", "-r", "-o", "%i %T %r").stdout.split("\n")[:-1]

    def wait_jobs_done(self, timeout: float = JOBS_TIMEOUT) -> None:
        t_end = time.monotonic() + timeout
        while self.jobs():
            assert time.monotonic() < t_end, f"jobs still queued after {timeout:.0f} s: {self.jobs()}\n{self.logs()}"
            time.sleep(0.2)

    def logs(self) -> str:
        parts = []
        for f in ("munged.out", "slurmctld.out", "slurmd.out", "slurmctld.log", "slurmd.log"):
            p = self.dir / f
            if p.is_file():
                parts.append(f"--- {f} (end)\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what still runs, wait for its processes to end, then end each daemon by its pid."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            with contextlib.suppress(Exception):
                ids = [line.split()[0] for line in self.jobs()]
                if ids:
                    self.run("scancel", *ids, check=False)
                    t_end = time.monotonic() + 20  # KillWait=5: SIGKILL after 5 s
                    while self.jobs() and time.monotonic() < t_end:
                        time.sleep(0.2)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)  # its own session: the daemon and anything it forked
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster():
    # not below pytest's tmp folder: munged wants every folder above its socket open to all (pytest's is 0700)
    folder = Path(tempfile.mkdtemp(prefix="coop-slurm-"))
    folder.chmod(0o755)
    c = Cluster(folder)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- running the doc's blocks ----------------------------------------------------------------------

def slurm_blocks() -> tuple:
    """(submit, resubmit): the section's blocks after its settings, which set exactly what the tests set."""
    blocks = doc_blocks(SECTION)
    assert len(blocks) == 3, f"docs/parallel.md's '{SECTION}' section: expected settings, submission, resubmission"
    settings, submit, resubmit = blocks
    assert set(exported(settings)) == {"SWEEP", "TASK"}, settings
    return submit, resubmit


def submit(cluster: Cluster, block: str, work: Path, env: Dict[str, str]) -> tuple:
    """Run the doc's submission block as written; (array id, collect id) from its last line."""
    r = subprocess.run(["bash", "-c", block], cwd=work, env={**cluster.env, **env}, capture_output=True, text=True,
                       timeout=JOBS_TIMEOUT)
    m = re.fullmatch(r"array (\d+), then collect (\d+)", r.stdout.strip())
    assert r.returncode == 0 and m and "sbatch: error" not in r.stderr, f"the doc's block:\n{block}\n{r.stdout}\n{r.stderr}"
    return m.group(1), m.group(2)


def sweep_env(argv: List[str]) -> Dict[str, str]:
    assert not any(" " in a for a in argv), argv  # $SWEEP is split at spaces
    return {"SWEEP": shlex.join(argv), "TASK": TASK}


def states(cluster: Cluster, job: str) -> List[str]:
    """JobState of a job, or of each task of an array."""
    return re.findall(r"JobState=(\S+)", cluster.run("scontrol", "-o", "show", "job", job).stdout)


def logs(work: Path) -> Dict[str, str]:
    return {f.name: f.read_text(errors="replace") for f in sorted(work.glob("slurm-*.out"))}


def check_finished(cluster: Cluster, work: Path, results: Path, argv: List[str], expected: dict, collect: str,
                   drawn: List[str], capsys) -> None:
    """What test_parallel checks for xargs, and the collect job's figure and report."""
    everything = logs(work)
    assert_same_records(records(results), expected)
    wrote = [w for text in everything.values() for w in written(text)]
    assert sorted(wrote) == sorted(str(results / name) for name in expected), everything  # each run written once
    out = everything[f"slurm-{collect}.out"]
    assert states(cluster, collect) == ["COMPLETED"] and re.search(r"\b0 to do\b", out), out
    for name in drawn:
        assert drew(out, results / name), (name, out)
    assert nothing_pending(argv, capsys)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _waiting_on(lock: Path, results: Path, run: str) -> Optional[int]:
    """The pid of the process making ``run`` (``--only RUN``) in ``results`` that has ``lock`` open."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if not any(a == str(results) for a in argv) or ["--only", run] not in [argv[i:i + 2] for i in range(len(argv))]:
                continue
            if any(os.readlink(fd) == str(lock) for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


@contextlib.contextmanager
def holding(lock: Path):
    """Hold the flock of ``lock`` (as a process merging into the feature cache does)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def test_the_fewshot_sweep_on_slurm_as_the_doc_writes_it_with_a_task_cancelled_and_resubmitted(
        cluster, tmp_path, tmp_path_factory, capsys):
    submit_block, resubmit_block = slurm_blocks()
    seq = sequential(tmp_path_factory, FEWSHOT)
    expected = records(seq / "demo")
    shared = tmp_path / "shared"
    results, cache = shared / "results" / "demo", shared / "cache"
    argv = FEWSHOT + ["--results", str(shared / "results"), "--cache-dir", str(cache)]
    work = checkout(tmp_path / "project")
    env = sweep_env(argv)
    # the feature cache's lock, at the place the sequential sweep's cache has it
    locks = sorted((seq / "demo" / "cache").rglob(".lock"))
    assert len(locks) == 1, locks
    lock = cache / locks[0].relative_to(seq / "demo" / "cache")

    # 1. submitted as the doc says; the zero-shot task (line 1) is cancelled while it encodes the test split:
    # the test holds the cache's lock, so the task is caught with its features encoded, not yet merged
    with holding(lock):
        array, collect = submit(cluster, submit_block, work, env)
        lines = (work / "runs.txt").read_text().splitlines()
        assert len(lines) == len(expected) and lines[0].endswith("--only zeroshot"), lines
        t_end = time.monotonic() + JOBS_TIMEOUT
        while (pid := _waiting_on(lock, results.parent, "zeroshot")) is None:
            assert time.monotonic() < t_end, f"the zero-shot task never reached the cache: {cluster.jobs()}\n{logs(work)}"
            time.sleep(0.1)
        cluster.run("scancel", f"{array}_1")
        while _alive(pid):
            assert time.monotonic() < t_end, f"scancel did not end pid {pid}"
            time.sleep(0.05)
        # nothing half-written: no record, no temporary file of the killed process
        assert not (results / "zeroshot.json").exists()
        assert not [p for p in shared.rglob(f"*.{pid}@*") if p.is_file()]
        r = subprocess.run(["bash", "-c", resubmit_block], cwd=work, env={**cluster.env, **env, "array": array,
                           "collect": collect}, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    cluster.wait_jobs_done()
    assert states(cluster, f"{array}_1") == ["CANCELLED"] and states(cluster, collect) == ["CANCELLED"]
    assert sorted(states(cluster, array)) == ["CANCELLED"] + ["COMPLETED"] * (len(lines) - 1), logs(work)
    assert_same_records(records(results), {k: v for k, v in expected.items() if k != "zeroshot.json"})
    assert not [p for p in shared.rglob("*.tmp")]

    # 2. submitted again: the listing holds just the missing run; the collect job finds nothing to do and draws
    array2, collect2 = submit(cluster, submit_block, work, env)
    relisted = (work / "runs.txt").read_text().splitlines()
    assert relisted == [lines[0]], relisted
    cluster.wait_jobs_done()
    assert states(cluster, array2) == ["COMPLETED"]
    check_finished(cluster, work, results, argv, expected, collect2, ["fewshot.png", "REPORT_demo.md"], capsys)


def test_the_base_to_new_protocol_on_slurm_as_the_doc_writes_it(cluster, tmp_path, tmp_path_factory, capsys):
    submit_block, _ = slurm_blocks()
    shared = tmp_path / "shared"
    argv = BASE2NEW + ["--results", str(shared / "results"), "--cache-dir", str(shared / "cache")]
    work = checkout(tmp_path / "project")
    array, collect = submit(cluster, submit_block, work, sweep_env(argv))
    expected = records(sequential(tmp_path_factory, BASE2NEW) / "demo")  # while the jobs run
    lines = (work / "runs.txt").read_text().splitlines()
    assert len(lines) == len(expected) and lines[0].endswith("--only base2new/zeroshot"), lines
    cluster.wait_jobs_done()
    assert states(cluster, array) == ["COMPLETED"] * len(lines), logs(work)
    check_finished(cluster, work, shared / "results" / "demo", argv, expected, collect,
                   ["base2new/base2new.png", "REPORT_demo.md"], capsys)
