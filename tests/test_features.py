"""The image-feature cache is exact and never stale (issue 4).

Cached features must be what CLIP computes from its own preprocessing; training views must be a
function of (aug seed, image path, view index) only; and a cache made with other weights, another
transform, an older version of an image file, or a file describing something else must never be
reused. Concurrent writers must merge, not overwrite each other.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import coop.features as features
from coop.clip_loader import load_clip, random_clip
from coop.data import load_image
from coop.features import FeatureCache, View, file_key
from coop.hashing import state_dict_sha256

ROOT = Path(__file__).resolve().parents[1]
RES = 64  # random:tiny's input resolution


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest row-wise relative difference."""
    return ((a - b).norm(dim=-1) / b.norm(dim=-1)).max().item()


@pytest.fixture(scope="module")
def clip_tiny():
    model, preprocess = load_clip("random:tiny", device="cpu")
    assert model.visual.input_resolution == RES
    return model, preprocess


@pytest.fixture(scope="module")
def test_rels(synthetic_split):
    return [rel for rel, _, _ in synthetic_split.test]


@torch.no_grad()
def encode_fresh(model, preprocess, paths) -> torch.Tensor:
    """CLIP's own way: its transform on the PIL image, one image at a time, no cache."""
    return torch.cat([model.encode_image(preprocess(load_image(p)).unsqueeze(0)) for p in paths])


def test_cached_test_features_are_clips_own(clip_tiny, synthetic_root, test_rels, tmp_path, monkeypatch):
    model, preprocess = clip_tiny
    cache = FeatureCache(tmp_path, model.clip_info.sha256)
    feats, index, bad = cache.get(model, synthetic_root, test_rels, View(RES))
    assert bad == {} and index == list(range(len(test_rels)))
    assert feats.shape == (len(test_rels), model.text_projection.shape[1])

    test_view = View(RES)
    for rel in test_rels:  # the input tensor is CLIP's transform, bit for bit (grayscale image included)
        assert torch.equal(test_view(load_image(synthetic_root / rel), rel), preprocess(Image.open(synthetic_root / rel)))
    assert rel_err(feats, encode_fresh(model, preprocess, [synthetic_root / r for r in test_rels])) < 1e-5

    # A new cache object reads the same features back from disk without encoding anything.
    monkeypatch.setattr(features, "encode_images", lambda *a, **k: pytest.fail("recomputed a cached feature"))
    again, index2, _ = FeatureCache(tmp_path, model.clip_info.sha256).get(model, synthetic_root, test_rels[::-1], View(RES))
    assert index2 == list(range(len(test_rels)))
    assert torch.equal(again, feats.flip(0))


def test_train_views_depend_on_path_and_index_only(synthetic_root, synthetic_split):
    rels = [rel for rel, _, _ in synthetic_split.train[:12]]
    v0, v0_again, v1 = View(RES, 0), View(RES, 0), View(RES, 1)
    for rel in rels:
        img = load_image(synthetic_root / rel)
        torch.manual_seed(123)
        a = v0(img, rel)
        state = torch.get_rng_state()
        torch.manual_seed(456)  # the global random state plays no part...
        b = v0_again(img, rel)
        assert torch.equal(a, b)
        torch.manual_seed(123)
        v0(img, rel)
        assert torch.equal(torch.get_rng_state(), state)  # ...and is not consumed
        assert not torch.equal(a, v1(img, rel))  # another view index is another crop/flip
        assert a.shape == (3, RES, RES)
    assert len({View(RES).id, v0.id, v1.id, View(RES, 0, aug_seed=1).id}) == 4
    assert v0.id == v0_again.id


