import collections
import json

import pytest

from conftest import COOP_SPLIT, REAL_IMAGES, ROOT, needs_real_data
from coop.utils.errors import UserError
from coop.data.split import (PARTS, check_split_matches_data, dumps_split, fewshot, make_split, read_split,
                        write_fewshot, write_split)
from coop.data.caltech101 import list_classes


def test_split_is_deterministic_and_in_coop_format(synthetic_root, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_split(make_split(synthetic_root), a)
    write_split(make_split(synthetic_root), b)
    assert a.read_bytes() == b.read_bytes()
    obj = json.loads(a.read_text())
    assert set(obj) == set(PARTS)
    rel, label, name = obj["train"][0]
    assert isinstance(rel, str) and isinstance(label, int) and isinstance(name, str)
    assert make_split(synthetic_root, seed=2) != make_split(synthetic_root, seed=1)


def test_split_is_stratified_and_disjoint(synthetic_root):
    split = make_split(synthetic_root)
    sets = {p: {rel for rel, _, _ in split[p]} for p in PARTS}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    counts = {p: collections.Counter(label for _, label, _ in split[p]) for p in PARTS}
    for c in list_classes(synthetic_root):
        n = {p: counts[p][c.label] for p in PARTS}
        total = sum(n.values())
        assert total == 12
        assert n == {"train": 6, "val": 2, "test": 4}  # round(12*.5), round(12*.2), the rest


def test_fewshot_sets_are_nested_and_per_class(synthetic_split):
    for seed in (1, 2, 3):
        sets = {k: fewshot(synthetic_split.train, k, seed) for k in (1, 2, 4)}
        for k, items in sets.items():
            assert collections.Counter(label for _, label, _ in items) == {c: k for c in range(10)}
        as_set = {k: {it[0] for it in v} for k, v in sets.items()}
        assert as_set[1] < as_set[2] < as_set[4]
        train = {it[0] for it in synthetic_split.train}
        assert as_set[4] <= train
    assert {it[0] for it in fewshot(synthetic_split.train, 4, 1)} != {it[0] for it in fewshot(synthetic_split.train, 4, 2)}


@pytest.mark.parametrize("shots", [7, 0, -1])
def test_bad_shots_are_clear_errors(synthetic_split, shots):
    with pytest.raises(UserError, match="--shots"):
        fewshot(synthetic_split.train, shots, 1)


def test_fewshot_file_is_written_next_to_the_split(synthetic_split):
    path = write_fewshot(synthetic_split, 2, 1)
    obj = json.loads(path.read_text())
    assert path.parent.name == "fewshot" and obj["shots"] == 2 and obj["seed"] == 1
    assert obj["train"] == fewshot(synthetic_split.train, 2, 1)
    assert obj["split_sha256"] == synthetic_split.sha256


def test_split_that_does_not_match_the_data_is_an_error(synthetic_root, synthetic_split, tmp_path):
    classes = list_classes(synthetic_root)
    check_split_matches_data(synthetic_split, synthetic_root, classes)  # the right data passes
    obj = {p: [list(i) for i in getattr(synthetic_split, p)] for p in PARTS}
    obj["test"][0][0] = "anchor/image_9999.jpg"
    (tmp_path / "missing.json").write_text(dumps_split(obj))
    with pytest.raises(UserError, match="missing"):
        check_split_matches_data(read_split(tmp_path / "missing.json"), synthetic_root, classes)
    obj["test"][0][0] = "unicorn/image_0001.jpg"
    (tmp_path / "unknown.json").write_text(dumps_split(obj))
    with pytest.raises(UserError, match="unicorn"):
        check_split_matches_data(read_split(tmp_path / "unknown.json"), synthetic_root, classes)


@pytest.mark.parametrize("text", ["{not json", '{"train": []}', '{"train": [[1, 2]], "val": [], "test": []}'])
def test_malformed_split_file_is_a_clear_error(tmp_path, text):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(UserError, match=str(p)):
        read_split(p)


@needs_real_data
def test_committed_split_regenerates_byte_identically(tmp_path):
    out = tmp_path / "caltech101.json"
    write_split(make_split(REAL_IMAGES), out)
    assert out.read_bytes() == (ROOT / "splits" / "caltech101.json").read_bytes()


@needs_real_data
def test_coop_published_split_reads_and_matches_the_real_data():
    split = read_split(COOP_SPLIT)
    assert (len(split.train), len(split.val), len(split.test)) == (4128, 1649, 2465)
    classes = list_classes(REAL_IMAGES)
    check_split_matches_data(split, REAL_IMAGES, classes)
    # the same 100 classes, names and labels as our discovery of the folders
    assert split.classnames == [c.classname for c in classes]
    ours = read_split(ROOT / "splits" / "caltech101.json")
    assert ours.classnames == split.classnames


def test_the_published_tables_note_counts_overlap_only_for_the_split_it_was_counted_on(tmp_path):
    from coop.methods.departures import COOP_SPLIT_SHA256
    from coop.report import published
    from coop.utils.hashing import sha256_file

    ours = sha256_file(str(ROOT / "splits" / "caltech101.json"))
    note = "\n".join(published.markdown(86.0, split_sha=ours))
    assert "1,217 张" in note and "之差可能来自" in note
    same = "\n".join(published.markdown(86.0, split_sha=COOP_SPLIT_SHA256))
    assert "测试图像相同" in same and "重跑" not in same and "无法配对检验" in same and "测试图像不同" not in same
    assert "没有可比性" in "\n".join(published.markdown(10.0, split_sha=ours, random_weights=True, demo=True))
    other = "\n".join(published.markdown(86.0, split_sha="0" * 64, random_weights=True))
    assert "重叠没有计算" in other and "1,217" not in other and "我们的零样本" not in other


@needs_real_data
def test_the_overlap_counts_are_those_of_the_two_split_files():
    from coop.report.published import COOP_TEST_IN_OURS

    coop_test = {rel for rel, _, _ in read_split(COOP_SPLIT).test}
    ours = read_split(ROOT / "splits" / "caltech101.json")
    counted = {part: len(coop_test & {rel for rel, _, _ in getattr(ours, part)}) for part in ("train", "val", "test")}
    assert counted == COOP_TEST_IN_OURS
