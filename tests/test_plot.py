"""The few-shot figure: drawn from result files only, numbers as given, gaps stated, demos labelled."""
from __future__ import annotations

import json

import importlib.util
import logging

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from conftest import ROOT, write_fake_result
from coop.utils.errors import UserError
from coop.report.plot import COOP_COLOR, DEMO_TITLE, RANDOM_TITLE, draw_fewshot, plot_fewshot, summarize
from coop.runs.results import (REQUIRED_KEYS, coop_result_path, load_results, method_name,
                          zeroshot_result_path)

SHOTS = (1, 2, 4)
SEEDS = (1, 2, 3)


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """The figures' English labels (as on a machine without a CJK font); test_chinese_labels_* switch back."""
    import coop.report.fonts as fonts

    monkeypatch.setattr(fonts, "cjk_family", lambda: None)


def _record(kind, shots, seed, accuracy, method="CoOp", random_weights=False, **extra):
    """A schema-complete but made-up record (nothing here came from a model)."""
    rec = {
        "kind": kind, "method": method, "accuracy": float(accuracy),
        "per_class_accuracy": {"fake_class": float(accuracy)}, "n_test": 10**6,
        "shots": shots, "seed": seed,
        "model": {"name": "RN50", "sha256": "0" * 64, "random_weights": random_weights},
        "random_weights": random_weights,
        "split": {"file": "splits/fake.json", "sha256": "f" * 64},
        "config": {"n_ctx": 16, "class_token_position": "end"},
        "environment": {"versions": {}, "device": "cpu", "threads": 1},
        "wall_time_s": 0.0,
        **extra,
    }
    if kind == "coop":
        rec["history"] = []
    assert all(k in rec or k in ("schema", "complete", "run_id", "inputs") for k in REQUIRED_KEYS)
    return rec


def _write_fake(results, rng, shots=SHOTS, seeds=SEEDS, zeroshot=True, block_mod=None, skip=(),
                random_weights=False):
    """Write made-up accuracies; return {"zeroshot": acc, (method, K): {seed: acc}}."""
    truth = {}
    if zeroshot:
        truth["zeroshot"] = float(rng.uniform(20, 90))
        write_fake_result(zeroshot_result_path(results),
                     _record("zeroshot", 0, 0, truth["zeroshot"], method="zeroshot", random_weights=random_weights))
    method = method_name(block_mod)
    for k in shots:
        for s in seeds:
            if (k, s) in skip:
                continue
            acc = float(rng.uniform(20, 90))
            truth.setdefault((method, k), {})[s] = acc
            write_fake_result(coop_result_path(results, k, s, block_mod),
                         _record("coop", k, s, acc, method=method, random_weights=random_weights))
    return truth


def _line(fig, gid):
    found = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, f"expected one line with gid {gid!r}"
    return found[0]


def _all_text(fig):
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    texts += [t.get_text() for t in fig.texts]
    return "\n".join(texts)


