"""Results are data: one JSON file per run, written atomically, read back by the plot and report.

Layout of a results folder (``results/`` for real runs, ``results/demo/`` for the demo)::

    zeroshot.json                       kind "zeroshot": zero-shot CLIP on the test split
    coop/shots{K}_seed{S}.json          kind "coop": one CoOp run (+ its learned context .pt)
    coop_{mod}/shots{K}_seed{S}.json    CoOp with a transformer-block modification (coop.BLOCK_MODS)
    coop_longer/shots{K}_seed{S}.json   plain CoOp with twice the epochs (run_all's check of under-training)
    baselines/{method}/shots{K}_seed{S}.json   kind "baseline": linear probe, Tip-Adapter(-F)

Every record has ``schema``, ``kind``, ``method``, ``complete`` (True), ``accuracy`` (top-1 %, test),
``per_class_accuracy``, ``n_test``, ``shots``, ``seed``, ``model`` (name, sha256, random_weights),
``random_weights``, ``split`` (file, sha256), ``config``, ``environment`` (versions, device,
threads), ``wall_time_s``; CoOp records add ``history`` (per-epoch loss, train accuracy, lr).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..utils.atomic import move_aside, write_json
from ..utils.errors import UserError
from .validation import LONGER, longer_name, problems  # noqa: F401  (LONGER, longer_name: re-exported)
from .pairing import context_run_id, killed_between_writes

log = logging.getLogger(__name__)

SCHEMA = 3  # 2: run_id and inputs; 3: per-image predictions, test images' hash (older results are redone)
REQUIRED_KEYS = ("schema", "kind", "method", "complete", "accuracy", "per_class_accuracy", "n_test",
                 "shots", "seed", "model", "random_weights", "split", "config", "environment", "wall_time_s",
                 "run_id", "inputs")


def coop_dir(results: str | os.PathLike, block_mod: Optional[str] = None) -> Path:
    return Path(results) / (f"coop_{block_mod}" if block_mod else "coop")


def coop_result_path(results: str | os.PathLike, shots: int, seed: int, block_mod: Optional[str] = None) -> Path:
    return coop_dir(results, block_mod) / f"shots{shots}_seed{seed}.json"


def zeroshot_result_path(results: str | os.PathLike, templates: str = "single", primary: bool = True) -> Path:
    """``zeroshot.json`` for the sweep's zero-shot run; ``zeroshot_prompts/<templates>.json`` for
    the other prompt sets it compares (the report's prompt table)."""
    if primary:
        return Path(results) / "zeroshot.json"
    import hashlib

    name = templates if templates.replace("_", "").isalnum() else hashlib.sha256(templates.encode()).hexdigest()[:12]
    return Path(results) / "zeroshot_prompts" / f"{name}.json"


MODIFIED = "CoOp+"  # a block modification's method name: "CoOp+adapter", "CoOp+lora"


def method_name(block_mod: Optional[str] = None) -> str:
    return f"{MODIFIED}{block_mod}" if block_mod else "CoOp"


def modified_methods(names) -> List[str]:
    """The block modifications (section 9) among method names, sorted; CoOp's variants ("CoOp [epochs=20]")
    and the modifications' guarded forms are not among them."""
    return sorted(m for m in names if m.startswith(MODIFIED) and "[" not in m)


def write_result(path: str | os.PathLike, record: Dict[str, Any]) -> None:
    """Write a finished run's record atomically; it must have every required key."""
    record = {"schema": SCHEMA, **record, "complete": True}
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"result record for {path} lacks {missing}")
    try:
        write_json(path, record)
    except Exception as e:  # full disk, a file where a folder should be, no permission: keep the result
        fallback = Path(tempfile.gettempdir()) / f"coop-{record.get('run_id', 'run')}-{Path(path).name}"
        write_json(fallback, record)
        raise UserError(f"could not write {path} ({getattr(e, 'strerror', None) or e}); the result was saved "
                        f"to {fallback} instead: free space or fix the folder, then copy it to {path}") from None
    log.info("wrote %s", path)


def read_result(path: str | os.PathLike) -> Optional[Dict[str, Any]]:
    """The record at ``path`` if it is a complete result of this schema, else None (see :func:`why_unreadable`);
    a record that exists and is refused is named in a warning."""
    rec, why = _read(path)
    if why is not None and Path(path).exists() and not why.startswith(("not readable", "schema")):
        log.warning("%s is refused: %s", path, why)
    return rec


def why_unreadable(path: str | os.PathLike) -> Optional[str]:
    """Why the file at ``path`` is not a complete result we can use; None if it is one, or if there is no file."""
    return _read(path)[1] if Path(path).exists() else None


