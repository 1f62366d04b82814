"""CoOp training, its schedule, and the result files of training and zero-shot (issue 3)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import clip
from coop.model.clip_loader import load_clip, random_clip
from coop.runs.experiment import Experiment
from coop.utils.hashing import sha256_file
from coop.model.prompt_learner import CoOp
from coop.runs.results import REQUIRED_KEYS, read_result
from coop.utils.seed import set_seed
from coop.data.split import fewshot
from coop.methods.train import batches, fit, load_context, lr_at_epoch, run_coop, training_set
from coop.methods.train_config import TrainConfig
from conftest import load_script

EPOCHS = 5


train_coop, zeroshot = load_script("train_coop"), load_script("zeroshot")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def common(synthetic_root, synthetic_split, work):
    return ["--model", "random:tiny", "--data-root", str(synthetic_root), "--split-file", synthetic_split.path,
            "--device", "cpu", "--cache-dir", str(work / "cache")]


@pytest.fixture(scope="module")
def exp(synthetic_root, synthetic_split, work):
    return Experiment("random:tiny", synthetic_root, synthetic_split.path, device="cpu", cache_dir=work / "cache")


@pytest.fixture(scope="module")
def trained(common, work):
    """One short CoOp run through scripts/train_coop.py: (result path, record)."""
    results = work / "results"
    argv = common + ["--results", str(results), "--shots", "2", "--seed", "1", "--epochs", str(EPOCHS),
                     "--views", "2"]
    assert train_coop.main(argv) == 0
    path = results / "coop" / "shots2_seed1.json"
    return path, json.loads(path.read_text())


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_only_the_context_learns_and_clip_is_untouched(exp, tmp_path):
    reference = random_clip("tiny").state_dict()  # the same weights, built independently
    assert _same_state(_state(exp.model), reference)
    coop = CoOp(exp.model, exp.classnames, n_ctx=4, ctx_init="a photo of a")
    assert [id(p) for p in coop.trainable_parameters()] == [id(coop.ctx)]
    ctx0 = coop.ctx.detach().clone()
    cfg = TrainConfig(shots=2, seed=1, epochs=3, views=2, lr=0.01)
    train = training_set(exp, cfg)
    fit(coop, train, cfg, progress=False)
    assert coop.ctx.grad is not None and coop.ctx.grad.abs().sum() > 0
    assert not torch.equal(coop.ctx.detach(), ctx0)
    assert all(p.grad is None and not p.requires_grad for p in exp.model.parameters())
    assert _same_state(_state(exp.model), reference)  # keys and values

    rec = run_coop(TrainConfig(shots=1, seed=3, epochs=2, views=2, results=str(tmp_path)), exp, progress=False)
    assert rec["n_trainable"] == coop.ctx.numel() * 4  # 16 context vectors by default, 4 above
    assert _same_state(_state(exp.model), reference)


def _full_loss(coop, train) -> float:
    """Cross-entropy over every cached crop of every training image (no sampling noise)."""
    with torch.no_grad():
        V, N, D = train.features.shape
        logits = coop(train.features.reshape(V * N, D))
        return F.cross_entropy(logits, train.labels.repeat(V)).item()


def test_short_training_lowers_the_loss(exp):
    cfg = TrainConfig(shots=4, seed=1, epochs=8, views=2, batch_size=8, lr=0.002)
    train = training_set(exp, cfg)
    set_seed(cfg.seed)
    coop = CoOp(exp.model, exp.classnames)
    before = _full_loss(coop, train)
    history = fit(coop, train, cfg, progress=False)
    after = _full_loss(coop, train)
    assert history["epoch"] == list(range(1, cfg.epochs + 1))
    assert history["loss"][-1] < history["loss"][0] - 0.05
    assert after < before - 0.05 and after < math.log(len(exp.classnames))  # better than uniform


def _dassl_lrs(lr, warmup_lr, warmup_epochs, epochs):
    """What Dassl's ConstantWarmupScheduler around torch's CosineAnnealingLR(T_max=epochs) gives:
    the constant warm-up lr, then the cosine scheduler, stepped once after each later epoch."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    out = []
    for epoch in range(epochs):
        if epoch < warmup_epochs:
            out.append(warmup_lr)
            continue
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        cosine.step()
    return out