def test_files_written_and_numbers_match_inputs(tmp_path):
    rng = np.random.default_rng(1234)
    truth = _write_fake(tmp_path, rng)
    summary = plot_fewshot(load_results(tmp_path), tmp_path / "fewshot")

    for suffix in (".png", ".pdf"):
        f = tmp_path / f"fewshot{suffix}"
        assert f.is_file() and f.stat().st_size > 1000
    assert (tmp_path / "fewshot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "fewshot.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"

    coop = summary["methods"]["CoOp"]
    assert sorted(coop["shots"]) == list(SHOTS)
    for k in SHOTS:
        accs = [truth[("CoOp", k)][s] for s in SEEDS]
        s = coop["shots"][k]
        assert s["seeds"] == list(SEEDS) and s["n"] == len(SEEDS)
        assert s["mean"] == pytest.approx(np.mean(accs))
        assert s["std"] == pytest.approx(np.std(accs, ddof=1))  # sample std, as documented
    assert summary["zeroshot"]["accuracy"] == pytest.approx(truth["zeroshot"])
    assert summary["notes"] == []
    assert coop["label"] == "CoOp (M=16, end), mean of 3 seeds"

    fig = draw_fewshot(summary)
    ax = fig.axes[0]
    line = _line(fig, "mean:CoOp")
    at = {int(lab.get_text()): x for x, lab in zip(ax.get_xticks(), ax.get_xticklabels())}
    assert [at[k] for k in (0,) + SHOTS] == [0, 1, 2, 3]  # evenly spaced, as CoOp's figures
    np.testing.assert_allclose(line.get_xdata(), [at[k] for k in SHOTS])
    np.testing.assert_allclose(line.get_ydata(), [np.mean(list(truth[("CoOp", k)].values())) for k in SHOTS])
    assert to_rgba(line.get_color()) == to_rgba(COOP_COLOR) and line.get_marker() == "o"
    seeds = _line(fig, "seeds:CoOp")  # every seed's accuracy, as a small marker at its shot count
    assert sorted(zip(seeds.get_xdata(), seeds.get_ydata())) == sorted(
        (at[k], a) for k in SHOTS for a in truth[("CoOp", k)].values())
    assert seeds.get_linestyle() == "None"
    bars = [c for c in ax.collections if c.get_gid() == "zeroshot-interval"]  # the star's Wilson interval
    means = [c for c in ax.collections if c.get_gid() == "interval:CoOp"]  # CoOp's means' 95% intervals
    assert len(bars) == len(means) == 1 and len(ax.collections) == 2  # nothing else
    (lo, hi), = [seg[:, 1] for seg in bars[0].get_segments()]
    assert (lo, hi) == pytest.approx(tuple(summary["zeroshot"]["interval"])) and lo < summary["zeroshot"]["accuracy"] < hi
    from scipy.stats import t as student_t
    segs = {round(seg[0, 0], 6): tuple(seg[:, 1]) for seg in means[0].get_segments()}
    for k in SHOTS:  # these made-up records have no per-image answers: the seeds' t interval, cut to [0, 100]
        a = np.array(list(truth[("CoOp", k)].values()))
        half = student_t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
        assert segs[round(at[k], 6)] == pytest.approx((max(0, a.mean() - half), min(100, a.mean() + half)), abs=1e-4)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Zero-shot CLIP", "CoOp (M=16, end), mean of 3 seeds",
                      "bars: 95% intervals (star: test images; CoOp: test images and seeds)", "CoOp, each seed"]
    star = _line(fig, "zeroshot")
    assert star.get_marker() == "*" and star.get_label() == "Zero-shot CLIP"
    assert list(star.get_xdata()) == [0] and list(star.get_ydata()) == pytest.approx([truth["zeroshot"]])
    assert to_rgba(star.get_color()) == to_rgba("purple")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "4"]
    assert ax.get_title() == "Caltech101"
    assert "Zero-shot CLIP" in _all_text(fig) and "CoOp (M=16, end), mean of 3 seeds" in _all_text(fig)


def test_missing_seed_and_variant_are_stated(tmp_path, caplog):
    rng = np.random.default_rng(7)
    truth = _write_fake(tmp_path, rng, skip={(4, 3)})
    truth.update(_write_fake(tmp_path, rng, zeroshot=False, block_mod="adapter", shots=(1, 2)))
    with caplog.at_level(logging.WARNING):
        summary = summarize(load_results(tmp_path))
    coop = summary["methods"]["CoOp"]
    assert coop["shots"][4]["seeds"] == [1, 2]
    assert coop["shots"][4]["mean"] == pytest.approx(np.mean([truth[("CoOp", 4)][s] for s in (1, 2)]))
    assert "4 shots: 2 of 3" in coop["label"]
    assert any("4 shots: 2 of 3 seeds" in n and "seed 3" in n for n in summary["notes"])
    assert any("CoOp+adapter: no runs at 4 shots" in n for n in summary["notes"])
    assert "2 of 3 seeds" in caplog.text

    fig = draw_fewshot(summary)
    text = _all_text(fig)
    assert "4 shots: 2 of 3" in text and "CoOp+adapter" in text
    variant = _line(fig, "mean:CoOp+adapter")
    assert to_rgba(variant.get_color()) != to_rgba(COOP_COLOR)
    np.testing.assert_allclose(variant.get_ydata(),
                               [np.mean(list(truth[("CoOp+adapter", k)].values())) for k in (1, 2)])