def _read(path: str | os.PathLike) -> tuple:
    """(record, None) for a complete result of this schema, else (None, why).

    A CoOp record is complete only with its learned context beside it, carrying the same run_id:
    a ``.json`` and a ``.pt`` of two different runs (a kill or a full disk between the two writes)
    are an unfinished run, never one result.
    """
    try:
        rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"not readable as JSON ({getattr(e, 'strerror', None) or e})"
    if not isinstance(rec, dict):
        return None, f"holds a JSON {type(rec).__name__}, not a result record"
    if rec.get("schema") != SCHEMA:
        newer = isinstance(rec.get("schema"), int) and rec["schema"] > SCHEMA
        return None, (f"written by a newer version of this project (schema {rec['schema']}, this one reads "
                      f"{SCHEMA}): update the project" if newer else f"schema {rec.get('schema')!r}, not {SCHEMA}")
    if rec.get("complete") is not True:
        return None, "not marked complete"
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    bad = problems(rec, Path(path))
    if bad:  # said by whoever asked: the run's error line, or the figure's and report's notes
        return None, "refused by validation: " + "; ".join(bad)
    trained = rec.get("kind") == "coop" or (rec.get("kind") == "base2new" and rec.get("context_file"))
    if trained and context_run_id(Path(path).parent / str(rec.get("context_file"))) != rec["run_id"]:
        return None, f"its context file {rec.get('context_file')} is missing or from another run"
    return rec, None


def load_results(results: str | os.PathLike, protocol: str = "fewshot") -> Dict[str, Any]:
    """The records of a results folder that belong together: the one reader of a folder's records, for
    every figure, report and timing (``tests/test_consumers.py`` finds each module that reads records
    and runs it on a folder of mixed settings and models).

    Returns ``{"zeroshot": record or None, "coop": {method: [records]}, "baselines": {method: [records]},
    "zeroshot_prompts": {templates: record}, "notes": [...], "protocol": protocol}``. ``protocol``
    "base2new" reads a base-to-new folder (``RESULTS/base2new/``) into the same shape: its zero-shot
    record, CoOp and CoCoOp under "coop". Incomplete, inconsistent or foreign JSON files are skipped with
    a note, never guessed at (a record of the other protocol is noted unless it is in that protocol's
    folder). Then :func:`coop.runs.selection.select` keeps one frame of inputs (data, weights, code)
    and shows each method's runs of other settings as separate, named groups, with notes.
    """
    from .selection import select

    results = Path(results)
    kinds = {"fewshot": ("zeroshot", "coop", "baseline"), "base2new": ("base2new",)}[protocol]
    seen: List[tuple] = []  # (file, record or None, why or None, the kind it must have, where it goes)

    def read(f: Path, kind: str, group: str) -> None:
        if f.exists():
            seen.append((f, *_read(f), kind, group))

    read(zeroshot_result_path(results), kinds[0], "zeroshot")
    folders = ([("coop", d) for d in sorted(results.glob("coop*")) if d.is_dir()]
               + [("baselines", d) for d in sorted((results / "baselines").glob("*")) if d.is_dir()]
               if protocol == "fewshot" else [("coop", d) for d in sorted(results.glob("*")) if d.is_dir()])
    for group, d in folders:
        for f in sorted(d.glob("shots*_seed*.json")):
            read(f, kinds[0] if protocol == "base2new" else "coop" if group == "coop" else "baseline", group)
    b2n_layout = results.name == "base2new" or (results / "cocoop").is_dir()  # where run_all puts base-to-new runs
    elsewhere = b2n_layout if protocol == "fewshot" else not b2n_layout  # a folder of the other protocol
    out: Dict[str, Any] = {"zeroshot": None, "coop": {}, "baselines": {}, "zeroshot_prompts": {}, "notes": [],
                           "protocol": protocol}
    for f, rec, why, kind, group in seen:
        if rec is not None and rec.get("kind") != kind:  # e.g. a base-to-new record copied among all-class runs
            if elsewhere and rec.get("kind") not in kinds:
                continue  # the other protocol's record in its own folder: not ours to note
            rec, why = None, f"a {rec.get('kind')!r} record where {kind!r} records belong (never averaged with them)"
        if why is not None:  # named, never taken for "not run yet"
            log.warning("skipping %s: %s", f, why)
            out["notes"].append(f"{f.relative_to(results).as_posix()} left out: {why}")
        elif group == "zeroshot":
            out["zeroshot"] = rec
        else:
            out[group].setdefault(rec["method"], []).append(rec)
    for recs in [*out["coop"].values(), *out["baselines"].values()]:
        recs.sort(key=lambda r: (r["shots"], r["seed"]))
    for f in sorted((results / "zeroshot_prompts").glob("*.json")) if protocol == "fewshot" else []:
        rec = read_result(f)
        if rec is not None and rec.get("kind") == "zeroshot":
            out["zeroshot_prompts"][str((rec.get("config") or {}).get("templates", f.stem))] = rec
    if out["zeroshot"] is not None and protocol == "fewshot":
        out["zeroshot_prompts"].setdefault(str((out["zeroshot"].get("config") or {}).get("templates", "single")),
                                           out["zeroshot"])
    return select(out)


