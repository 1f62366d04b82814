"""Issue 37, item 3: a data set is one record (coop.data.folders.Dataset), Caltech101 one of them and a user's
own images in class folders, described by a small JSON file, another -- run end to end by the same sweep."""
from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from coop.data.dataset import load_dataset, read_dataset
from coop.utils.errors import UserError
from conftest import ROOT, load_script
from imports import PACKAGE, imports_of, module_names

TEMPLATE = "a drawing of a {}."  # not Caltech101's: the zero-shot prompts must use it


def test_no_module_outside_data_imports_the_caltech101_module():
    """The rest of the package (and every script) reaches a data set through coop.data.dataset.load_dataset."""
    outside = [f"coop.{n}" for n, p in module_names().items()
               if not n.startswith("data.") and n != "data" and "data.caltech101" in imports_of(n, p)]
    for script in sorted((ROOT / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n == "coop.data.caltech101" for n in names) or (
                    isinstance(node, ast.ImportFrom) and node.module == "coop.data"
                    and any(a.name == "caltech101" for a in node.names)):
                outside.append(f"scripts/{script.name}")
    assert not outside, f"import coop.data.caltech101 from outside coop/data/: {outside}"


def test_the_model_stage_does_not_import_data():
    """The prompt learner's words for a class come from above (prompt_name=exp.dataset.prompt_name)."""
    found = {n: sorted(d for d in imports_of(n, p) if d.split(".")[0] == "data")
             for n, p in module_names().items() if n.split(".")[0] == "model"}
    assert not any(found.values()), found
    assert (PACKAGE / "model" / "prompt_learner.py").is_file()


def test_caltech101_is_one_record():
    ds = load_dataset("caltech101")
    assert ds.image_dir == "101_ObjectCategories" and ds.template == "a photo of a {}."
    assert set(ds.left_out) == {"BACKGROUND_Google", "Faces_easy"} and dict(ds.renamed)["airplanes"] == "airplane"
    assert ds.prompt_name("car_side") == "car side" and ds.published == "caltech101"
    assert ds.split == str(ROOT / "splits" / "caltech101.json") and ds.images == str(ROOT / "data")
    assert ds.identity().startswith("caltech101@") and load_dataset(ds) is ds


def write_dataset(folder: Path, **over) -> Path:
    """A synthetic data set of its own: other folder and class names, a left-out and a renamed folder."""
    from coop.data.synthetic import make_synthetic_data

    if not (folder / "photos").is_dir():
        make_synthetic_data(folder, classes=("Kites", "red_sun", "grey_cloud", "green_tree"), per_class=6,
                            image_dir="photos", left_out=("unsorted",))
    spec = {"name": "shapes", "images": "photos", "split": "shapes_split.json", "template": TEMPLATE,
            "left_out": ["unsorted"], "renamed": {"Kites": "kite"}, **over}
    path = folder / "shapes.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def test_a_dataset_json_is_read_relative_to_itself(tmp_path):
    path = write_dataset(tmp_path)
    ds = read_dataset(path)
    assert (ds.name, ds.image_dir, ds.template) == ("shapes", "photos", TEMPLATE)
    assert ds.images == str(tmp_path / "photos") and ds.split == str(tmp_path / "shapes_split.json")
    classes = ds.list_classes(ds.find_image_root(tmp_path))  # found by its name below another --data-root
    assert [c.classname for c in classes] == ["kite", "green_tree", "grey_cloud", "red_sun"]
    assert [c.prompt_name for c in classes][1] == "green tree"


def test_the_identity_is_the_settings_not_the_place(tmp_path):
    """A moved copy of the same JSON is the same data set; another template is another (its numbers differ)."""
    from coop.methods.zeroshot import ZeroShotConfig

    a = write_dataset(tmp_path / "a")
    b = tmp_path / "b.json"
    b.write_text(a.read_text(encoding="utf-8").replace('"photos"', f'"{tmp_path / "a" / "photos"}"'), encoding="utf-8")
    ident = ZeroShotConfig(dataset=str(a)).identity()["dataset"]
    assert ident.startswith("shapes@") and ZeroShotConfig(dataset=str(b)).identity()["dataset"] == ident
    assert ident != ZeroShotConfig().identity()["dataset"]
    other = write_dataset(tmp_path / "a", template="a sketch of a {}.")
    assert ZeroShotConfig(dataset=str(other)).identity()["dataset"] != ident
    assert ZeroShotConfig().identity()["dataset"] == load_dataset("caltech101").identity()


@pytest.mark.parametrize("text,says", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "one JSON object"),
    ('{"name": "x", "images": "i", "split": "s.json"}', "lacks 'template'"),
    ('{"name": "x", "images": "i", "split": "s.json", "template": "a {} of {}"}', "exactly one '{}'"),
    ('{"name": "x", "images": "i", "split": "s.json", "template": "a {}.", "templat": 1}', "unknown key 'templat'"),
    ('{"name": "my photos", "images": "i", "split": "s.json", "template": "a {}."}', "letters, digits"),
    ('{"name": "x", "images": 3, "split": "s.json", "template": "a {}."}', "'images' must be a non-empty string"),
    ('{"name": "x", "images": "i", "split": "s.json", "template": "a {}.", "prompt_words": "camel"}', "as_is"),
    ('{"name": "x", "images": "i", "split": "s.json", "template": "a {}.", "renamed": ["a"]}', "renamed must map"),
])
def test_a_malformed_dataset_json_is_one_line_naming_the_file(tmp_path, text, says):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_dataset(str(path))
    msg = str(e.value)
    assert says in msg and str(path) in msg and "\n" not in msg