@pytest.mark.parametrize("epochs,warmup", [(EPOCHS, 1), (50, 1), (200, 1), (7, 2), (6, 0)])
def test_lr_schedule_is_constant_warmup_then_cosine(epochs, warmup):
    cfg = TrainConfig(epochs=epochs, lr=0.002, warmup_lr=1e-5, warmup_epochs=warmup)
    ours = [lr_at_epoch(e, cfg) for e in range(epochs)]
    assert ours == pytest.approx(_dassl_lrs(0.002, 1e-5, warmup, epochs), rel=1e-9, abs=1e-15)
    if warmup == 1:  # epoch 1 at warmup_lr, then epoch e (0-based) at 0.5 lr (1 + cos(pi (e-1) / epochs))
        assert ours[0] == 1e-5 and ours[1] == 0.002
        for e in range(1, epochs):
            assert ours[e] == pytest.approx(0.5 * 0.002 * (1 + math.cos(math.pi * (e - 1) / epochs)), rel=1e-12)


@pytest.mark.parametrize("n,bs,sizes", [(10, 32, [10]), (31, 32, [31]), (32, 32, [32]), (40, 32, [32]),
                                        (64, 32, [32, 32]), (70, 32, [32, 32]), (20, 8, [8, 8])])
def test_batches_drop_the_incomplete_last_batch_only_when_a_full_one_exists(n, bs, sizes):
    out = batches(n, bs, torch.Generator().manual_seed(0))
    assert [len(b) for b in out] == sizes
    flat = torch.cat(out).tolist()
    assert len(set(flat)) == len(flat) and set(flat) <= set(range(n))
    again = batches(n, bs, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(out, again))
    assert sorted(torch.cat(batches(n, n + 1)).tolist()) == list(range(n))  # a lone small batch is kept whole


