"""A result record is checked before it is trusted: its fields must agree with each other.

A record read back from disk may have been edited by hand, copied into the wrong folder, or written
by another version. :func:`problems` lists what is inconsistent, in words:

- its ``run_id`` is the hash of its ``identity`` and ``inputs`` (:func:`coop.runs.provenance.run_id`);
- it sits where its own fields put it: the folder of its method, ``shots{K}_seed{S}.json`` of its
  shots and seed;
- its accuracy is possible: between 0 and 100, a whole number of correct images out of ``n_test``,
  between its worst and best class; and, with its per-image predictions, exactly the share of
  correct predictions, each class's accuracy too.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from .provenance import run_id

# A baseline record names its own folder (its method's entry in coop.methods.table): it must sit there.
FILE_NAME = re.compile(r"^shots(\d+)_seed(\d+)\.json$")
TOL = 1e-3  # accuracies are stored rounded to 4 decimals


LONGER = "longer"  # coop_longer/: plain CoOp with twice the epochs (run_all's check of under-training)


def longer_name(epochs: int) -> str:
    """The method of a coop_longer/ record: "CoOp [epochs=100]", as other settings' groups are named."""
    return f"CoOp [epochs={epochs}]"


def expected_method(path: Path) -> Optional[str]:
    """The method a record at ``path`` must name, from its folder; None for a top-level file."""
    folder, parent = path.parent.name, path.parent.parent.name
    if parent == "baselines":
        return None  # the record's own "folder" says which (problems)
    if folder == "zeroshot_prompts":
        return "Zero-shot CLIP"
    if folder == "coop":
        return "CoOp"
    if folder == "cocoop":
        return "CoCoOp"
    if folder == f"coop_{LONGER}":
        return longer_name(0).replace("0", "*")  # any number of epochs (* matches digits)
    if folder.startswith("coop_"):
        return f"CoOp+{folder[len('coop_'):]}"
    return None


def _accuracy_problems(rec: Dict[str, Any]) -> List[str]:
    out: List[str] = []
    acc, n = rec.get("accuracy"), rec.get("n_test")
    per_class = rec.get("per_class_accuracy") or {}
    if not isinstance(acc, (int, float)) or not 0 <= acc <= 100:
        return [f"accuracy {acc!r} is not a percentage"]
    if not isinstance(n, int) or n < 1:
        return [f"n_test {n!r} is not a positive count"]
    if abs(acc * n / 100 - round(acc * n / 100)) > n * TOL / 100 + 1e-6:
        out.append(f"accuracy {acc} is not a whole number of correct images out of n_test {n}")
    if per_class and not min(per_class.values()) - TOL <= acc <= max(per_class.values()) + TOL:
        out.append(f"accuracy {acc} lies outside its per-class accuracies ({min(per_class.values())}.."
                   f"{max(per_class.values())})")
    preds = rec.get("test_predictions")
    if preds:
        pred, label = preds.get("pred") or [], preds.get("label") or []
        if not (len(pred) == len(label) == len(preds.get("index") or []) == n):
            return out + [f"test_predictions do not have n_test {n} entries"]
        right = sum(int(p == y) for p, y in zip(pred, label))
        if abs(100.0 * right / n - acc) > TOL:
            out.append(f"accuracy {acc} is not its predictions' {100.0 * right / n:.4f}")
        names = rec.get("classnames") or []
        for c, name in enumerate(names):
            rows = [p == y for p, y in zip(pred, label) if y == c]
            if rows and name in per_class and abs(100.0 * sum(rows) / len(rows) - per_class[name]) > TOL:
                out.append(f"class {name!r}: accuracy {per_class[name]} is not its predictions' "
                           f"{100.0 * sum(rows) / len(rows):.4f}")
                break
    return out


def problems(rec: Dict[str, Any], path: Optional[Path] = None) -> List[str]:
    """What is inconsistent in ``rec`` (read from ``path``); an empty list for a record to trust."""
    out: List[str] = []
    if "identity" in rec and rec.get("run_id") != run_id(rec["identity"], rec.get("inputs") or {}):
        out.append("its run_id is not the hash of its settings and inputs (edited by hand?)")
    if path is not None:
        want = expected_method(Path(path))
        if want is not None and not re.fullmatch(re.escape(want).replace(r"\*", r"\d+"), str(rec.get("method"))):
            out.append(f"it says method {rec.get('method')!r} but sits in the folder of {want!r}")
        if Path(path).parent.parent.name == "baselines" and rec.get("folder") != Path(path).parent.name:
            out.append(f"it is a {rec.get('method')!r} record of folder {rec.get('folder')!r} but sits in "
                       f"baselines/{Path(path).parent.name}/")
        m = FILE_NAME.match(Path(path).name)
        if m and (int(m.group(1)), int(m.group(2))) != (rec.get("shots"), rec.get("seed")):
            out.append(f"it holds shots {rec.get('shots')}, seed {rec.get('seed')}, not those of its file name")
    if rec.get("kind") == "base2new":  # each half is a test of its own; the record's accuracy is their H
        return out + _base2new_problems(rec)
    return out + _accuracy_problems(rec)


def _base2new_problems(rec: Dict[str, Any]) -> List[str]:
    halves = rec.get("halves") or {}
    if set(halves) != {"base", "new"}:
        return ["a base-to-new record needs its base and new halves"]
    out = [f"{name} half: {p}" for name in ("base", "new") for p in _accuracy_problems(halves[name])]
    b, n = halves["base"].get("accuracy"), halves["new"].get("accuracy")
    if not out:
        h = 0.0 if b + n == 0 else 2 * b * n / (b + n)
        if abs(h - rec.get("accuracy", -1)) > TOL or abs(h - rec.get("H", -1)) > TOL:
            out.append(f"H {rec.get('H')} is not the harmonic mean {h:.4f} of its halves")
    return out
