"""The whole experiment: zero-shot, CoOp at every (shots, seed), the figure and the report.

Resumable: a run whose complete result file exists (with the same settings) is skipped, so an
interrupted sweep continues where it stopped; results are written atomically, so an interrupted
run leaves nothing half-written. When every run is already done, nothing is loaded or rewritten.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from ..utils.atomic import remove_stale_temp_files
from ..model.clip_loader import weights_fingerprint
from ..utils.paths import RESULTS
from ..runs.locks import folder_lock, run_lock
from ..runs.preflight import check_run
from ..utils.progress import run_log
from ..runs.overwrite import set_aside
from ..runs.protocol import RunConfig
from ..runs.results import any_random, existing, load_results, shot_stats, write_result
from ..utils.errors import UserError, raise_if_interrupted
from ..data.split import read_split

log = logging.getLogger(__name__)

DEMO_DIR = RESULTS / "demo"
# The demo checks every stage in seconds: CoOp's fresh-crop recipe with 10 epochs at every shot count (CoOp:
# 50/100/100; --epochs overrides), each baseline capped as its coop.methods.table entry's ``demo`` says.
DEMO_EPOCHS = 10


Config = RunConfig  # any kind of run (coop.runs.protocol)


@dataclass
class SweepPlan:
    zeroshot: RunConfig  # the run every other one is compared with (zero-shot CLIP)
    runs: List[RunConfig] = field(default_factory=list)  # CoOp, then the baselines
    force: bool = False


def prepare_demo(results: Path) -> tuple[Path, Path]:
    """Synthetic data and its split under ``results`` (made once); returns (data_root, split_file).

    Made under a lock (two demos at once wait for each other) and renamed into place complete.
    """
    import shutil

    from ..data.dataset import load_dataset
    from ..utils.flocks import wait_for_lock
    from ..data.split import make_split, write_split
    from ..data.synthetic import make_synthetic_data

    data_root, split_file = results / "data", results / "split.json"
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".demo.lock", "a") as lock:  # "a": no truncation, the mtime stays
        wait_for_lock(lock, results / ".demo.lock", f"the demo's synthetic data in {results}")
        for leftover in data_root.glob(".synthetic.*"):  # a killed demo's half-made tree
            shutil.rmtree(leftover, ignore_errors=True)
        if not (data_root / "101_ObjectCategories").is_dir():
            split_file.unlink(missing_ok=True)  # it belonged to another tree
            make_synthetic_data(data_root)
        if not split_file.is_file():
            write_split(make_split(load_dataset("caltech101").find_image_root(data_root)), split_file)
    return data_root, split_file


def result_path(cfg: Config) -> Path:
    """Where a run of ``cfg`` writes its result."""
    return cfg.result_path()


def expected_inputs(cfg: Config, model_sha256: Optional[str]) -> Optional[dict]:
    """The inputs a run of ``cfg`` would be made from now, without loading the model; None if they
    cannot be read (the run itself then reports what is wrong)."""
    from ..runs.provenance import inputs_record

    split = read_split(cfg.split_file)  # a missing split is its own clear error, not "other settings"
    try:
        return {**inputs_record(split, model_sha256, cfg.data().find_image_root(cfg.data_root), cfg.images(split)),
                **cfg.extra_inputs()}
    except (OSError, UserError):
        return None


def already_done(cfg: Config, path: Optional[Path] = None, force: bool = False,
                 model_sha256: Optional[str] = None, rerun_changed: bool = False) -> bool:
    """True if ``path`` (default: :func:`result_path`) holds a finished result of ``cfg``'s settings
    and of the same inputs (split, weights, image contents, code). See :func:`coop.runs.results.existing`."""
    path = path or result_path(cfg)
    if force:
        set_aside(path)  # a file we cannot use is redone, but kept under another name with its context
        return False
    if not Path(path).exists():
        return False
    model_sha = model_sha256 if model_sha256 is not None else weights_fingerprint(cfg.model)
    return existing(path, cfg.identity(), expected_inputs(cfg, model_sha), force, rerun_changed) is not None


@contextlib.contextmanager
def single_run(cfg: Config, path: Optional[Path] = None):
    """The locks of one run made on its own (``train_coop.py``, ``zeroshot.py``): the results folder
    shared with other single runs, not with a sweep; the run's own result exclusively."""
    with folder_lock(cfg.results, exclusive=False), run_lock(cfg.results, path or result_path(cfg)):
        yield


def run_key(cfg: Config) -> str:
    """A run's name in its results folder (its result file without ``.json``): what ``--only`` takes."""
    return Path(result_path(cfg)).relative_to(Path(cfg.results)).with_suffix("").as_posix()


