"""CLIP-Adapter, TaskRes, ZS-LP and CLAP as methods of :mod:`coop.methods.table`: what they share there.

Their views (CoOp's cached training crops of the run's seed), the demo's caps, how a baseline run's
features are handed to a ``run_<method>`` (:func:`fit_method`: the views, CLIP's raw text features, the
model's logit scale, one CPU thread) and their departures from jusiro/CLAP's ``adapters.py``. The recipe
itself is :mod:`coop.methods.adapter_recipe`.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Sequence

import torch

from .adapter_recipe import N_VIEWS  # noqa: F401 (the entries' default number of views)
from .baseline_departures import BaselineDeparture
from .method import Views

# Their views are CoOp's training crops of the run's own seed (scale 0.08-1, flip, bicubic: the recipe's
# augmentation): the first 20 crops of each image are those CoOp's run of the same seed trains on in its
# first 20 epochs, so at real size they come from the cache, encoded once for both.
VIEWS = Views(seed_name=None, scale=None)
DEMO = {"epochs": 10, "views": 2}  # demo caps: random features, seconds not minutes


@contextlib.contextmanager
def one_thread(device="cpu"):
    """One CPU thread while these methods train: hundreds of small steps, where a second thread only waits
    (and on a busy machine spins: CLIP-Adapter's demo-size grid took 484 s with two threads, 9.6 s with one);
    one thread also fixes the order of their sums."""
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def departures(*keys: str) -> tuple:
    return tuple(d for d in DEPARTURES if d.key in keys)


def fit_method(run: Callable[..., Dict[str, Any]], data, options: Dict[str, Any], *, validation: bool,
               hyper: Sequence[str], **kwargs: Any) -> Dict[str, Any]:
    """A ``run_<method>`` on a baseline run's features (coop.methods.baselines.FewShotData): the views of
    the few-shot images, CLIP's raw text features of the template and the model's logit scale."""
    views, labels = data.views()
    val_x, val_y = (data.val_x, data.val_y) if validation else (None, None)
    grid = options.get("grid")
    if grid is not None:
        kwargs["grid"] = {k: tuple(v) for k, v in grid.items()}
    with one_thread(data.device):
        out = run(views.to(data.device), labels.to(data.device), val_x, val_y, data.test_x.to(data.device),
                  data.text_raw.to(data.device), seed=data.seed, epochs=options["epochs"],
                  logit_scale=data.logit_scale, **kwargs)
    keep = {k: out[k] for k in ("val_accuracy", *hyper, "searched") if k in out}
    keep["train_loss"] = [round(float(x), 6) for x in out["train_loss"]]
    return {"predictions": out["predictions"], "hyperparameters": keep}


DEPARTURES = (
    BaselineDeparture(
        "adapters_views_coop_crops", (),
        "The 20 augmented views of each few-shot image are the first 20 of CoOp's cached training crops of the "
        "same seed (CoOp's crop: scale 0.08-1, flip, bicubic, the recipe's own), made once; adapters.py draws them "
        "with the global random generator in each run",
        "each crop is encoded once for CoOp and these methods; the views follow the recipe's crop distribution",
        None,
        "每张 few-shot 图像的 20 个增强视图取自同一种子的 CoOp 缓存训练裁剪的前 20 个（CoOp 的裁剪：尺度 0.08-1、翻转、"
        "双三次插值，与该训练方案相同），只编码一次；adapters.py 在每次运行中用全局随机数生成器抽取",
        "每个裁剪只为 CoOp 和这些方法编码一次；视图仍服从该方案的裁剪分布",
        aspect="images"),
    BaselineDeparture(
        "adapters_shuffle_torch", (),
        "Batches are shuffled by torch.randperm on a generator seeded with the run's seed; Dassl's loader shuffles "
        "with the global generator",
        "the same run gives the same numbers on every machine",
        None,
        "批次由以运行种子初始化的 torch.randperm 打乱；Dassl 的数据加载器用全局随机数生成器",
        "同一运行在任何机器上结果相同",
        aspect="randomness"),
    BaselineDeparture(
        "adapters_fp32", (),
        "fp32 features and training on every device; adapters.py extracts the features with CLIP in fp16",
        "the same cache as CoOp's runs, exact on every device",
        None,
        "在所有设备上用 fp32 的特征与训练；adapters.py 用 fp16 的 CLIP 提取特征",
        "与 CoOp 的运行共用同一缓存，在所有设备上精确",
        aspect="precision"),
    BaselineDeparture(
        "adapters_grid_on_val", (),
        "The grid point is chosen on the few-shot validation set after the last epoch; adapters.py keeps the point "
        "and step with the best test accuracy",
        "nothing is chosen on the test set",
        None,
        "网格点在少样本验证集上按最后一个 epoch 选择；adapters.py 保留测试准确率最高的网格点与步数",
        "不在测试集上挑选任何东西",
        aspect="selection"),
)
