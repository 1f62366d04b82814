"""Where a baseline run departs from *its* original code (CoOp's ``lpclip/``, gaopengcuhk/Tip-Adapter,
jusiro/CLAP's ``trainers/adapters.py``), in one list: :data:`BASELINE_DEPARTURES` (shared) plus each
method's own (its :mod:`coop.methods.table` entry). Each baseline record's ``departures`` names those that
applied to it (:func:`active_baseline`); docs/baselines.md and the report render the same list
(:func:`baselines_markdown_en`, :mod:`coop.report.departures_zh`). CoOp's own list is :mod:`coop.methods.departures`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional


# --- the baselines -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BaselineDeparture:
    """Where a baseline run departs from the baseline's own code (lpclip, Tip-Adapter)."""
    key: str
    methods: tuple        # the keys of the methods it concerns (coop.methods.table); ALL: every baseline
    title: str
    reason: str
    flag: Optional[str]
    title_zh: str
    reason_zh: str        # kept with the data; the report shows the title only (coop.report.departures_zh)
    applies: Callable[[Dict[str, Any]], bool] = lambda cfg: True  # given the run's config (method included)
    aspect: str = ""      # a key of ASPECTS: what it changes (the report lists the "selection" ones in full)


# what a departure changes; only "selection" changes what a number means against the published ones
ASPECTS = {"selection": "选择超参数与 epoch", "images": "图像与增强视图怎样供给", "precision": "精度", "randomness": "随机数的来源"}


ALL = ("*",)  # every method of coop.methods.table, those added later too


def _concerns(d: "BaselineDeparture", key: str) -> bool:
    return d.methods == ALL or key in d.methods


def baseline_departures() -> List["BaselineDeparture"]:
    """The shared list below, then each method's own (its coop.methods.table entry), in the table's order."""
    from .table import methods

    out = list(BASELINE_DEPARTURES)
    where = {d.key: i for i, d in enumerate(out)}
    for key, m in methods().items():  # an entry's departure concerns every entry that names it
        for d in m.departures:
            if d.key in where:
                i = where[d.key]
                out[i] = replace(out[i], methods=tuple(out[i].methods) + (key,))
            else:
                where[d.key] = len(out)
                out.append(replace(d, methods=(key,)))
    return out


