"""Where this project's default recipe still differs from CoOp's own code, in one list.

CoOp = ``KaiyangZhou/CoOp`` (``trainers/coop.py``, ``configs/trainers/CoOp/rn50_ep*.yaml``) on
Dassl (transforms, samplers, optimiser, scheduler). Everything not listed here follows that code:
CLIP's preprocessing for test images, RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bicubic) +
flip + CLIP normalisation for training, a fresh crop of every image in every epoch, M = 16 context
vectors drawn from N(0, 0.02²) (standard deviation 0.02: CoOp's ``nn.init.normal_(ctx_vectors, std=0.02)``)
with the class token at the end, SGD lr 0.002 / momentum 0.9 / weight decay
5e-4, batch 32 with the last incomplete batch dropped, one constant warm-up epoch at 1e-5 then
cosine, 50/100/100/200/200 epochs at 1/2/4/8/16 shots, and the last epoch evaluated on the test set.

docs/recipe.md ("Where we depart from CoOp") and report/REPORT.md give the same list; each run's JSON
names the departures that applied to it (:func:`active`), so a result says how it was made.

The baselines (linear-probe CLIP, Tip-Adapter, Tip-Adapter-F) depart from *their* original code
(CoOp's ``lpclip/``, gaopengcuhk/Tip-Adapter) in the ways of :data:`BASELINE_DEPARTURES`; each
baseline record's ``departures`` names those that applied to it (:func:`active_baseline`), and
docs/baselines.md and the report render the same list (:func:`baselines_markdown_en`, ``_zh``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional


@dataclass(frozen=True)
class Departure:
    key: str
    title: str            # what differs (English)
    reason: str           # why (English)
    flag: Optional[str]   # the flag that removes it, None if there is none
    title_zh: str
    reason_zh: str
    applies: Callable[[Dict[str, Any]], bool]  # given a run's config, does it apply?


# sha256 of CoOp's published split_zhou_Caltech101.json: the split is recognised by its content,
# whatever the file is called
COOP_SPLIT_SHA256 = "43ab95e88d2f6a32a11c4f8dc9f822c534e822f3dbbde2e248af5432d771a6fc"


def _split_is_ours(cfg: Dict[str, Any]) -> bool:
    from ..utils.hashing import sha256_file

    try:
        return sha256_file(str(cfg.get("split_file", ""))) != COOP_SPLIT_SHA256
    except OSError:
        return True


DEPARTURES: List[Departure] = [
    Departure(
        "split", "Our own train/val/test split (50/20/30 per class, seed 1), not CoOp's split_zhou_Caltech101.json",
        "the assignment asks for our own split; the class set, renamings and proportions are CoOp's",
        "--split-file split_zhou_Caltech101.json",
        "使用本项目自己的 train/val/test 划分（每类 50%/20%/30%，种子 1），而非 CoOp 的 split_zhou_Caltech101.json",
        "作业要求自建划分；类别集合、类名改写和比例与 CoOp 相同",
        _split_is_ours),
    Departure(
        "precision", "fp32 by default; CoOp's default is fp16 (the CLIP weights convert_weights casts -- convs, "
                     "linear layers, attention, text_projection -- the context and the logits in half precision); under our --precision fp16 the logits are still computed in fp32 from the fp16 "
                     "features, which CoOp does not do",
        "exact and available on every device (a CPU has no fast fp16); fp16 SGD on the context can underflow "
        "small updates",
        "--precision fp16 (CUDA only)",
        "默认 fp32；CoOp 默认 fp16（convert_weights 转换的 CLIP 权重——卷积、线性层、注意力与 text_projection——以及上下文向量与 logits 是半精度）。即使在我们的 --precision fp16 下，"
        "logits 仍由 fp16 特征转成 fp32 后计算，这一点 CoOp 不做",
        "fp32 精确且在所有设备上可用（CPU 没有高效的 fp16）；fp16 下对上下文向量的 SGD 小步更新可能下溢",
        lambda cfg: cfg.get("precision", "fp32") != "fp16"),
    Departure(
        "fewshot", "Few-shot sets are nested across shots (one seeded order per class, its first K images); "
                   "CoOp draws each K independently with random.sample after random.seed(seed)",
        "the 1-shot set lies inside the 2- and 4-shot sets of the same seed, so the curve compares shots on "
        "the same images and their crops are encoded once",
        "--sampling coop",
        "few-shot 子集在不同 shot 间嵌套（每类一个带种子的随机顺序，取前 K 张）；CoOp 在 random.seed(seed) 之后对每个 K "
        "独立调用 random.sample",
        "同一种子下 1-shot 集合包含于 2-shot、4-shot 集合，曲线在相同图像上比较不同 shot，且其裁剪只需编码一次",
        lambda cfg: cfg.get("sampling", "nested") == "nested"),
    Departure(
        "crop_sharing", "Runs of one seed at different shots share the crop of (image, epoch)",
        "each run still sees exactly CoOp's distribution of crops; sharing lets the image encoder run once "
        "for the largest shot set",
        "--independent-crops",
        "同一种子、不同 shot 的运行共享 (图像, epoch) 的裁剪",
        "每次运行看到的裁剪分布仍与 CoOp 完全相同；共享使图像编码器只需为最大的 shot 集合运行一次",
        lambda cfg: not cfg.get("independent_crops", False) and cfg.get("views") is None),
    Departure(
        "crop_rng", "Crop randomness is keyed by (seed, image, epoch) instead of drawn from DataLoader workers' RNG",
        "the same distribution, but reproducible and cacheable whatever the number of workers or the order "
        "of encoding",
        None,
        "裁剪的随机性由 (种子, 图像, epoch) 决定，而非 DataLoader worker 的随机数生成器",
        "分布相同，但与 worker 数量和编码顺序无关、可复现、可缓存",
        lambda cfg: True),
    Departure(
        "views", "Approximate mode --views N: N cached crops per image, cycled over the epochs",
        "a cheaper approximation for slow machines; not the default",
        "leave --views unset (fresh crops, the default)",
        "近似模式 --views N：每张图像缓存 N 个裁剪，在各 epoch 间循环使用",
        "为慢速机器提供的更便宜的近似；不是默认设置",
        lambda cfg: cfg.get("views") is not None),
    Departure(
        "ctx_init", "--ctx-init counts BPE tokens and requires --n-ctx to match; CoOp counts words and "
                    "overrides N_CTX",
        "identical whenever each word is one token (\"a photo of a\"); otherwise CoOp would misalign the "
        "context silently, we stop with an error",
        None,
        "--ctx-init 按 BPE token 计数并要求与 --n-ctx 一致；CoOp 按空格分词计数并覆盖 N_CTX",
        "当每个词恰为一个 token 时（如 \"a photo of a\"）两者相同；否则 CoOp 会悄悄错位，我们直接报错",
        lambda cfg: bool(cfg.get("ctx_init"))),
    Departure(
        "text_path", "The text encoder is truncated after the last EOT and shares the [SOS] v1..vM prefix "
                     "across classes",
        "exact in exact arithmetic (causal mask); in fp32 equal to within 1e-5 relative "
        "(tests/test_text_encoder.py); the text side 30-40x faster (bench.py (b))",
        "--no-fast",
        "文本编码器在最后一个 EOT 处截断，并在类别间共享 [SOS] v1..vM 前缀",
        "在精确算术下完全等价（因果掩码）；fp32 下相对误差在 1e-5 以内（figures/exactness_check.md）；原理与实测速度见附录 C",
        lambda cfg: cfg.get("fast", True)),
]


def active(cfg: Dict[str, Any]) -> List[str]:
    """Keys of the departures that apply to a run with config ``cfg`` (a dict)."""
    return [d.key for d in DEPARTURES if d.applies(cfg)]


# The departures that concern a zero-shot run (it trains nothing): CoOp's zero-shot runs CLIP in fp16
ZEROSHOT_KEYS = ("split", "precision")


def active_zeroshot(cfg: Dict[str, Any]) -> List[str]:
    return [k for k in active(cfg) if k in ZEROSHOT_KEYS]


# --- base-to-new (CoOp's repository's second protocol: CoOp and CoCoOp on the base half) -----------------

BACKBONE = Departure(
    "backbone", "RN50 (the assignment's model) instead of ViT-B/16, the backbone of the base-to-new configs "
                "(vit_b16_ctxv1.yaml, vit_b16_c4_ep10_batch1_ctxv1.yaml) and of CoCoOp's published table",
    "the assignment's model; the published numbers are shown as another backbone's",
    "--model ViT-B/16",
    "使用 RN50（作业指定的模型），而非 base-to-new 配置（vit_b16_ctxv1.yaml、vit_b16_c4_ep10_batch1_ctxv1.yaml）"
    "及 CoCoOp 论文表格所用的 ViT-B/16",
    "作业指定的模型；论文数字作为另一骨干网络的结果列出",
    lambda cfg: cfg.get("model", "RN50") != "ViT-B/16")

# The departures of DEPARTURES that concern a base-to-new run, after BACKBONE: our split and nested few-shot
# sampling (the 16 shots drawn over all classes, then halved), precision, the crops' randomness, the context
# init's token count and the fast text path (CoCoOp's per-image prefix included). Zero-shot CLIP on the halves
# trains nothing: ZEROSHOT_KEYS.
BASE2NEW_KEYS = ("split", "fewshot", "precision", "crop_rng", "views", "ctx_init", "text_path")


def base2new_departures() -> List[Departure]:
    by_key = {d.key: d for d in DEPARTURES}
    return [BACKBONE] + [by_key[k] for k in BASE2NEW_KEYS]


def active_base2new(cfg: Dict[str, Any]) -> List[str]:
    """Keys of the departures that apply to a base-to-new run with config ``cfg`` (a dict with ``method``)."""
    keys = ZEROSHOT_KEYS if cfg.get("method") == "zeroshot" else BASE2NEW_KEYS
    return [d.key for d in base2new_departures() if (d is BACKBONE or d.key in keys) and d.applies(cfg)]


def base2new_markdown_en() -> str:
    """The base-to-new list as the English table of docs/base2new.md (between its departures markers)."""
    rows = ["| # | where we differ | why | flag that removes it |", "|---|---|---|---|"]
    for i, d in enumerate(base2new_departures(), 1):
        rows.append(f"| {i} | {d.title} | {d.reason} | {f'`{d.flag}`' if d.flag else '—'} |")
    return "\n".join(rows)


def markdown_en() -> str:
    """The list as the English table of docs/recipe.md (rendered between its departures markers)."""
    rows = ["| # | where we differ | why | flag that removes it |", "|---|---|---|---|"]
    for i, d in enumerate(DEPARTURES, 1):
        rows.append(f"| {i} | {d.title} | {d.reason} | {f'`{d.flag}`' if d.flag else '—'} |")
    return "\n".join(rows)


# Flags whose English words need a Chinese rendering in the report's table.
FLAG_ZH = {"--precision fp16 (CUDA only)": "`--precision fp16`（仅限 CUDA）",
           "leave --views unset (fresh crops, the default)": "不设置 `--views`（默认：每个 epoch 用新的裁剪）"}


def markdown_zh() -> str:
    """The list as the report's Chinese table (rendered between its departures markers)."""
    rows = ["| # | 与 CoOp 的差异 | 原因 | 消除它的参数 |", "|---|---|---|---|"]
    for i, d in enumerate(DEPARTURES, 1):
        rows.append(f"| {i} | {d.title_zh} | {d.reason_zh} | {FLAG_ZH.get(d.flag, f'`{d.flag}`') if d.flag else '—'} |")
    return "\n".join(rows)


# The baselines' list lives in coop/methods/baseline_departures.py; its names are kept here too.
from .baseline_departures import (ALL, BASELINE_DEPARTURES, BaselineDeparture, active_baseline,  # noqa: E402,F401
                                  baseline_departures, baselines_markdown_en)
