#!/usr/bin/env python
"""The report's generated figures and tables, made from the model (random:RN50 has RN50's shapes).

    python scripts/make_figures.py                 # writes into report/figures/

Writes ``architecture.png`` (the diagram), ``rn50_shapes.md`` (shapes and parameter counts from
forward hooks), ``causal_check.md`` (what the causal mask does, measured), ``exactness_check.md`` (the fast
text path and the block modifications at step 0 against the plain computation) and ``coop_params.md`` (what CoOp and each block modification train and cost, and
how many token rows each text block processes for Caltech101's class names), and refreshes the
blocks of report/REPORT.template.md that need no run: the tables of departures from CoOp (from
coop/methods/departures.py), appendix C's compute cost (from results/realsize.json and
results/bench.json) and the status of sections 7 and 10; then writes report/REPORT.md from it (from
results/'s records when they are real ones, else the status).
The weights are random: no number written here depends on weight values.

    python scripts/make_figures.py --demo-results results/demo   # also report/figures/demo_fewshot.png

``--demo-results`` draws the assignment's figure (zero-shot star, CoOp's line) from the demo's records
for the status of section 7, titled as what it is: synthetic images, random weights.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402

log = logging.getLogger("make_figures")
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_output("--out", kind="folder", default=str(ROOT / "report" / "figures"), help="folder to write into (default: %(default)s)")
    p.add_argument("--arch", default="RN50", help="random architecture to describe (default: %(default)s)")
    p.add_argument("--split-file", default="splits/caltech101.json",
                   help="class names for the token counts (default: %(default)s)")
    p.add_argument("--demo-results", default=None,
                   help="the demo's results folder: draw its few-shot figure as report/figures/demo_fewshot.png")
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="leave report/REPORT.md and docs/ alone (figures and tables only)")
    return p.parse_args(argv)


def sweep_projection(realsize: dict) -> dict:
    """The full sweep's projected seconds (fresh crops, ``--views 4``) from the check_env run kept in
    ``realsize`` (results/realsize.json): the projection docs/speed.md, README and the report quote."""
    from coop.data.split import read_split
    from coop.pipeline.machine_check import project, split_counts

    sweep = project(realsize["check_env"]["measurements"], {"sweep": split_counts(read_split(ROOT / "splits" / "caltech101.json"))})
    return {"fresh": sweep["sweep"]["fresh_fp32"]["total_s"], "views4": sweep["sweep"]["views4_fp32"]["total_s"]}


def cost_block() -> str:
    """Section 11 of the report, from results/realsize.json, results/bench.json and results/realsize_adapters.json."""
    from coop.report.cost import ADAPTERS, BENCH, REALSIZE, cost_markdown, load

    realsize = load(REALSIZE)
    return cost_markdown(realsize, load(BENCH), sweep_projection(realsize),
                         load(ADAPTERS) if ADAPTERS.is_file() else None)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop.report.architecture import shape_rows, shape_table_markdown, totals
    from coop.report.diagram import draw_architecture
    from coop.report.trainable import (split_words_markdown, token_counts, token_counts_markdown, trainable_rows,
                                       trainable_table_markdown)
    from coop.data.split import read_split
    from coop.utils.atomic import write_text
    from coop.model.clip_loader import random_clip

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    out = Path(args.out)
    stem = args.arch.lower()
    model = random_clip(args.arch)
    rows = shape_rows(model)
    tot = totals(model)
    write_text(out / f"{stem}_shapes.md", shape_table_markdown(rows, tot, args.arch))
    log.info("wrote %s", out / f"{stem}_shapes.md")
    n_blocks = len(model.transformer.resblocks)
    params_md = trainable_table_markdown(trainable_rows(model), n_blocks, args.arch)
    split = read_split(ROOT / args.split_file if not Path(args.split_file).is_absolute() else args.split_file)
    params_md += token_counts_markdown(token_counts(model, split.classnames), args.split_file)
    params_md += split_words_markdown(split.classnames, args.split_file)
    write_text(out / "coop_params.md", params_md)
    log.info("wrote %s", out / "coop_params.md")
    from coop.report.causal_check import causal_markdown, causal_rows
    from coop.report.exactness_check import exactness_markdown, exactness_rows

    write_text(out / "exactness_check.md", exactness_markdown(exactness_rows(model, split.classnames), f"random:{args.arch}"))
    log.info("wrote %s", out / "exactness_check.md")

    write_text(out / "causal_check.md", causal_markdown(causal_rows(model), f"random:{args.arch}"))
    log.info("wrote %s", out / "causal_check.md")
    draw_architecture(rows, out / "architecture.png", tot=tot)
    log.info("wrote %s", out / "architecture.png")
    if args.demo_results:
        from coop.report.plot import plot_fewshot
        from coop.report.status import DEMO_FIGURE
        from coop.runs.results import load_results

        loaded = load_results(args.demo_results)
        if not all(r.get("demo") for r in ([loaded["zeroshot"]] if loaded["zeroshot"] else []) + loaded["coop"].get("CoOp", [])):
            raise UserError(f"--demo-results {args.demo_results}: not the demo's records (run bash scripts/run_all.sh --demo)")
        stem = ROOT / "report" / Path(DEMO_FIGURE).with_suffix("")
        plot_fewshot(loaded, stem, only=("CoOp",))
        stem.with_suffix(".pdf").unlink(missing_ok=True)  # the report shows the PNG
        log.info("wrote %s.png", stem)
    if not args.report:
        return 0
    from coop.report.document import (DOCS_RECIPE, REPORT_TEMPLATE, refresh_departures, refresh_generated,
                                      write_committed_report)

    refresh_departures(REPORT_TEMPLATE, recipe=DOCS_RECIPE)
    refresh_generated(REPORT_TEMPLATE, cost_block())
    out = write_committed_report()
    log.info("refreshed %s (departures, compute cost, status), %s and %s", REPORT_TEMPLATE, out, DOCS_RECIPE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