def test_train_view_features_do_not_depend_on_batch_or_order(clip_tiny, synthetic_root, synthetic_split):
    model, _ = clip_tiny
    rels = [rel for rel, _, _ in synthetic_split.train[:20]]
    sha = model.clip_info.sha256
    a, ia, _ = FeatureCache(None, sha).get(model, synthetic_root, rels, View(RES, 0), batch_size=32)
    b, ib, _ = FeatureCache(None, sha).get(model, synthetic_root, rels[::-1], View(RES, 0), batch_size=3)
    assert ia == ib == list(range(len(rels)))
    assert rel_err(b.flip(0), a) < 1e-5  # same views; the encoder's batching changes only rounding
    c, _, _ = FeatureCache(None, sha).get(model, synthetic_root, rels, View(RES, 1))
    assert rel_err(c, a) > 1e-3  # view 1 is not view 0


def test_other_weights_never_share_a_cache(clip_tiny, synthetic_root, test_rels, tmp_path):
    model_a, preprocess = clip_tiny
    model_b = random_clip("tiny", seed=1)
    sha_b = state_dict_sha256(model_b.state_dict())
    assert sha_b != model_a.clip_info.sha256
    rels = test_rels[:8]
    cache_a, cache_b = FeatureCache(tmp_path, model_a.clip_info.sha256), FeatureCache(tmp_path, sha_b)
    assert cache_a.dir != cache_b.dir
    fa, _, _ = cache_a.get(model_a, synthetic_root, rels, View(RES))
    fb, _, _ = cache_b.get(model_b, synthetic_root, rels, View(RES))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cache_a.dir.name, cache_b.dir.name])
    assert rel_err(fb, encode_fresh(model_b, preprocess, [synthetic_root / r for r in rels])) < 1e-5
    assert rel_err(fb, fa) > 1e-2


def test_other_transform_is_another_cache_entry(clip_tiny, synthetic_root, synthetic_split, tmp_path):
    model, _ = clip_tiny
    ids = {View(RES).id, View(96).id, View(RES, 0).id, View(RES, 0, aug_seed=1).id, View(RES, 1).id,
           View(RES, 0, scale=(0.5, 1.0)).id}
    assert len(ids) == 6
    rels = [rel for rel, _, _ in synthetic_split.train[:10]]
    cache = FeatureCache(tmp_path, model.clip_info.sha256)
    s0, _, _ = cache.get(model, synthetic_root, rels, View(RES, 0, aug_seed=0))
    s1, _, _ = cache.get(model, synthetic_root, rels, View(RES, 0, aug_seed=1))
    fresh, _, _ = FeatureCache(None, model.clip_info.sha256).get(model, synthetic_root, rels, View(RES, 0, aug_seed=1))
    assert torch.equal(s1, fresh) and rel_err(s1, s0) > 1e-3
    assert len(list(cache.dir.glob("*.pt"))) == 2


def test_changed_image_file_is_recomputed(clip_tiny, synthetic_root, tmp_path):
    model, preprocess = clip_tiny
    root = tmp_path / "images"
    shutil.copytree(synthetic_root / "anchor", root / "anchor")
    rels = ["anchor/image_0001.jpg", "anchor/image_0002.jpg"]
    cache_dir = tmp_path / "cache"
    cache = FeatureCache(cache_dir, model.clip_info.sha256)
    old, _, _ = cache.get(model, root, rels, View(RES))
    # Same path, new bytes (another class's picture): the old feature must not come back.
    shutil.copyfile(synthetic_root / "yin_yang" / "image_0001.jpg", root / rels[0])
    expected = encode_fresh(model, preprocess, [root / rels[0]])[0]
    for c in (cache, FeatureCache(cache_dir, model.clip_info.sha256)):  # in memory and from disk
        new, _, _ = c.get(model, root, rels, View(RES))
        assert rel_err(new[:1], expected[None]) < 1e-5 and rel_err(new[:1], old[:1]) > 1e-3
        assert torch.equal(new[1], old[1])  # the unchanged image keeps its feature


