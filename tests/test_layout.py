"""The tree is the architecture: ``coop/`` is one package per stage, and imports point down the stages."""
from __future__ import annotations

import importlib

import pytest

from imports import PACKAGE, import_cycles, import_graph, imports_of, module_names

# The stages in the order data flows through them; a module may import its own stage and the ones before.
# measure (speed and size, timed) comes after report: sweep_timing redraws the figure and the report to time
# them; the pipeline's machine check imports measure.
STAGES = ["utils", "data", "model", "features", "runs", "methods", "report", "measure", "pipeline"]


def stage(name: str) -> int:
    return STAGES.index(name.split(".")[0])


def test_every_module_lives_in_a_stage_package():
    loose = [n for n in module_names() if n and "." not in n and n not in STAGES]
    assert not loose, f"modules outside the stage packages: {loose}"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(STAGES)


def test_no_module_imports_a_later_stage():
    upward = []
    for name, path in module_names().items():
        if not name:  # coop/__init__.py re-exports the public names
            continue
        for dep in imports_of(name, path):
            if dep and stage(dep) > stage(name):
                upward.append(f"{name} imports {dep}")
    assert not upward, upward


def test_the_walk_sees_imports_inside_functions(tmp_path):
    """The check can fail: an import written inside a function body is found too."""
    bad = tmp_path / "probe.py"  # read as if it were coop/data/probe.py
    bad.write_text("def f():\n    from ..methods import train\n    from ..report.plot import plot_fewshot\n")
    deps = imports_of("data.probe", bad)
    assert {"methods.train", "report.plot"} <= deps


@pytest.mark.parametrize("pkg", STAGES)
def test_each_stage_says_what_it_is(pkg):
    doc = importlib.import_module(f"coop.{pkg}").__doc__ or ""
    assert len(doc.split()) >= 12, f"coop/{pkg}/__init__.py needs a docstring saying what the stage is"


def test_public_names_stay_importable_from_coop():
    import coop

    for name in ("CoOp", "random_clip", "load_clip", "BLOCK_MODS", "set_seed", "UserError", "__version__"):
        assert hasattr(coop, name), name


def test_no_import_cycle_inside_coop():
    """Issue 30: no two coop modules import each other, directly or through others (imports inside
    function bodies included: a lazy import is still a circle in the design)."""
    graph = import_graph()
    assert "report.fmt" in graph and graph[""], "the walk sees the package and its root's imports"
    assert not import_cycles(graph), import_cycles(graph)


def test_the_cycle_check_finds_a_synthetic_circle(tmp_path):
    """The check can fail: three modules in a circle (one edge a lazy import) and a module importing
    itself are found; a chain that only points down is not."""
    files = {"report.a": "from .b import x\n", "report.b": "def f():\n    from .c import y\n",
             "report.c": "from ..report import a\n", "report.d": "from .a import z\nfrom ..utils import atomic\n",
             "utils.atomic": "import os\n"}
    modules = {}
    for name, text in files.items():
        path = tmp_path / (name.replace(".", "_") + ".py")
        path.write_text(text)
        modules[name] = path
    graph = import_graph(modules)
    assert graph["report.c"] == {"report.a"} and graph["report.b"] == {"report.c"}
    assert import_cycles(graph) == [["report.a", "report.b", "report.c"]]
    assert import_cycles({"x": {"x"}, "y": set()}) == [["x"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []


def test_measurement_is_its_own_stage_and_never_in_the_code_hash():
    """Issue 36: speed measurement left coop/report/ for coop/measure/ (report/ turns records into the figure
    and the report); timing code decides no run's numbers, so no computing module is a measure module."""
    from coop.runs import provenance

    modules = module_names()
    computing = getattr(provenance, "computing_modules", lambda: provenance.COMPUTING_MODULES)()  # either layout
    assert {"measure.benchmark", "measure.bench_cocoop", "measure.sweep_timing"} <= set(modules)
    assert not [n for n in modules if n.startswith("report.") and n.split(".")[1] in ("benchmark", "bench_cocoop", "sweep_timing")]
    assert not [m for m in computing if m.startswith("measure.")]
    assert not [n for n in computing if any(d.startswith("measure") for d in imports_of(n, modules[n]))]