BASELINE_DEPARTURES: List[BaselineDeparture] = [
    BaselineDeparture(
        "coop_fewshot", ALL,
        "Trains on the few-shot images of the CoOp run of the same (shots, seed), not on a draw of its own "
        "(lpclip draws with np.random.choice per class; Tip-Adapter's loaders draw their own few-shot set)",
        "every method of a (shots, seed) sees the same images, so the paired comparisons with CoOp compare "
        "methods, not draws",
        None,
        "用同一 (shots, seed) 的 CoOp 运行的 few-shot 图像训练，而不是自己另抽一份（lpclip 对每类用 np.random.choice "
        "抽取；Tip-Adapter 的数据加载代码自己抽取 few-shot 集合）",
        "同一 (shots, seed) 的各方法看到相同的图像，与 CoOp 的配对比较比较的是方法，而不是抽样",
        aspect="images"),
    BaselineDeparture(
        "val_fewshot_ours", ("lp",),
        "The few-shot validation set (min(shots, 4) per class, at most the smallest class's count, which the "
        "run then warns about and records) is drawn from our split's val part; lpclip draws it from the data "
        "set's val split and stops if a class has too few",
        "our split has its own val part; a class with few val images must not stop the baseline",
        None,
        "少样本验证集（每类 min(shots, 4) 张，不超过验证图像最少的类的张数；不足时运行会警告并记录）取自我们划分的验证部分；"
        "lpclip 从数据集的验证划分抽取，某类不够时直接出错",
        "我们的划分有自己的验证部分；验证图像少的类不应让基线无法运行",
        aspect="selection"),
    BaselineDeparture(
        "fp32_features", ("lp",),
        "Features from our fp32 feature cache; lpclip extracts them with CLIP in fp16 on a GPU",
        "the same cache as CoOp's runs, exact on every device",
        None,
        "特征来自本项目的 fp32 特征缓存；lpclip 在 GPU 上用 fp16 的 CLIP 提取",
        "与 CoOp 的运行共用同一缓存，在所有设备上精确",
        aspect="precision"),
    BaselineDeparture(
        "tip_views_by_image", ("tip", "tip_f"),
        "The 10 augmented views of each few-shot image are seeded by the image only, so every seed and shot "
        "count that uses an image uses the same 10 views; their code draws them from the global random "
        "generator in each run",
        "each image's views are encoded once for the whole sweep; the views of one run still follow Tip-Adapter's "
        "crop distribution",
        None,
        "每张 few-shot 图像的 10 个增强视图只由图像决定随机性，因此用到同一图像的所有种子与 shot 数共享这 10 个视图；"
        "其代码在每次运行中从全局随机数生成器抽取",
        "每张图像的视图在整个扫描中只编码一次；单次运行看到的视图仍服从 Tip-Adapter 的裁剪分布",
        aspect="images"),
    BaselineDeparture(
        "tip_search_fewshot", ("tip", "tip_f"),
        "alpha/beta are searched on the few-shot validation set; their code searches on the whole validation split",
        "the same validation budget as the linear probe's search",
        "--tip-search val",
        "α、β 在少样本验证集上搜索；其代码在整个验证划分上搜索",
        "与线性探测的搜索用同样多的验证数据",
        lambda cfg: cfg.get("search", "fewshot") == "fewshot",
        aspect="selection"),
    BaselineDeparture(
        "tip_fp32", ("tip", "tip_f"),
        "fp32 on every device; their code runs fp16 on CUDA",
        "exact and available on every device",
        None,
        "在所有设备上用 fp32；其代码在 CUDA 上用 fp16",
        "精确且在所有设备上可用",
        aspect="precision"),
    BaselineDeparture(
        "tip_f_cached_views", ("tip_f",),
        "Fine-tuned on the 10 cached augmented views, epoch e on view e mod 10; their code draws a fresh crop "
        "per epoch",
        "no image is encoded during fine-tuning",
        None,
        "在缓存的 10 个增强视图上微调，第 e 个 epoch 用第 e mod 10 个视图；其代码每个 epoch 重新裁剪",
        "微调期间不需要再编码任何图像",
        aspect="images"),
    BaselineDeparture(
        "tip_f_last_epoch", ("tip_f",),
        "The keys after the last epoch are kept; their code keeps the epoch with the best test accuracy and "
        "reports max(best, last) on the test set",
        "nothing is chosen on the test set",
        None,
        "保留最后一个 epoch 之后的键；其代码保留测试准确率最高的 epoch，并报告测试集上 max(最好, 最后)",
        "不在测试集上挑选任何东西",
        aspect="selection"),
]


def active_baseline(cfg: Dict[str, Any]) -> List[str]:
    """Keys of the baseline departures that apply to a baseline run with config ``cfg`` (a dict with ``method``)."""
    return [d.key for d in baseline_departures() if _concerns(d, cfg.get("method")) and d.applies(cfg)]


def _who(d: BaselineDeparture, name, sep: str, every: str) -> str:
    from .table import methods

    return every if d.methods == ALL else sep.join(name(m) for k, m in methods().items() if k in d.methods)


def baselines_markdown_en() -> str:
    """The baselines' list as the English table of docs/baselines.md (between its markers)."""
    rows = ["| # | baselines | where we differ from their code | why | flag that removes it |",
            "|---|---|---|---|---|"]
    for i, d in enumerate(baseline_departures(), 1):
        who = _who(d, lambda m: m.name, ", ", "all")
        rows.append(f"| {i} | {who} | {d.title} | {d.reason} | {f'`{d.flag}`' if d.flag else '—'} |")
    return "\n".join(rows)
