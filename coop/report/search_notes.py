"""What a baseline's validation search chose, read for two warning signs (table 7.3's note).

- **ties**: several grid points reach the best few-shot validation accuracy, so the choice is the grid's
  search order (the official codes keep the first, or the left of a tie), not the data -- common when the validation set is small;
- **edges**: the chosen value is the largest (or smallest) the grid tried, so the search may have wanted a
  value it never tried (only for a grid of at least three values: on two, every choice is an edge).

Read from each record's ``hyperparameters``: Tip-Adapter's ``tied`` and ``edge`` (coop.methods.tip_adapter
records them), else a ``searched`` list -- ``[value, accuracy]`` pairs (the linear probe's C) or dicts of the
grid's settings with ``val_accuracy`` (CLIP-Adapter, TaskRes).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..runs.results import by_shots
from .fmt import _zh

HYPER_NAMES = {"alpha": "α", "beta": "β"}  # how the report writes a hyper-parameter's name
SEARCH_KEYS = ("searched", "tied", "edge", "grid_points")  # what a search records beside the values it chose


def _points(h: Dict[str, Any]) -> List[Tuple[Dict[str, Any], float]]:
    """The search's distinct points as (settings, validation accuracy): a point evaluated twice (the linear probe's
    search revisits a C) is one point, not a tie with itself; [] when no ``searched`` list was recorded."""
    searched = h.get("searched") or []
    if searched and isinstance(searched[0], (list, tuple)):  # [value, accuracy] pairs: one hyper-parameter, C
        points = [({"C": float(v)}, float(a)) for v, a in searched]
    else:
        points = [({k: v for k, v in p.items() if k != "val_accuracy"}, float(p["val_accuracy"])) for p in searched]
    return list({tuple(sorted(p.items())): (p, a) for p, a in points}.values())


def _signs(h: Dict[str, Any]) -> Tuple[bool, List[str]]:
    """(tied, names chosen at the grid's edge) of one record's search; (False, []) when it recorded none."""
    if "tied" in h:
        return int(h["tied"]) > 1, list(h.get("edge") or [])
    points = _points(h)
    if not points:
        return False, []
    best = max(a for _, a in points)
    edge = []
    for k, v in {k: h.get(k) for k in points[0][0]}.items():
        values = sorted({p[k] for p, _ in points if isinstance(p.get(k), (int, float))})
        if len(values) >= 3 and v in (values[0], values[-1]):
            edge.append(k)
    return sum(a == best for _, a in points) > 1, edge


def _whole_grid(h: Dict[str, Any]) -> bool:
    """Every point of the grid reached the best validation accuracy (the choice is the grid's first point)."""
    if "tied" in h:
        return bool(h.get("grid_points")) and int(h["tied"]) == int(h["grid_points"]) > 1
    points = _points(h)
    return len(points) > 1 and len({a for _, a in points}) == 1


def search_notes(baselines: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    """A lead sentence and a small table (a row per method) of the runs whose search tied or chose an edge, per
    shot count, as runs/seeds; [] if none (a grader: the same said as one sentence was a wall of text)."""
    rows = []
    for method, recs in baselines.items():
        ties, edges = [], {}
        for k, runs in sorted(by_shots(recs).items()):
            signs = [_signs(r.get("hyperparameters") or {}) for r in runs.values()]
            n = sum(t for t, _ in signs)
            every = sum(_whole_grid(r.get("hyperparameters") or {}) for r in runs.values())
            if n:
                ties.append(f"{k} shot {n}/{len(signs)}" + (f"（全网格 {every}）" if every else ""))
            for name in sorted({e for _, es in signs for e in es}):
                m = sum(name in es for _, es in signs)
                edges.setdefault(name, []).append(f"{k} shot {m}/{len(signs)}")
        if ties or edges:
            at = "；".join(f"{HYPER_NAMES.get(name, name)}：{'，'.join(v)}" for name, v in edges.items())
            rows.append(f"| {_zh(method)} | {'，'.join(ties) or '—'} | {at or '—'} |")
    return [HEAD, "", "| 方法 | 并列 | 选在端点 |", "|---|---|---|", *rows, ""] if rows else []


HEAD = ("验证集上的超参数搜索有两个警示，下表按 shot 数给出次数/种子数。并列：多个搜索点在验证集上同为最高，按原代码的搜索顺序取，"
        "选择由顺序而不是数据决定（全网格：所有点都并列，验证集没有分开任何两点）；端点：选出的值是网格的最大或最小值，端点之外没有搜索。"
        "这些运行的超参数不宜当作“验证集选出的最优值”解读。")