def existing(path: str | os.PathLike, identity: Dict[str, Any], inputs: Optional[Dict[str, Any]],
             force: bool = False, rerun_changed: bool = False) -> Optional[Dict[str, Any]]:
    """The finished result at ``path`` if it was computed with the same settings and inputs, else None.

    A complete result from *other settings* is not silently reused or overwritten: that is a
    :class:`~coop.utils.errors.UserError` unless ``force``. A result whose *inputs* changed (images,
    split, weights, code; see :mod:`coop.runs.provenance`) is stale: with ``rerun_changed`` it is
    redone (the sweep), else a UserError names what changed (single scripts). ``inputs`` None:
    they could not be computed (e.g. images missing): nothing is reused, and the run says why.
    """
    from .provenance import changed_inputs

    if force:
        return None
    rec, why = _read(path) if Path(path).exists() else (None, None)
    if why is not None and killed_between_writes(Path(path), SCHEMA):  # a crash, not a user's file: redo, keep the old
        move_aside(Path(path), "its context file is a newer run's: that run was interrupted; redoing it")
        return None
    if why is not None:
        raise UserError(f"{path} exists but is not a result this version can use ({why}); it is left as it is: "
                        f"pass --force to move it aside (renamed {Path(path).name}.set-aside-<time>) and redo the run, "
                        f"or --results DIR to work elsewhere")
    if rec is None:
        return None
    old = rec.get("identity", {})
    if "dataset" not in old and "dataset" in identity:  # made before a data set was a record: Caltech101's
        from ..data.dataset import load_dataset

        old = {**old, "dataset": load_dataset("caltech101").identity()}
    diff = {k: (old.get(k), v) for k, v in identity.items() if old.get(k) != v}
    if diff:
        what = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in list(diff.items())[:3])
        raise UserError(f"{path} holds a result made with other settings ({what}); pass --force to "
                        f"redo it, or --results DIR to keep both")
    if inputs is None:
        return None
    changed = changed_inputs(rec["inputs"], inputs)
    if not changed:
        return rec
    if rerun_changed:
        log.warning("%s is stale (changed since it was made: %s); redoing it", path, ", ".join(changed))
        return None
    raise UserError(f"{path} was made from other inputs: {', '.join(changed)} changed since; "
                    f"pass --force to redo it")


def by_shots(records: List[Dict[str, Any]]) -> Dict[int, Dict[int, Dict[str, Any]]]:
    """``{shots: {seed: record}}``; a repeated (shots, seed) keeps the first record (load order)."""
    out: Dict[int, Dict[int, Dict[str, Any]]] = {}
    for r in records:
        out.setdefault(int(r["shots"]), {}).setdefault(int(r["seed"]), r)
    return out


def shot_stats(records: List[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    """Per number of shots: ``{"seeds", "accuracies", "mean", "std", "n"}`` over the seeds present.

    ``std`` is the *sample* standard deviation over the seeds (ddof=1, the usual estimate from a few
    seeds); one seed has none and gets 0, shown as such with ``n`` = 1.
    The figure and the report both use this, so they always show the same numbers.
    """
    import numpy as np

    out: Dict[int, Dict[str, Any]] = {}
    for k, seeds in sorted(by_shots(records).items()):
        ss = sorted(seeds)
        accs = [float(seeds[s]["accuracy"]) for s in ss]
        a = np.asarray(accs, dtype=float)
        out[k] = {"seeds": ss, "accuracies": accs, "mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(ss) > 1 else 0.0,
                 "n": len(ss)}
    return out


def variant_of(rec: Dict[str, Any]) -> Optional[str]:
    """The run_all check a CoOp record belongs to (``config.variant``: "longer"), None for an ordinary run."""
    return (rec.get("config") or {}).get("variant")


def is_check(recs: List[Dict[str, Any]]) -> bool:
    """A group of records that is one of run_all's checks (run at one shot count by design), not a method."""
    return bool(recs) and all(variant_of(r) for r in recs)


def any_random(loaded: Dict[str, Any]) -> bool:
    """True if any loaded record came from random weights (then no number is a CLIP accuracy)."""
    recs: List[Dict[str, Any]] = [r for rs in loaded["coop"].values() for r in rs]
    recs += [r for rs in loaded.get("baselines", {}).values() for r in rs]
    if loaded["zeroshot"]:
        recs.append(loaded["zeroshot"])
    return any(r.get("random_weights") for r in recs)