@pytest.mark.parametrize("spec,says", [("caltech102", "is unknown: use one of caltech101"),
                                       ("nowhere/mine.json", "no such file")])
def test_an_unknown_dataset_is_one_line(tmp_path, capsys, spec, says):
    with pytest.raises(UserError, match=says):
        load_dataset(spec)
    run_all = load_script("run_all")  # as the user meets it: one error line, before anything runs
    assert run_all.main(["--dataset", spec, "--model", "random:tiny", "--results", str(tmp_path / "r"),
                         "--print-commands"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and says in err[0]
    assert not (tmp_path / "r").exists()


def test_the_demo_takes_no_dataset(tmp_path, capsys):
    path = write_dataset(tmp_path / "d")
    assert load_script("run_all").main(["--demo", "--dataset", str(path), "--results", str(tmp_path)]) == 2
    assert "cannot take --dataset" in capsys.readouterr().err


def test_the_sweep_runs_end_to_end_on_a_second_dataset(tmp_path, capsys):
    """The acceptance test: images in class folders, a CoOp-format split of their own (made by make_split from
    the JSON), a JSON naming them and another template; run_all with --dataset only (no --data-root or
    --split-file: the JSON names them) writes the records, the figure and the report, each record naming
    the data set, and zero-shot CLIP prompted with the JSON's template."""
    from coop.data.split import read_split
    from coop.runs.results import read_result

    t0 = time.time()
    path = write_dataset(tmp_path / "mine")
    assert load_script("make_split").main(["--dataset", str(path), "--fewshot-seeds", "1", "--fewshot-shots", "1"]) == 0
    split = read_split(tmp_path / "mine" / "shapes_split.json")
    assert split.classnames == ["kite", "green_tree", "grey_cloud", "red_sun"]
    assert not any(rel.startswith("unsorted/") for rel, _, _ in split.train + split.val + split.test)

    results = tmp_path / "results"
    argv = ["--dataset", str(path), "--model", "random:tiny", "--results", str(results),
            "--cache-dir", str(tmp_path / "cache"), "--shots", "1", "--seeds", "1", "--epochs", "2",
            "--baselines", "lp", "--block-mod", "none", "--workers", "0", "--device", "cpu"]
    assert load_script("run_all").main(argv) == 0, capsys.readouterr().err
    files = [results / "zeroshot.json", results / "coop" / "shots1_seed1.json",
             results / "baselines" / "linear_probe" / "shots1_seed1.json"]
    records = [read_result(p) for p in files]
    for rec in records:
        assert rec["dataset"]["name"] == "shapes" and rec["dataset"]["template"] == TEMPLATE
        assert rec["identity"]["dataset"] == read_dataset(path).identity() and rec["config"]["dataset"] == str(path)
        assert rec["classnames"] == split.classnames and rec["split"]["sha256"] == split.sha256
    assert records[0]["prompts"] == [TEMPLATE]  # zero-shot CLIP used the JSON's template, not CoOp's
    assert (results / "fewshot.png").is_file() and (results / "REPORT_demo.md").is_file()  # random weights
    from coop.report.plot import summarize, title_of
    from coop.runs.results import load_results

    assert title_of(summarize(load_results(results))).startswith("shapes — ")  # the figure names it, not Caltech101

    capsys.readouterr()
    assert load_script("run_all").main(argv) == 0  # resumable: nothing left to do
    assert "0 to do" in capsys.readouterr().err or all(read_result(p)["run_id"] == r["run_id"]
                                                       for p, r in zip(files, records))
    print(f"the second data set, end to end twice: {time.time() - t0:.1f} s")  # seconds on an idle machine


def test_a_record_made_before_datasets_were_records_is_caltech101s(tmp_path):
    """An old record's identity has no dataset: it is Caltech101's, so a changed input redoes it (the sweep)
    instead of refusing it as other settings; to another data set it is other settings."""
    from coop.methods.zeroshot import ZeroShotConfig
    from coop.runs.results import existing
    from conftest import write_fake_result

    cfg = ZeroShotConfig()
    old = {k: v for k, v in cfg.identity().items() if k != "dataset"}
    path = tmp_path / "zeroshot.json"
    write_fake_result(path, {"kind": "zeroshot", "method": "Zero-shot CLIP", "shots": 0, "seed": None, "accuracy": 50.0,
                             "n_test": 2, "per_class_accuracy": {"a": 50.0}, "model": {}, "random_weights": True,
                             "split": {}, "config": {}, "environment": {}, "wall_time_s": 0.0,
                             "identity": old, "inputs": {"code_sha256": "old"}})
    assert existing(path, cfg.identity(), {"code_sha256": "new"}, rerun_changed=True) is None  # stale: redone
    assert existing(path, cfg.identity(), {"code_sha256": "old"}) is not None  # the same run
    mine = ZeroShotConfig(dataset=str(write_dataset(tmp_path / "d")))
    with pytest.raises(UserError, match="other settings.*dataset"):
        existing(path, mine.identity(), {"code_sha256": "old"})
