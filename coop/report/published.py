"""Published RN50 Caltech101 numbers to set beside ours -- as published, never as ours.

Source: the Tip-Adapter repository's ``exp.log`` (github.com/gaopengcuhk/Tip-Adapter, commit
30d25981df00b91d80d2f6bcc15a2c062a966a10), the log of the runs behind Zhang et al., *Tip-Adapter:
Training-free Adaption of CLIP for Few-shot Classification*, ECCV 2022: backbone RN50, CoOp's split
(``split_zhou_Caltech101.json``), top-1 % on that split's test set, CLIP in fp16 on a GPU, alpha and
beta searched on that split's validation data. CoOp's own Caltech101 numbers are published only as
curves (the CoOp paper's few-shot figure): cite the figure; no number is read off it here.
"""
from __future__ import annotations

from typing import Dict, List, Optional

SOURCE = ("Tip-Adapter 仓库的 exp.log（github.com/gaopengcuhk/Tip-Adapter，commit 30d25981），"
          "Zhang 等 ECCV 2022 论文背后的运行记录")
SHOTS = (1, 2, 4, 8, 16)
ZS_ROW = "零样本 CLIP（Tip-Adapter 的代码运行）"
# method -> accuracy (%) at SHOTS
TABLE: Dict[str, List[float]] = {
    ZS_ROW: [85.92, 85.92, 85.92, 85.92, 85.92],
    "Tip-Adapter（免训练）": [87.18, 88.44, 89.39, 89.83, 90.18],
    "Tip-Adapter-F（微调键）": [89.33, 89.74, 90.56, 91.44, 92.86],
    "CLIP-Adapter（同一作者运行）": [88.60, 89.37, 89.98, 91.40, 92.49],
}
# How many of CoOp's 2,465 test images lie in each part of our split (computed from both split
# files; tests/test_report_structure.py recomputes it when CoOp's split file is at hand).
COOP_TEST_IN_OURS = {"train": 1217, "val": 481, "test": 767}


def _split_note(split_sha: Optional[str]) -> str:
    """How the records' test images relate to CoOp's: counted for our shipped split only."""
    from ..methods.departures import COOP_SPLIT_SHA256
    from ..utils.hashing import sha256_file
    from ..utils.paths import SPLIT

    if split_sha == COOP_SPLIT_SHA256:
        return "我们的记录也用 CoOp 的划分，测试图像相同；其余差异可能来自精度与实现。"
    try:
        ours = sha256_file(str(SPLIT))
    except OSError:
        ours = None
    if split_sha is None or split_sha != ours:
        return "我们的记录用的是另一份划分文件，它与 CoOp 划分的重叠没有计算。"
    n = sum(COOP_TEST_IN_OURS.values())
    return (f"它们用 CoOp 的划分：它的 {n:,} 张测试图像只有 {COOP_TEST_IN_OURS['test']:,} 张"
            f"（{100 * COOP_TEST_IN_OURS['test'] / n:.1f}%）也在我们的测试部分（{COOP_TEST_IN_OURS['train']:,} 张在我们的训练部分、"
            f"{COOP_TEST_IN_OURS['val']:,} 张在验证部分）。")


def markdown(zeroshot_accuracy: Optional[float] = None, split_sha: Optional[str] = None,
             random_weights: bool = False, demo: bool = False) -> List[str]:
    """The published table and its caveats, for records made with ``split_sha`` (None: unknown)."""
    from ..methods.departures import COOP_SPLIT_SHA256

    head = "| 方法（已发表，不是我们的结果） | " + " | ".join(f"{k} shot" for k in SHOTS) + " |"
    rows = [head, "|---|" + "---:|" * len(SHOTS)]
    rows += [f"| {m} | " + " | ".join(f"{a:.2f}" for a in accs) + " |" for m, accs in TABLE.items()]
    source = f"来源：{SOURCE}。它们用 fp16 在 GPU 上运行，α、β 在 CoOp 划分的验证集上搜索。"
    if demo:
        return rows + ["", source + "演示数据是合成的，与已发表的数字没有可比性。"]
    ours = ""
    if zeroshot_accuracy is not None and not random_weights:
        why = "精度与实现不同" if split_sha == COOP_SPLIT_SHA256 else "测试图像不同与精度不同"
        ours = (f"我们的零样本为 {zeroshot_accuracy:.2f}%，与它们的 {TABLE[ZS_ROW][0]:.2f}% 之差可能来自{why}"
                f"（两边不在同一批预测上，无法配对检验：这不是一个检验过的差异）。")
    rerun = ("" if split_sha == COOP_SPLIT_SHA256 else
             "要在同一划分上比较，用 `--split-file split_zhou_Caltech101.json` 重跑。")
    return rows + ["", source + _split_note(split_sha) + ours + "只宜比较趋势，不宜比较小数。" + rerun]


# Base-to-new generalisation on Caltech101 -- another backbone (ViT-B/16), a reference for the shape of the
# comparison (CoOp gains on base and loses on new; CoCoOp recovers new), not numbers to match with RN50.
# Source: Zhou et al., *Conditional Prompt Learning for Vision-Language Models* (CoCoOp), CVPR 2022,
# arXiv 2203.05557, Table 1, Caltech101 row: 16 shots on the base half, CoOp's split, mean of 3 seeds, top-1 %.
# Taken from the project's list of published numbers (shared/docs/PUBLISHED.md), which asks that they be
# checked against the paper's table; not re-read from the paper here (no network).
BASE2NEW_SOURCE = "Zhou 等，CoCoOp，CVPR 2022（arXiv 2203.05557）表 1，Caltech101 行；ViT-B/16，16 shots，CoOp 的划分，3 个种子的平均"
BASE2NEW_TABLE: Dict[str, List[float]] = {  # method -> [base, new, H]
    "Zero-shot CLIP": [96.84, 94.00, 95.40],
    "CoOp": [98.00, 89.81, 93.73],
    "CoCoOp": [97.96, 93.81, 95.84],
}
