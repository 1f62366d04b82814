"""One list of departures from CoOp (issue 11): docs/recipe.md states it, the flags it names exist, and
each run's JSON names the items that applied to it."""
from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

from coop.methods.departures import DEPARTURES, active
from coop.methods.train_config import TrainConfig
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "docs" / "recipe.md"  # "Where we depart from CoOp", generated between its markers


def recipe_rows():
    text = RECIPE.read_text(encoding="utf-8")
    table = text.split("<!-- departures:begin -->")[1].split("<!-- departures:end -->")[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.strip().splitlines()[2:]]


def test_recipe_lists_every_departure_with_its_flag():
    rows = recipe_rows()
    assert [int(r[0]) for r in rows] == list(range(1, len(DEPARTURES) + 1))
    for row, d in zip(rows, DEPARTURES):
        if d.flag is None:
            assert row[3] == "—"
        else:
            assert row[3].replace("`", "").startswith(d.flag.split(" (")[0].replace("`", ""))


def test_every_flag_that_removes_a_departure_exists():
    import contextlib
    from io import StringIO

    buf = StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        load_script("train_coop").parse_args(["--help"])
    help_text = buf.getvalue()
    flags = {f for d in DEPARTURES if d.flag for f in re.findall(r"--[a-z][a-z-]+", d.flag)}
    assert flags and all(f in help_text for f in flags), flags - {f for f in flags if f in help_text}


def test_recipe_table_is_the_codes():
    from coop.methods.departures import markdown_en

    text = RECIPE.read_text(encoding="utf-8")
    assert text.split("<!-- departures:begin -->")[1].split("<!-- departures:end -->")[0].strip() == markdown_en()


def test_the_code_writes_the_table_where_the_docs_keep_it(tmp_path):
    """make_figures refreshes docs/recipe.md (no longer README) through refresh_departures(recipe=...)."""
    from coop.methods.departures import markdown_en
    from coop.report.document import (DEPARTURES_BEGIN, DEPARTURES_END, DOCS_RECIPE, RECIPE_BEGIN, RECIPE_END,
                                      refresh_departures)

    assert DOCS_RECIPE == RECIPE and RECIPE_BEGIN in RECIPE.read_text(encoding="utf-8")
    assert RECIPE_BEGIN not in (ROOT / "README.md").read_text(encoding="utf-8")
    report, recipe = tmp_path / "REPORT.md", tmp_path / "recipe.md"
    report.write_text(f"a\n{DEPARTURES_BEGIN}\nold\n{DEPARTURES_END}\nb\n", encoding="utf-8")
    recipe.write_text(f"# r\n{RECIPE_BEGIN}\nold\n{RECIPE_END}\ntail\n", encoding="utf-8")
    refresh_departures(report, recipe=recipe)
    assert recipe.read_text(encoding="utf-8") == f"# r\n{RECIPE_BEGIN}\n{markdown_en()}\n{RECIPE_END}\ntail\n"


def test_active_departures_follow_the_config(tmp_path, monkeypatch):
    import coop.methods.departures as D
    from coop.utils.hashing import sha256_file

    default = active(asdict(TrainConfig()))
    assert default == ["split", "precision", "fewshot", "crop_sharing", "crop_rng", "text_path"]
    coops = tmp_path / "renamed.json"  # CoOp's split is recognised by its content, not its name
    coops.write_text('{"train": [], "val": [], "test": []}')
    monkeypatch.setattr(D, "COOP_SPLIT_SHA256", sha256_file(coops))
    closest = TrainConfig(split_file=str(coops), precision="fp16", sampling="coop",
                          independent_crops=True, fast=False)
    assert active(asdict(closest)) == ["crop_rng"]
    ours_named_like_theirs = tmp_path / "split_zhou_Caltech101.json"
    ours_named_like_theirs.write_text('{"train": [], "val": [], "test": [], "ours": 1}')
    assert "split" in active(asdict(TrainConfig(split_file=str(ours_named_like_theirs))))
    approx = active(asdict(TrainConfig(views=4, ctx_init="a photo of a", n_ctx=4)))
    assert "views" in approx and "ctx_init" in approx and "crop_sharing" not in approx


def test_the_baselines_departures_are_one_list_in_two_languages(tmp_path):
    """docs/baselines.md and the report's section 6 render coop.methods.departures.BASELINE_DEPARTURES;
    refresh_departures (what make_figures calls) rewrites both."""
    from coop.methods.departures import BASELINE_DEPARTURES, baseline_departures, baselines_markdown_en
    from coop.report.departures_zh import appendix_departures_zh
    from coop.report.document import (BASELINES_BEGIN, BASELINES_END, DEPARTURES_BEGIN, DEPARTURES_END, RECIPE_BEGIN,
                                      RECIPE_END, departures_block, refresh_departures)

    docs = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8")
    assert docs.split(BASELINES_BEGIN)[1].split(BASELINES_END)[0].strip() == baselines_markdown_en()
    report = departures_block((ROOT / "report" / "REPORT.template.md").read_text(encoding="utf-8"))
    assert report == appendix_departures_zh()
    keys = [d.key for d in BASELINE_DEPARTURES]
    assert {"coop_fewshot", "tip_views_by_image"} <= set(keys) and len(keys) == len(set(keys))
    from collections import Counter

    from coop.methods.baseline_departures import ASPECTS

    every = baseline_departures()
    for d in every:  # every row (the methods' own too) in the docs; in the report those of what is chosen
        assert d.aspect in ASPECTS, d.key  # a new departure says what it changes
        assert d.title in baselines_markdown_en() and (d.title_zh in report) is (d.aspect == "selection")
    rest = Counter(d.aspect for d in every if d.aspect != "selection")  # the rest counted, by aspect
    assert f"其余 {sum(rest.values())} 项只改变" in report and all(f"{ASPECTS[a]}（{n} 项）" in report for a, n in rest.items())
    r, rec, b = tmp_path / "REPORT.md", tmp_path / "recipe.md", tmp_path / "baselines.md"
    r.write_text(f"{DEPARTURES_BEGIN}\nold\n{DEPARTURES_END}\n", encoding="utf-8")
    rec.write_text(f"{RECIPE_BEGIN}\n{RECIPE_END}\n", encoding="utf-8")
    b.write_text(f"x\n{BASELINES_BEGIN}\nold\n{BASELINES_END}\ny\n", encoding="utf-8")
    refresh_departures(r, recipe=rec)  # baselines.md beside recipe.md is found
    assert b.read_text(encoding="utf-8") == f"x\n{BASELINES_BEGIN}\n{baselines_markdown_en()}\n{BASELINES_END}\ny\n"
    assert appendix_departures_zh() in r.read_text(encoding="utf-8")


def test_active_baseline_departures_follow_the_config():
    from coop.methods.baselines import BaselineConfig
    from coop.methods.departures import active_baseline

    assert BaselineConfig(method="lp").departures() == ["coop_fewshot", "val_fewshot_ours", "fp32_features"]
    tip = BaselineConfig(method="tip").departures()
    assert tip == ["coop_fewshot", "tip_views_by_image", "tip_search_fewshot", "tip_fp32"]
    assert "tip_search_fewshot" not in BaselineConfig(method="tip_f", options={"search": "val"}).departures()
    assert BaselineConfig(method="tip_f").departures()[-2:] == ["tip_f_cached_views", "tip_f_last_epoch"]
    assert active_baseline({"method": "clap"})[-1] == "adapters_fp32"  # a new method's own, from its table entry