def pending(plan: SweepPlan, model_sha: Optional[str] = None, with_zeroshot: bool = True) -> List[Config]:
    """The runs of ``plan`` that are not done yet (all of them with ``force``: their records are set
    aside later, under each run's lock), in the sweep's order; only ``plan``'s runs are read."""
    runs = [plan.zeroshot, *plan.runs] if with_zeroshot else list(plan.runs)
    for cfg in runs:
        check_run(cfg)
    if plan.force:
        return runs
    model_sha = model_sha or weights_fingerprint(plan.zeroshot.model)  # hashed once: a checkpoint is 244 MB
    todo = []
    for cfg in runs:
        try:
            if not already_done(cfg, model_sha256=model_sha, rerun_changed=True):
                todo.append(cfg)
        except UserError as e:  # a record it cannot use: redo that run alone, not the whole sweep
            raise UserError(f"{e} (in run_all: add --only {run_key(cfg)} --force to redo just this run)") from None
    return todo


def narrowed(plan: SweepPlan, only: Sequence[str]) -> tuple[SweepPlan, bool]:
    """``plan`` cut to the runs named in ``only`` (run keys, :func:`run_key`), and whether zero-shot is
    one of them; an unknown name is a user error that lists the sweep's runs."""
    keys = {run_key(c): c for c in [plan.zeroshot, *plan.runs]}
    unknown = [k for k in only if k not in keys]
    if unknown:
        raise UserError(f"--only {unknown[0]} is not a run of this sweep; its runs are: {', '.join(keys)}")
    named = [keys[k] for k in dict.fromkeys(only)]  # --only X --only X: one run, made once
    return SweepPlan(plan.zeroshot, [c for c in named if c is not plan.zeroshot], plan.force), plan.zeroshot in named


def run_sweep(plan: SweepPlan, after: Optional[Callable[[Path, bool], None]] = None,
              only: Optional[Sequence[str]] = None) -> int:
    """Run what is not done yet; returns the number of runs computed. ``after(results, changed)``
    is called at the end (the figure and the report).

    The whole sweep holds the results folder's lock exclusively (:mod:`coop.runs.locks`): a second
    sweep on the same folder is refused. With ``only`` (run keys, :func:`run_key`), just those runs
    are made, each under its own lock and beside other such processes (``run_all --only``, the lines
    of ``run_all --print-commands``); nothing is drawn then.
    """
    results = Path(plan.zeroshot.results)
    if only is not None:
        plan, with_zeroshot = narrowed(plan, only)
        with folder_lock(results, exclusive=False):
            return _run(plan, results, with_zeroshot=with_zeroshot, each_locked=True)
    with folder_lock(results, exclusive=True):
        n = _run(plan, results, with_zeroshot=True, each_locked=False)
        if after is not None:
            after(results, bool(n))
    return n


def _run(plan: SweepPlan, results: Path, with_zeroshot: bool, each_locked: bool) -> int:
    from ..runs.experiment import Experiment

    z = plan.zeroshot
    if remove_stale_temp_files(results):
        log.info("removed temporary files that an interrupted run left in %s", results)
    model_sha = weights_fingerprint(z.model)
    todo = pending(plan, model_sha, with_zeroshot)
    total = len(plan.runs) + with_zeroshot
    done = total - len(todo)
    log.info("sweep: %d runs, %d already done, %d to do", total, done, len(todo))
    if not todo:
        return 0
    exp = z.experiment()
    for cfg in todo:  # e.g. too many --shots: fail now, not after hours of the other runs
        cfg.check_split(exp.split)
    from .eta import left, work_units

    units = work_units(todo, exp.split)  # the time left is weighed by work, not runs
    t0 = time.time()
    for i, cfg in enumerate(todo, 1):
        raise_if_interrupted()
        path = result_path(cfg)
        with run_lock(results, path) if each_locked else contextlib.nullcontext():
            if plan.force:
                set_aside(path)  # the record it replaces is kept under another name with its context
            elif each_locked and already_done(cfg, model_sha256=model_sha, rerun_changed=True):
                log.info("[%d/%d] %s: done meanwhile by another process", i, len(todo), cfg.describe())
                continue
            log.info("[%d/%d] %s (log: %s)", i, len(todo), cfg.describe(), path.with_suffix(".log"))
            with run_log(path.with_suffix(".log")):
                write_result(path, cfg.run(exp))
        elapsed = time.time() - t0
        log.info("sweep: %d of %d runs done (%d to do when it started), %s elapsed%s", done + i,
                 total, len(todo), _minutes(elapsed),
                 f", about {_minutes(left(elapsed, units, i))} left" if i < len(todo) else "")
    return len(todo)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def summary_lines(results: Path) -> Sequence[str]:
    """A few lines on what the results folder holds, for the end of a sweep."""
    loaded = load_results(results)
    lines = []
    if any_random(loaded):
        lines.append("RANDOM WEIGHTS: these percentages are not accuracies of CLIP or CoOp")
    if loaded["zeroshot"]:
        lines.append(f"zero-shot: {loaded['zeroshot']['accuracy']:.2f}%")
    for method, recs in [*loaded["coop"].items(), *loaded["baselines"].items()]:
        for k, st in shot_stats(recs).items():
            lines.append(f"{method} {k} shot{'s' if k != 1 else ''}: {st['mean']:.2f}% "
                         f"(mean of {st['n']} seed{'s' if st['n'] != 1 else ''})")
    return lines