def test_no_zeroshot_and_single_seed(tmp_path):
    rng = np.random.default_rng(99)
    _write_fake(tmp_path, rng, zeroshot=False, seeds=(5,), shots=(2,))
    summary = plot_fewshot(load_results(tmp_path), tmp_path / "fewshot")
    assert summary["zeroshot"] is None
    assert summary["methods"]["CoOp"]["shots"][2]["std"] == 0.0
    assert "1 seed" in summary["methods"]["CoOp"]["label"]
    fig = draw_fewshot(summary)
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == "zeroshot"]
    assert "no zero-shot" in _all_text(fig)
    assert (tmp_path / "fewshot.png").stat().st_size > 0


def test_random_weights_title(tmp_path):
    """Random weights: the title and the y axis say the numbers are not accuracies."""
    _write_fake(tmp_path, np.random.default_rng(3), random_weights=True, shots=(1,), seeds=(1,))
    summary = summarize(load_results(tmp_path))
    ax = draw_fewshot(summary).axes[0]
    assert RANDOM_TITLE in ax.get_title()  # random weights, but not the demo
    assert "random weights: not CLIP" in ax.get_ylabel()  # the axis says it too (issue 38's grading)
    for f in tmp_path.rglob("*.json"):
        f.write_text(json.dumps({**json.loads(f.read_text()), "demo": True}))
    title = draw_fewshot(summarize(load_results(tmp_path))).axes[0].get_title()
    # the demo's images are synthetic: its figure is not titled Caltech101 (issue 29)
    assert "DEMO" in title and DEMO_TITLE in title and "synthetic" in title and "Caltech101" not in title


def test_random_weights_on_real_data_are_not_called_a_demo(tmp_path):
    _write_fake(tmp_path, np.random.default_rng(3), random_weights=True, shots=(1,), seeds=(1,))
    for f in tmp_path.rglob("*.json"):
        rec = json.loads(f.read_text())
        rec["demo"] = False
        f.write_text(json.dumps(rec))
    title = draw_fewshot(summarize(load_results(tmp_path))).axes[0].get_title()
    assert RANDOM_TITLE in title and "DEMO" not in title


def test_the_approximate_views_mode_is_named_in_the_legend(tmp_path):
    _write_fake(tmp_path, np.random.default_rng(4), shots=(1, 2), seeds=(1,))
    for f in (tmp_path / "coop").glob("*.json"):
        rec = json.loads(f.read_text())
        rec["augmentation"] = {"mode": "views", "views": 4}
        f.write_text(json.dumps(rec))
    assert "APPROXIMATE: --views 4" in summarize(load_results(tmp_path))["methods"]["CoOp"]["label"]


def test_empty_folder_raises(tmp_path):
    with pytest.raises(UserError, match="train_coop.py") as e:
        plot_fewshot(load_results(tmp_path), tmp_path / "fewshot", source=tmp_path)
    assert str(tmp_path) in str(e.value)
    assert not (tmp_path / "fewshot.png").exists()