def _no_nan(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a result file"))


def test_result_file_schema(trained, synthetic_split, exp):
    path, rec = trained
    assert read_result(path) == rec == _no_nan(path.read_text())
    assert all(k in rec for k in REQUIRED_KEYS)
    assert rec["schema"] == 3 and rec["complete"] is True and rec["kind"] == "coop" and rec["method"] == "CoOp"
    assert len(rec["run_id"]) == 20 and set(rec["inputs"]) == {"split_sha256", "weights_sha256", "images_sha256",
                                                        "test_images_sha256", "code_sha256"}
    assert torch.load(path.with_suffix(".pt"), weights_only=True)["run_id"] == rec["run_id"]
    assert (rec["shots"], rec["seed"]) == (2, 1)
    assert isinstance(rec["accuracy"], float) and 0 <= rec["accuracy"] <= 100
    n_test = len(synthetic_split.test)
    assert rec["n_test"] == n_test and rec["skipped_images"] == {}
    correct = rec["accuracy"] * n_test / 100  # a number of images
    assert abs(correct - round(correct)) < 1e-3
    assert list(rec["per_class_accuracy"]) == synthetic_split.classnames == rec["classnames"]
    assert all(isinstance(v, float) and 0 <= v <= 100 for v in rec["per_class_accuracy"].values())
    assert rec["mean_per_class_accuracy"] == pytest.approx(sum(rec["per_class_accuracy"].values()) / len(synthetic_split.classnames), abs=1e-3)
    assert rec["model"]["name"] == "random:tiny" and rec["model"]["sha256"] == exp.info.sha256
    assert rec["random_weights"] is True and rec["model"]["random_weights"] is True
    assert rec["split"]["sha256"] == sha256_file(synthetic_split.path)
    assert rec["config"]["epochs"] == EPOCHS and rec["config"]["views"] == 2 and rec["config"]["lr"] == 0.002
    assert set(rec["environment"]["versions"]) >= {"python", "torch", "clip-anytorch"}
    assert rec["environment"]["device"] == "cpu"
    assert isinstance(rec["wall_time_s"], float) and rec["wall_time_s"] >= 0
    assert rec["fewshot_train"] == fewshot(synthetic_split.train, 2, 1)
    assert rec["n_trainable"] == 16 * exp.model.ln_final.weight.shape[0]
    assert len(rec["nearest_words"]) == len(rec["nearest_words_init"]) == len(rec["context_moved"]) == 16
    from coop import CoOp
    from coop.utils.seed import set_seed

    set_seed(1)  # the run's initial context: seeded right before it is built
    ctx0 = CoOp(exp.model, exp.classnames, n_ctx=16).ctx.detach()
    ctx = torch.load(path.with_suffix(".pt"), weights_only=True)["state"]["ctx"].float()
    want = ((ctx - ctx0).norm(dim=-1) / ctx0.norm(dim=-1)).tolist()
    assert rec["context_moved"] == pytest.approx(want, abs=1e-4) and min(want) > 0  # training moved every vector
    h = rec["history"]
    assert set(h) == {"epoch", "loss", "train_acc", "lr"} and all(len(v) == EPOCHS for v in h.values())
    assert h["epoch"] == list(range(1, EPOCHS + 1))
    cfg = TrainConfig(**rec["config"])
    assert h["lr"] == [lr_at_epoch(e, cfg) for e in range(EPOCHS)]
    assert h["lr"][0] == cfg.warmup_lr and h["lr"][1] == cfg.lr
    assert (path.parent / rec["context_file"]).is_file()


def test_few_shot_validation_accuracy_is_recorded_and_recomputes(trained, exp):
    """The bonus's guard reads each CoOp run's top-1 on the few-shot validation set: the set the baselines of
    the same (shots, seed) search on (min(shots, 4) per class, drawn with the run's seed), scored by the
    saved context -- recomputed here the plain way, from the split and the context file."""
    from coop.data.split import fewshot_validation
    from coop.features.views import TestView

    path, rec = trained
    v = rec["validation"]
    items = fewshot(exp.split.val, min(rec["shots"], 4), rec["seed"])
    assert [tuple(it) for it in v["items"]] == [tuple(it) for it in items]
    assert fewshot_validation(exp.split.val, rec["shots"], rec["seed"])["items"] == items
    assert v["images"] == len(items) and v["per_class"] == min(rec["shots"], 4)
    assert set(it[0] for it in items) <= set(TrainConfig(**rec["config"]).images(exp.split))  # in its provenance
    coop, _ = load_context(path.with_suffix(".pt"), exp)
    feats, index, bad = exp.cache.test_features(exp.model, exp.image_root, [it[0] for it in items], TestView(exp.resolution))
    assert not bad and index == list(range(len(items)))
    with torch.no_grad():
        pred = coop(feats).argmax(-1)
    labels = torch.tensor([it[1] for it in items])
    assert v["predictions"] == {"index": list(range(len(items))), "pred": pred.tolist()}
    assert v["correct"] == int((pred == labels).sum())
    assert v["accuracy"] == round(100.0 * v["correct"] / len(items), 4)


def test_accuracy_on_the_training_images_in_the_test_view_recomputes(trained, exp):
    """Issue 38: the report reads over-fitting and under-training from the trained model's and zero-shot CLIP's
    top-1 on the run's own training images in the test view (the test images' centre crop), not on random
    crops -- recomputed here the plain way: the saved context, the cache's test view, one prompt per class."""
    from coop.features.views import TestView

    path, rec = trained
    items = rec["fewshot_train"]
    coop, _ = load_context(path.with_suffix(".pt"), exp)
    feats, index, bad = exp.cache.test_features(exp.model, exp.image_root, [it[0] for it in items], TestView(exp.resolution))
    assert not bad and index == list(range(len(items)))
    labels = torch.tensor([it[1] for it in items])
    with torch.no_grad():
        pred = coop(feats).argmax(-1)
        text = exp.model.encode_text(clip.tokenize([f"a photo of a {exp.dataset.prompt_name(c)}." for c in exp.classnames]))
    zs = (F.normalize(feats.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()).argmax(-1)
    fv = rec["fit_view"]
    assert fv["images"] == len(items) and fv["correct"] == int((pred == labels).sum())
    assert fv["zeroshot_correct"] == int((zs == labels).sum())
    assert fv["accuracy"] == round(100.0 * fv["correct"] / len(items), 4)
    assert fv["right"] == (pred == labels).int().tolist() and fv["zeroshot_right"] == (zs == labels).int().tolist()


def test_accuracy_is_recomputed_from_the_saved_context(trained, common, work, exp):
    path, rec = trained
    context = path.with_suffix(".pt")
    out = work / "eval.json"
    assert zeroshot.main(common + ["--results", str(work / "results"), "--context", str(context), "--out", str(out)]) == 0
    ev = read_result(out)
    assert ev["kind"] == "evaluation" and ev["n_test"] == rec["n_test"]
    assert ev["accuracy"] == rec["accuracy"] and ev["per_class_accuracy"] == rec["per_class_accuracy"]

    coop, saved = load_context(context, exp)
    assert saved["config"]["epochs"] == EPOCHS and set(saved["state"]) == {"ctx"}
    test = exp.test_set()
    with torch.no_grad():
        pred = coop(test.features).argmax(-1)
    assert round(100.0 * (pred == test.labels).float().mean().item(), 4) == rec["accuracy"]


def test_context_of_other_weights_is_refused(trained, tmp_path):
    from coop.utils.errors import UserError

    saved = torch.load(trained[0].with_suffix(".pt"), weights_only=True)
    saved["model"]["sha256"] = "0" * 64
    other = tmp_path / "other.pt"
    torch.save(saved, other)
    assert zeroshot.main(["--model", "random:tiny", "--data-root", saved["config"]["data_root"],
                          "--split-file", saved["config"]["split_file"], "--device", "cpu",
                          "--cache-dir", saved["config"]["cache_dir"], "--context", str(other),
                          "--out", str(tmp_path / "e.json")]) == 2
    assert not (tmp_path / "e.json").exists()
    other.write_bytes(b"junk")
    with pytest.raises(UserError, match="not a context file"):
        load_context(other, None)


def test_result_from_other_settings_is_refused_unless_forced(trained, common, work, capsys):
    path, rec = trained
    before = path.read_bytes()
    argv = common + ["--results", str(work / "results"), "--shots", "2", "--seed", "1", "--views", "2"]
    assert train_coop.main(argv + ["--epochs", str(EPOCHS + 1)]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "--force" in err and "Traceback" not in err
    assert path.read_bytes() == before
    assert train_coop.main(argv + ["--epochs", str(EPOCHS)]) == 0  # the same settings: done already
    assert "already done" in capsys.readouterr().err and path.read_bytes() == before


@torch.no_grad()
def test_zeroshot_result_is_clips_zero_shot(common, work, synthetic_root, synthetic_split):
    out = work / "zs"
    assert zeroshot.main(common + ["--results", str(out)]) == 0
    rec = read_result(out / "zeroshot.json")
    assert rec["kind"] == "zeroshot" and rec["method"] == "Zero-shot CLIP"
    assert rec["prompts"] == ["a photo of a {}."] and rec["shots"] == 0 and rec["seed"] is None
    assert rec["n_test"] == len(synthetic_split.test) and rec["skipped_images"] == {}
    assert list(rec["per_class_accuracy"]) == synthetic_split.classnames

    # Recomputed from scratch with CLIP's own API: preprocess, encode_image, tokenize, encode_text.
    model, preprocess = load_clip("random:tiny", device="cpu")
    names = [n.replace("_", " ") for n in synthetic_split.classnames]
    text = F.normalize(model.encode_text(clip.tokenize([f"a photo of a {n}." for n in names])), dim=-1)
    images = torch.cat([model.encode_image(preprocess(Image.open(synthetic_root / rel)).unsqueeze(0))
                        for rel, _, _ in synthetic_split.test])
    cos = F.normalize(images, dim=-1) @ text.t()
    pred = cos.argmax(-1)
    labels = torch.tensor([label for _, label, _ in synthetic_split.test])
    top2 = cos.topk(2, dim=-1).values
    near_ties = int((top2[:, 0] - top2[:, 1] < 1e-5).sum())  # where batching's rounding could decide
    correct = rec["accuracy"] * len(labels) / 100
    assert abs(correct - (pred == labels).sum().item()) <= near_ties + 1e-6
    if near_ties == 0:
        for c, name in enumerate(synthetic_split.classnames):
            m = labels == c
            assert rec["per_class_accuracy"][name] == round(100.0 * (pred[m] == c).float().mean().item(), 4)

    assert zeroshot.main(common + ["--results", str(out), "--templates", "ensemble", "--out",
                                   str(out / "ensemble.json")]) == 0
    # CoOp's ZeroshotCLIP2: the seven selected ImageNet templates and the data set's own, last
    prompts = read_result(out / "ensemble.json")["prompts"]
    assert len(prompts) == 8 and prompts[-1] == rec["prompts"][0] and len(set(prompts)) == 8
