"""Linear-probe CLIP, with the regularisation search of CoOp's repository.

Source: KaiyangZhou/CoOp, ``lpclip/linear_probe.py`` (procedure re-implemented here, not copied).
The classifier is scikit-learn's ``LogisticRegression`` (lbfgs, L2 penalty, ``max_iter=1000``),
fitted on the raw image-encoder outputs: lpclip's ``feat_extractor.py`` stores
``clip_model.visual(image)`` without normalising it and ``linear_probe.py`` does not normalise
either, so nothing here normalises; the caller passes the features as they are.

The search for the inverse regularisation strength C, as lpclip does it:

1. fit on the initial grid ``1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6`` and take the C of the best
   validation accuracy (``np.argmax``: on a tie the first in that order, i.e. the largest C);
2. start from ``left = 0.1 * peak``, ``right = 10 * peak``; for each of 8 steps fit both ends and
   keep the right end only if it is strictly better (a tie keeps the left end); the next range is
   [midpoint, right] or [left, midpoint] with the midpoint taken in log10, and the ends come back
   as ``10 ** log10(end)``;
3. the result is the end chosen at the last step (not the best C seen overall), with that fit's
   validation accuracy. The grid's peak is refitted: after the first step the midpoint of
   [0.1 * peak, 10 * peak] in log10 is log10(peak), so the second step fits ``10 ** log10(peak)``
   (the peak, up to floating-point rounding) as one end of its range, as lpclip does.

Departures: none in the procedure. sklearn >= 1.8 deprecates ``penalty="l2"``; L2 is the default
penalty in every version, so the argument is left out (same fit). ``random_state=0`` is passed
(lbfgs does not use it). Where lpclip refits a C already tried (the peak at the second step,
whenever ``10 ** log10(peak)`` equals the peak exactly), its fit is reused instead of refitted: lbfgs
is deterministic, so the result is the same; the test set is predicted with the chosen C's fit from the
search, as lpclip does (tested equal to a direct fit). Accuracies are reported in percent.
"""
from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .method import Method

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

log = logging.getLogger(__name__)

# KaiyangZhou/CoOp lpclip/linear_probe.py: `search_list`, `--num_step` default, `max_iter`.
C_GRID: Tuple[float, ...] = (1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6)
NUM_STEP = 8
MAX_ITER = 1000


def _features(x: Any) -> np.ndarray:
    """Numpy or torch (any device) -> 2-D float64 numpy array, unchanged in value."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {x.shape}")
    return x


def _labels(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    return np.asarray(y).astype(np.int64).reshape(-1)


def make_classifier(C: float, max_iter: int = MAX_ITER) -> "LogisticRegression":
    """lpclip's classifier: lbfgs, L2 (sklearn's default penalty), ``max_iter=1000``. (scikit-learn is
    imported here, when a probe is fitted: a process that only parses flags or runs other methods skips
    its second of import time.)"""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="lbfgs", max_iter=max_iter, C=C, random_state=0)


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int) -> "LogisticRegression":
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = make_classifier(C, max_iter).fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.debug("lbfgs did not converge in %d iterations for C=%g", max_iter, C)
    return clf


def search_c(train_x: Any, train_y: Any, val_x: Any, val_y: Any, *, grid: Sequence[float] = C_GRID,
             num_step: int = NUM_STEP, max_iter: int = MAX_ITER) -> Dict[str, Any]:
    """lpclip's search for C on the validation set (see the module docstring).

    Returns ``{"C": float, "val_accuracy": percent, "searched": [[C, val accuracy %], ...],
    "classifier": the fitted LogisticRegression of that C}``,
    ``searched`` listing every evaluation in lpclip's order (grid, then left/right per step).
    With ``num_step=0`` (not an lpclip setting) the grid's peak is returned.
    """
    tx, ty, vx, vy = _features(train_x), _labels(train_y), _features(val_x), _labels(val_y)
    fitted: Dict[float, float] = {}
    models: Dict[float, "LogisticRegression"] = {}
    searched: List[List[float]] = []

    def val_acc(c: float) -> float:
        c = float(c)
        if c not in fitted:
            models[c] = _fit(tx, ty, c, max_iter)
            fitted[c] = int(np.sum(models[c].predict(vx) == vy)) / len(vy)  # fraction, as lpclip compares it
        searched.append([c, 100 * fitted[c]])
        return fitted[c]

    accs = [val_acc(c) for c in grid]
    peak = int(np.argmax(accs))  # first maximum on a tie
    best_c, best_acc = float(grid[peak]), accs[peak]
    log.info("lpclip grid: %s -> peak C=%g", [round(100 * a, 2) for a in accs], best_c)

    c_left, c_right = 1e-1 * grid[peak], 1e1 * grid[peak]
    for step in range(num_step):
        acc_left, acc_right = val_acc(c_left), val_acc(c_right)
        if acc_left < acc_right:  # strictly better on the right; a tie keeps the left
            best_c, best_acc = float(c_right), acc_right
            c_left = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_right = np.log10(c_right)
        else:
            best_c, best_acc = float(c_left), acc_left
            c_right = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_left = np.log10(c_left)
        log.debug("lpclip step %d: C=%g, val %.2f%%", step, best_c, 100 * best_acc)
        c_left, c_right = np.power(10, c_left), np.power(10, c_right)

    log.info("lpclip search: C=%g, val accuracy %.2f%%", best_c, 100 * best_acc)
    # the chosen C's classifier, as lpclip predicts the test set with the classifier its search fitted
    return {"C": best_c, "val_accuracy": 100 * best_acc, "searched": searched, "classifier": models[best_c]}


def fit_predict(train_x: Any, train_y: Any, test_x: Any, C: float, *, max_iter: int = MAX_ITER) -> np.ndarray:
    """Fit lpclip's classifier with this C on the (unnormalised) training features; predict test_x."""
    clf = _fit(_features(train_x), _labels(train_y), float(C), max_iter)
    return clf.predict(_features(test_x)).astype(np.int64)


def run_linear_probe(train_x: Any, train_y: Any, val_x: Any, val_y: Any, test_x: Any, *,
                     num_step: int = NUM_STEP, max_iter: int = MAX_ITER,
                     grid: Optional[Sequence[float]] = None) -> Dict[str, Any]:
    """Search C on validation as lpclip does, predict the test features with that C's classifier.

    Returns ``C``, ``val_accuracy`` (percent), ``searched`` and ``predictions`` (int64 array).
    """
    found = search_c(train_x, train_y, val_x, val_y, grid=C_GRID if grid is None else grid,
                     num_step=num_step, max_iter=max_iter)
    found["predictions"] = found.pop("classifier").predict(_features(test_x)).astype(np.int64)
    return found


def fit(data, options: Dict[str, Any]) -> Dict[str, Any]:
    """The method's entry point (:class:`coop.methods.baselines.FewShotData` in, test predictions out)."""
    out = run_linear_probe(data.train_x, data.train_y, data.val_x, data.val_y, data.test_x,
                           max_iter=options["max_iter"])
    return {"predictions": out["predictions"],
            "hyperparameters": {"C": out["C"], "val_accuracy": out["val_accuracy"], "searched": out["searched"]}}


METHOD = Method(
    key="lp", name="Linear probe CLIP", name_zh="线性探测", folder="linear_probe", fit=fit,
    options={"max_iter": MAX_ITER},
    # on random features L-BFGS never converges, and the search fits 15 models per run
    demo={"max_iter": 20},
    style=("black", "--", "s"), source="KaiyangZhou/CoOp lpclip/linear_probe.py")
