#!/usr/bin/env python
"""Plot accuracy against labelled examples per class: the assignment's figure (zero-shot CLIP a purple star,
CoOp a blue line of seed means, each seed a point) and, when the folder holds more, the comparison with the
other methods.

Reads only the result JSON files of a results folder; writes STEM.png/.pdf and STEM_all.png/.pdf.

    python scripts/plot.py                          # results/ -> results/fewshot.png (+ fewshot_all.png), .pdf
    python scripts/plot.py --results results/demo   # the demo's folder -> results/demo/fewshot*.png
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import RESULTS  # noqa: E402
from coop.report.plot import ZEROSHOT_LABEL, _method_order, plot_figures  # noqa: E402
from coop.runs.results import load_results  # noqa: E402

log = logging.getLogger("plot")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--results", default=str(RESULTS), help="results folder to read (default: %(default)s)")
    p.add_output("--out", kind="figure", default=None,
                   help="output path without suffix: STEM.png/.pdf (the assignment's figure) and, with other methods, "
                        "STEM_all.png/.pdf (default: RESULTS/fewshot)")
    p.add_argument("--force", action="store_true",
                   help="replace files at --out that this project did not write (they are kept, renamed)")
    return p.parse_args(argv)


def summary_table(summary: dict) -> list:
    """The summary as plain lines: one per method and shot count (mean +- std over seeds)."""
    lines = []
    zs = summary["zeroshot"]
    lines.append(f"{'method':<16} {'shots':>5}  {'mean ± std':>15}  seeds")
    lines.append(f"{ZEROSHOT_LABEL:<16} {0:>5}  {zs['accuracy']:>15.2f}  -" if zs else
                 f"{ZEROSHOT_LABEL:<16} {0:>5}  {'(missing)':>15}  -")
    for method in _method_order(summary["methods"]):
        for k, s in sorted(summary["methods"][method]["shots"].items()):
            ms = f"{s['mean']:.2f} ± {s['std']:.2f}"
            lines.append(f"{method:<16} {k:>5}  {ms:>15}  {','.join(map(str, s['seeds']))}")
    return lines


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"results folder {results} does not exist: run scripts/zeroshot.py and "
                        f"scripts/train_coop.py first, or pass --results DIR")
    out = Path(args.out) if args.out else results / "fewshot"
    if out.suffix.lower() in (".png", ".pdf"):
        out = out.with_suffix("")
    drawn = plot_figures(load_results(results), out, source=results)
    summary = drawn[-1]  # the one with every method
    for line in summary_table(summary):
        log.info("%s", line)
    if summary["random_weights"]:
        log.warning("some records came from random weights: these numbers are not CLIP/CoOp accuracies")
    for p in (p for d in drawn for p in d["paths"]):
        log.info("wrote %s", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
