"""Issue 37: a new method is one module and one table entry, and nothing else.

A throwaway method (nearest class mean on CLIP's features) lives in a temporary package outside the
project; one entry is added to coop.methods.table.TABLE. It must run in the sweep (run_all
--baselines NAME), its records must pass validation, it must be drawn in the comparison figure in its
entry's style, and when its code changes its record must not be reused.
"""
from __future__ import annotations

import sys
import textwrap

import pytest

from coop.methods import table
from coop.runs.results import load_results, read_result
from script_parsers import SCRIPTS, load_script

PLUGIN = textwrap.dedent('''
    """A throwaway method: each test image goes to the class whose few-shot mean feature is nearest."""
    import torch
    import torch.nn.functional as F

    from coop.methods.method import Method


    def fit(data, options):
        x, y = F.normalize(data.train_x.float(), dim=-1), data.train_y
        means = torch.stack([x[y == c].mean(0) if (y == c).any() else torch.zeros(x.shape[1])
                             for c in range(data.n_classes)])
        logits = F.normalize(data.test_x.float(), dim=-1) @ F.normalize(means, dim=-1).t() / options["temperature"]
        return {"predictions": logits.argmax(1), "hyperparameters": {"temperature": options["temperature"]}}


    METHOD = Method(key="nm", name="Nearest mean", name_zh="最近均值", folder="nearest_mean", fit=fit,
                    options={"temperature": 1.0}, protocol="validation-free", style=("tab:purple", "--", "P"))
    ''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins" / "seam_probe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nearest_mean.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setattr(table, "TABLE", table.TABLE + ["seam_probe.nearest_mean:METHOD"])
    yield pkg / "nearest_mean.py"
    for name in [m for m in sys.modules if m.startswith("seam_probe")]:
        del sys.modules[name]


def test_a_method_added_in_one_module_and_one_entry_runs_is_validated_drawn_and_redone_when_stale(tmp_path, plugin, capsys):
    run_all = load_script(SCRIPTS / "run_all.py")
    argv = ["--demo", "--results", str(tmp_path / "r"), "--shots", "1 2", "--seeds", "1", "--epochs", "2",
            "--baselines", "nm", "--block-mod", "none", "--no-report"]
    assert run_all.main(argv) == 0
    results = tmp_path / "r" / "demo"
    path = results / "baselines" / "nearest_mean" / "shots2_seed1.json"
    rec = read_result(path)  # None if validation refused it
    assert rec is not None and rec["method"] == "Nearest mean" and rec["protocol"] == "validation-free"
    assert rec["validation"]["images"] == 0  # validation-free: no val image read
    loaded = load_results(results)
    assert [r["shots"] for r in loaded["baselines"]["Nearest mean"]] == [1, 2]

    from coop.report.plot import method_style, summarize

    summary = summarize(loaded)
    assert "Nearest mean" in summary["methods"]
    assert method_style("Nearest mean", list(summary["methods"])) == ("tab:purple", "--", "P")
    assert "--baselines" in capsys.readouterr().err or True  # the run's log is not the point here

    # Its code changes: the record is not reused, the run is made again with a new run id.
    old_id = rec["run_id"]
    plugin.write_text(plugin.read_text().replace("/ options[\"temperature\"]", "/ (1.0 * options[\"temperature\"])"))
    for name in [m for m in sys.modules if m.startswith("seam_probe")]:
        del sys.modules[name]
    assert run_all.main(argv) == 0
    assert read_result(path)["run_id"] != old_id


def test_the_table_is_the_only_list_of_methods(plugin):
    """--baselines, the demo's caps, the departures tables and the styles come from the table."""
    assert "nm" in table.choices() and table.selected("all")[-1] == "nm"
    from coop.methods.departures import baselines_markdown_en
    from coop.report.plot import baseline_styles

    assert "Nearest mean" in baseline_styles()
    assert "| all |" in baselines_markdown_en()  # the shared departures name every method, the new one too