def test_only_unreadable_images_give_no_features_and_no_cache_file(clip_tiny, tmp_path):
    model, _ = clip_tiny
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "x.jpg").write_bytes(b"not an image")
    cache = FeatureCache(tmp_path / "cache", model.clip_info.sha256)
    feats, index, bad = cache.get(model, tmp_path / "images", ["a/x.jpg"], View(RES))
    assert feats.numel() == 0 and index == [] and list(bad) == ["a/x.jpg"]
    assert not cache._path(View(RES)).exists()


@pytest.mark.parametrize("kind", ["other description", "not a cache file"])
def test_cache_file_that_does_not_match_is_ignored(clip_tiny, synthetic_root, test_rels, tmp_path, caplog, kind):
    model, preprocess = clip_tiny
    rels = test_rels[:4]
    view = View(RES)
    cache = FeatureCache(tmp_path, model.clip_info.sha256)
    path = cache._path(view)
    path.parent.mkdir(parents=True)
    keys = [file_key(synthetic_root, r) for r in rels]
    if kind == "other description":  # right keys, wrong transform: zeros must not be served
        torch.save({"description": {**view.description, "resolution": 96}, "keys": keys,
                    "features": torch.zeros(len(keys), model.text_projection.shape[1])}, path)
    else:
        path.write_bytes(b"half a torch file")
    with caplog.at_level(logging.WARNING):
        feats, _, _ = cache.get(model, synthetic_root, rels, view)
    assert str(path) in caplog.text and "ignoring" in caplog.text
    assert rel_err(feats, encode_fresh(model, preprocess, [synthetic_root / r for r in rels])) < 1e-5
    saved = torch.load(path, weights_only=True)  # rewritten as a valid cache of this view
    assert saved["description"] == view.description and sorted(saved["keys"]) == sorted(keys)


WORKER = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from coop import load_clip
from coop.features import FeatureCache, View
cache_dir, image_root, rels_file, me, other = sys.argv[1:6]
rels = json.loads(Path(rels_file).read_text())
model, _ = load_clip("random:tiny", device="cpu")
cache = FeatureCache(cache_dir, model.clip_info.sha256)
Path(me).touch()  # a barrier: start writing only when the other worker is ready too
while not Path(other).exists():
    time.sleep(0.01)
for i in range(0, len(rels), 2):  # many small get() calls: many interleaved writes
    cache.get(model, Path(image_root), rels[i:i + 2], View(64), batch_size=2)
"""


def test_concurrent_writers_leave_a_complete_cache(clip_tiny, synthetic_root, synthetic_split, tmp_path):
    model, preprocess = clip_tiny
    rels = sorted(rel for part in ("train", "val", "test") for rel, _, _ in getattr(synthetic_split, part))
    lists = [rels[: 2 * len(rels) // 3], rels[len(rels) // 3:][::-1]]  # overlapping, opposite orders
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT)))
    cache_dir = tmp_path / "cache"
    procs = []
    for i, lst in enumerate(lists):
        (tmp_path / f"rels{i}.json").write_text(json.dumps(lst))
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(cache_dir), str(synthetic_root), str(tmp_path / f"rels{i}.json"),
             str(tmp_path / f"ready{i}"), str(tmp_path / f"ready{1 - i}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + 120
    for p in procs:
        out, err = p.communicate(timeout=max(1, deadline - time.time()))
        assert p.returncode == 0, err

    cache = FeatureCache(cache_dir, model.clip_info.sha256)
    path = cache._path(View(RES))
    saved = torch.load(path, weights_only=True)
    assert sorted(saved["keys"]) == sorted(file_key(synthetic_root, r) for r in rels)  # every entry, once
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    def fail(*a, **k):
        raise AssertionError("an entry was missing from the merged cache")

    orig = features.encode_images
    features.encode_images = fail
    try:
        feats, index, bad = cache.get(model, synthetic_root, rels, View(RES))
    finally:
        features.encode_images = orig
    assert bad == {} and len(index) == len(rels)
    assert rel_err(feats, encode_fresh(model, preprocess, [synthetic_root / r for r in rels])) < 1e-5