def _script():
    spec = importlib.util.spec_from_file_location("scripts_plot", ROOT / "scripts" / "plot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script(tmp_path, capsys):
    assert matplotlib.get_backend().lower() == "agg"
    results = tmp_path / "res"
    _write_fake(results, np.random.default_rng(5))
    main = _script().main
    assert main(["--results", str(results)]) == 0
    assert (results / "fewshot.png").stat().st_size > 0 and (results / "fewshot.pdf").stat().st_size > 0
    assert main(["--results", str(results), "--out", str(tmp_path / "other" / "fig.png")]) == 0
    assert (tmp_path / "other" / "fig.png").is_file() and (tmp_path / "other" / "fig.pdf").is_file()
    err = capsys.readouterr().err
    assert "wrote" in err and "±" in err
    assert main(["--results", str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["--results", str(tmp_path / "empty")]) == 2
    assert "train_coop.py" in capsys.readouterr().err


def test_the_assignments_figure_is_the_star_and_coops_line_alone(tmp_path):
    """Issue 38: the figure the assignment asks for draws zero-shot and CoOp only; the baselines and block
    modifications go to a second figure, whose one "each seed" entry shows every method's hollow marker."""
    from matplotlib.legend_handler import HandlerTuple  # noqa: F401  (the tuple handle's handler)

    rng = np.random.default_rng(11)
    _write_fake(tmp_path, rng)
    _write_fake(tmp_path, rng, zeroshot=False, block_mod="adapter")
    loaded = load_results(tmp_path)
    alone = draw_fewshot(summarize(loaded, only=("CoOp",)))
    gids = {ln.get_gid() for ln in alone.axes[0].get_lines()}
    assert gids == {"zeroshot", "zeroshot-interval", "mean:CoOp", "seeds:CoOp", "interval:CoOp"}  # Wilson bars on both
    both = draw_fewshot(summarize(loaded))
    legend = both.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[-1] == "each seed (each method's small marker, set slightly apart)"
    handle = legend.legend_handles[-1] if hasattr(legend, "legend_handles") else legend.legendHandles[-1]
    markers = {ln.get_gid() for ln in both.axes[0].get_lines() if ln.get_gid().startswith("seeds:")}
    assert markers == {"seeds:CoOp", "seeds:CoOp+adapter"}
    from coop.report.plot import SEED_OFFSET

    xs = {g: sorted(set(ln.get_xdata())) for ln in both.axes[0].get_lines() for g in [ln.get_gid()] if g.startswith("seeds:")}
    assert np.allclose(np.array(xs["seeds:CoOp+adapter"]) - np.array(xs["seeds:CoOp"]), SEED_OFFSET)  # set apart ...
    mean_x = [ln.get_xdata() for ln in both.axes[0].get_lines() if ln.get_gid() == "mean:CoOp"][0]
    assert np.allclose(np.array(xs["seeds:CoOp"]) + SEED_OFFSET / 2, mean_x)  # ... around the mean, which stays on the tick
    # with more methods than SEEDS_UP_TO the comparison draws the means only (the seeds would crowd them)
    from coop.report.plot import SEEDS_UP_TO

    crowded = summarize(loaded)
    for i in range(SEEDS_UP_TO):
        crowded["methods"][f"CoOp+v{i}"] = dict(crowded["methods"]["CoOp+adapter"], label=f"v{i}", label_zh=f"v{i}")
    lines = draw_fewshot(crowded).axes[0].get_lines()
    assert not [ln for ln in lines if ln.get_gid().startswith("seeds:")]
    assert len([ln for ln in lines if ln.get_gid().startswith("mean:")]) == SEEDS_UP_TO + 2
    assert handle is not None
    plot_fewshot(loaded, tmp_path / "alone", only=("CoOp",))
    assert (tmp_path / "alone.png").is_file()


def test_chinese_labels_when_a_cjk_font_is_installed(tmp_path, monkeypatch):
    import coop.report.fonts as fonts

    monkeypatch.undo()
    fonts.cjk_family.cache_clear()
    if fonts.cjk_family() is None:
        pytest.skip("no CJK font here (apt-get install fonts-noto-cjk); the figures fall back to English")
    _write_fake(tmp_path, np.random.default_rng(2), random_weights=True, shots=(1,), seeds=(1,))
    ax = draw_fewshot(summarize(load_results(tmp_path))).axes[0]
    assert ax.get_xlabel() == "每类的标注训练图像数（shot）" and "随机权重" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "零样本 CLIP"


def test_without_a_cjk_font_the_labels_are_english_and_nothing_fails(tmp_path):
    from coop.report.fonts import label

    _write_fake(tmp_path, np.random.default_rng(4), shots=(1,), seeds=(1,))
    summary = plot_fewshot(load_results(tmp_path), tmp_path / "fewshot")
    ax = draw_fewshot(summary).axes[0]
    assert ax.get_xlabel() == "Number of labeled training examples per class" and label("中", "en") == "en"


def test_seeds_with_the_same_accuracy_say_how_many_markers_overlap(tmp_path):
    """Two seeds with one accuracy draw one marker: a "×2" beside it says so (issue 38's grading)."""
    res = tmp_path / "r"
    write_fake_result(zeroshot_result_path(res), _record("zeroshot", 0, 0, 50.0, method="zeroshot"))
    for k, accs in ((1, (60.0, 60.0, 61.0)), (2, (62.0, 63.0, 64.0))):
        for s, a in zip(SEEDS, accs):
            write_fake_result(coop_result_path(res, k, s), _record("coop", k, s, a))
    fig = draw_fewshot(summarize(load_results(res)))
    same = [t for t in fig.axes[0].texts if t.get_gid() == "same:CoOp"]
    assert [(t.get_text(), tuple(t.xy)) for t in same] == [("×2", (1, 60.0))]


def test_a_figure_drawn_again_in_the_process_is_the_same_bytes_as_a_fresh_drawing(tmp_path):
    """plot_fewshot draws a summary once per process (the sweep's fewshot.png and its report's fewshot_all.png are
    one figure): the second file is byte for byte what drawing it afresh gives."""
    import io

    import coop.report.plot as plot
    from coop.report.outputs import FIGURE_TITLE

    res = tmp_path / "r"
    _write_fake(res, np.random.default_rng(3))
    _write_fake(res, np.random.default_rng(4), zeroshot=False, block_mod="adapter")
    loaded = load_results(res)
    plot._RENDERED.clear()
    first = plot_fewshot(loaded, tmp_path / "a")
    second = plot_fewshot(loaded, tmp_path / "b")
    assert len(plot._RENDERED) == 1 and first["paths"] != second["paths"]
    buf = io.BytesIO()
    draw_fewshot(summarize(loaded, source=res)).savefig(buf, format="png", **plot.SAVE)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes() == buf.getvalue()
    plot_fewshot(loaded, tmp_path / "c", only=("CoOp",))  # another summary (CoOp alone): drawn anew
    assert len(plot._RENDERED) == 2


def test_a_coop_variant_never_wears_a_baselines_colour():
    """Issue 38's grading: CoOp+adapter and CLIP-Adapter were both orange in the comparison figure."""
    from coop.report.plot import baseline_styles, method_style

    order = ["CoOp", "CoOp+adapter", "CoOp+lora", *baseline_styles()]
    taken = {s[0] for s in baseline_styles().values()}
    variants = [method_style(m, order)[0] for m in ("CoOp+adapter", "CoOp+lora")]
    assert not set(variants) & taken and len(set(variants)) == 2


def test_plot_py_writes_the_assignments_figure_and_beside_it_the_comparison(tmp_path, monkeypatch):
    """scripts/plot.py, the sweep and the report draw through plot_figures: fewshot.png is the star and CoOp's
    line alone (the assignment's), fewshot_all.png adds the other methods -- only when there are any."""
    import coop.report.plot as plot

    res = tmp_path / "r"
    _write_fake(res, np.random.default_rng(6))
    drawn = []
    real = plot.plot_fewshot
    monkeypatch.setattr(plot, "plot_fewshot", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    assert _script().main(["--results", str(res)]) == 0
    assert [sorted(d["methods"]) for d in drawn] == [["CoOp"]] and not (res / "fewshot_all.png").exists()
    _write_fake(res, np.random.default_rng(7), zeroshot=False, block_mod="adapter")
    drawn.clear()
    assert _script().main(["--results", str(res)]) == 0
    assert [sorted(d["methods"]) for d in drawn] == [["CoOp"], ["CoOp", "CoOp+adapter"]]
    assert (res / "fewshot_all.png").stat().st_size > 0 and (res / "fewshot_all.pdf").stat().st_size > 0


def test_the_figure_memo_follows_the_font(tmp_path, monkeypatch):
    """The same summary drawn with and without a CJK font is two figures (Chinese or English labels), never the
    memo's other one."""
    import coop.report.fonts as fonts
    import coop.report.plot as plot

    res = tmp_path / "r"
    _write_fake(res, np.random.default_rng(8))
    loaded = load_results(res)
    plot._RENDERED.clear()
    plot_fewshot(loaded, tmp_path / "en")
    monkeypatch.setattr(fonts, "cjk_family", lambda: "Some CJK Sans")
    monkeypatch.setattr(plot, "use_cjk", lambda: True)  # labels in Chinese, whatever fonts this machine has
    plot_fewshot(loaded, tmp_path / "zh")
    assert len(plot._RENDERED) == 2
    assert (tmp_path / "en.png").read_bytes() != (tmp_path / "zh.png").read_bytes()


def test_the_comparison_figure_is_a_panel_per_group_with_coop_and_the_star_in_each():
    """Issue 38 (graders: eleven lines on one axis): the comparison figure has a panel for CoOp's block
    modifications and one per protocol the baselines' records carry (a new protocol gets its own); every
    method is in exactly one panel, drawn with its line there, and CoOp's line and the star are in every panel,
    on one shared y range; a check run (section 8's longer training) is in none."""
    from coop.report.plot import comparison_panels

    def recs(method, protocol=None, variant=None):
        return [_record("coop" if protocol is None else "baseline", k, s, 50 + k + s, method=method,
                        **({"protocol": protocol} if protocol else {}),
                        **({"config": {"n_ctx": 16, "class_token_position": "end", "variant": variant}} if variant else {}))
                for k in (1, 2, 4) for s in (1, 2, 3)]

    loaded = {"zeroshot": _record("zeroshot", 0, 0, 40.0, method="zeroshot"),
              "coop": {"CoOp": recs("CoOp"), "CoOp+adapter": recs("CoOp+adapter"),
                       "CoOp [epochs=20]": recs("CoOp [epochs=20]", variant="longer")},
              "baselines": {"Tip-Adapter": recs("Tip-Adapter", "fewshot-val"), "ZS-LP": recs("ZS-LP", "validation-free"),
                            "CLAP": recs("CLAP", "validation-free"), "Other": recs("Other", "made-up-protocol")}}
    panels = comparison_panels(loaded)
    assert [p["methods"] for p in panels] == [["CoOp+adapter"], ["Tip-Adapter"], ["ZS-LP", "CLAP"], ["Other"]]
    assert panels[-1]["title"] == "made-up-protocol"
    summary = summarize(loaded, only=("CoOp", *[m for p in panels for m in p["methods"]]))
    summary["panels"] = panels
    fig = draw_fewshot(summary)
    assert len(fig.axes) == len(panels)
    for ax, p in zip(fig.axes, panels):
        gids = {ln.get_gid() for ln in ax.get_lines()}
        assert {"zeroshot", "mean:CoOp"} | {f"mean:{m}" for m in p["methods"]} <= gids
        assert not {f"mean:{m}" for q in panels if q is not p for m in q["methods"]} & gids
        lo, hi = ax.get_ylim()  # the shared range holds every panel's lines, the star and CoOp's
        ys = [y for ln in ax.get_lines() for y in ln.get_ydata()]
        assert lo <= min(ys) and max(ys) <= hi and (lo, hi) == fig.axes[0].get_ylim()
    no_mods = {**loaded, "coop": {"CoOp": recs("CoOp")}}
    assert [p["methods"] for p in comparison_panels(no_mods)][0] == ["Tip-Adapter"]


def test_the_saved_figure_holds_its_whole_legend(tmp_path):
    """The legend sits right of the axes and can reach past the figure's edge (a grader found it cut off):
    the PNG written is as wide as the drawing's tight bounding box, which holds the legend."""
    import struct

    import coop.report.plot as plot

    _write_fake(tmp_path, np.random.default_rng(5))
    loaded = load_results(tmp_path)
    summary = summarize(loaded, only=("CoOp",))
    for key in ("label", "label_zh"):  # a long legend entry (a config label, missing seeds' remarks)
        summary["methods"]["CoOp"][key] += " (M=16, end; 4 shots: 2 of 3 seeds, a longer remark here)"
    (tmp_path / "fewshot.png").write_bytes(plot._rendered(summary)[".png"])
    width, height = struct.unpack(">II", (tmp_path / "fewshot.png").read_bytes()[16:24])
    fig = draw_fewshot(summary)
    fig.set_dpi(plot.SAVE["dpi"])  # text is measured at the saving dpi
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    legend = fig.axes[0].get_legend().get_window_extent(renderer)  # pixels at the figure's dpi
    tight = fig.get_tightbbox(renderer)  # inches
    dpi, pad = plot.SAVE["dpi"], plot.SAVE["pad_inches"]
    assert legend.x1 / fig.dpi > fig.get_size_inches()[0]  # this legend does reach past the figure's own edge
    assert legend.x1 / fig.dpi <= tight.x1 and width == pytest.approx((tight.width + 2 * pad) * dpi, abs=2)


def test_coops_bars_are_the_reports_interval_of_the_mean_over_images_and_seeds():
    """A grader: a bar over the test images alone leaves out the seeds' spread. With per-image answers the bar
    is the bootstrap over test images and seeds united with the seeds' t interval (appendix B's interval, of
    the accuracy itself); one run is Wilson's, as the star."""
    from coop.report.readings import mean_interval, wilson
    from coop.report.stats import _t_interval, difference_bootstrap

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 400)
    runs = []
    for s, p in zip((1, 2, 3), (0.6, 0.7, 0.8)):
        right = rng.random(400) < p
        pred = np.where(right, labels, (labels + 1) % 5)
        runs.append({"accuracy": 100 * right.mean(), "seed": s,
                     "test_predictions": {"index": list(range(400)), "label": labels.tolist(), "pred": pred.tolist()}})
    C = np.array([[int(p == y) for p, y in zip(r["test_predictions"]["pred"], labels)] for r in runs], dtype=np.int8)
    boot = difference_bootstrap(C, seed=0)["ci"]
    t = _t_interval(np.array([r["accuracy"] for r in runs]), 0.95)
    got = mean_interval(runs)
    assert got == pytest.approx((max(0, min(boot[0], t[0])), min(100, max(boot[1], t[1]))))
    assert got[0] < np.mean([r["accuracy"] for r in runs]) < got[1]
    assert got[1] - got[0] > wilson(C.mean() * 400, 400)[1] - wilson(C.mean() * 400, 400)[0]  # wider: the seeds count
    assert mean_interval(runs[:1]) == pytest.approx(wilson(C[0].sum(), 400))


def test_the_comparison_figure_names_only_the_bars_it_draws(tmp_path):
    """A grader: the comparison figure's legend named CoOp's interval bars, which only the assignment's figure
    draws; there the star's bar is named as zero-shot's alone."""
    from coop.report.plot import comparison_panels

    _write_fake(tmp_path, np.random.default_rng(6))
    _write_fake(tmp_path, np.random.default_rng(7), zeroshot=False, block_mod="adapter")
    loaded = load_results(tmp_path)
    panels = comparison_panels(loaded)
    summary = summarize(loaded, only=("CoOp", *[m for p in panels for m in p["methods"]]))
    summary["panels"] = panels
    fig = draw_fewshot(summary)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert "zero-shot's 95% Wilson interval (test images)" in labels and not any("CoOp: test images" in x for x in labels)
    assert not any(c.get_gid() == "interval:CoOp" for ax in fig.axes for c in ax.collections)
