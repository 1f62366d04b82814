import hashlib
import urllib.error
import urllib.request

import pytest
import torch

from coop.model.clip_loader import RANDOM_ARCHS, load_clip, random_clip
from coop.utils.errors import UserError


def test_random_tiny_has_the_advertised_shapes_and_is_seeded():
    m = random_clip("tiny")
    spec = RANDOM_ARCHS["tiny"]
    assert m.text_projection.shape == (spec["transformer_width"], spec["embed_dim"])
    assert len(m.transformer.resblocks) == spec["transformer_layers"]
    assert m.transformer.resblocks[0].attn.num_heads == spec["transformer_heads"]
    assert not m.training and m.dtype == torch.float32
    a, b, c = random_clip("tiny", seed=0), random_clip("tiny", seed=0), random_clip("tiny", seed=1)
    assert torch.equal(a.text_projection, b.text_projection)
    assert not torch.equal(a.text_projection, c.text_projection)


def test_random_rn50_spec_is_the_real_rn50():
    spec = RANDOM_ARCHS["RN50"]
    assert (spec["embed_dim"], spec["vision_layers"], spec["vision_width"], spec["image_resolution"]) == (1024, (3, 4, 6, 3), 64, 224)
    assert (spec["transformer_layers"], spec["transformer_width"], spec["transformer_heads"]) == (12, 512, 8)
    assert (spec["context_length"], spec["vocab_size"]) == (77, 49408)


def test_saved_state_dict_goes_through_clip_load(tmp_path, tiny_clip, monkeypatch):
    import clip

    path = tmp_path / "tiny.pt"
    torch.save(tiny_clip.state_dict(), path)
    calls = []
    real_load = clip.load
    monkeypatch.setattr(clip, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    model, preprocess = load_clip(str(path), device="cpu")
    assert calls and calls[0][0] == str(path)  # CLIP's own loader did the work
    sd, ref = model.state_dict(), tiny_clip.state_dict()
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)
    assert model.clip_info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not model.clip_info.random_weights
    assert preprocess.transforms[1].size == (64, 64)  # CLIP's transform at the model's resolution


def test_random_model_by_name_says_it_is_random():
    model, _ = load_clip("random:tiny", device="cpu")
    assert model.clip_info.random_weights and model.clip_info.name == "random:tiny"
    with pytest.raises(UserError, match="random:RN50"):
        load_clip("random:ViT-H", device="cpu")


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", "truncated"])
def test_file_that_is_not_a_clip_checkpoint_is_a_clear_error(tmp_path, tiny_clip, content):
    path = tmp_path / "model.pt"
    if content == "truncated":
        torch.save(tiny_clip.state_dict(), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="not a CLIP checkpoint"):
        load_clip(str(path), device="cpu")
    torch.save({"weight": torch.zeros(3)}, path)  # a real checkpoint, of something else
    with pytest.raises(UserError, match="not a CLIP checkpoint"):
        load_clip(str(path), device="cpu")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_clip(str(tmp_path / "nope.pt"), device="cpu")


def _offline(*args, **kwargs):
    raise urllib.error.URLError("no network")


def test_offline_without_cached_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    with pytest.raises(UserError) as e:
        load_clip("RN50", device="cpu", download_root=str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path / "RN50.pt") in msg and "--model" in msg
    assert not (tmp_path / "RN50.pt").exists()  # no partial file left behind


def test_cached_weights_with_wrong_checksum_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    (tmp_path / "RN50.pt").write_bytes(b"half of a download")
    with pytest.raises(UserError, match="truncated or corrupted"):
        load_clip("RN50", device="cpu", download_root=str(tmp_path))


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="--device cpu"):
        load_clip("random:tiny", device="cuda")
