#!/usr/bin/env python
"""The report's generated figures and tables, made from the model (random:RN50 has RN50's shapes).

    python scripts/make_figures.py                 # writes into report/figures/

Writes ``architecture.png`` (the diagram), ``rn50_shapes.md`` (shapes and parameter counts from
forward hooks) and ``coop_params.md`` (what CoOp and each block modification train and cost, and
how many token rows each text block processes for Caltech101's class names), and refreshes the
table of departures from CoOp in report/REPORT.md (from coop/methods/departures.py).
The weights are random: no number written here depends on weight values.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402

log = logging.getLogger("make_figures")
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_output("--out", kind="folder", default=str(ROOT / "report" / "figures"), help="folder to write into (default: %(default)s)")
    p.add_argument("--arch", default="RN50", help="random architecture to describe (default: %(default)s)")
    p.add_argument("--split-file", default="splits/caltech101.json",
                   help="class names for the token counts (default: %(default)s)")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop.report.architecture import shape_rows, shape_table_markdown, totals
    from coop.report.diagram import draw_architecture
    from coop.report.trainable import token_counts, token_counts_markdown, trainable_rows, trainable_table_markdown
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
    write_text(out / "coop_params.md", params_md)
    log.info("wrote %s", out / "coop_params.md")
    draw_architecture(rows, out / "architecture.png", tot=tot)
    log.info("wrote %s", out / "architecture.png")
    from coop.report.document import DOCS_RECIPE, REPO_REPORT, refresh_departures

    refresh_departures(REPO_REPORT, recipe=DOCS_RECIPE)
    log.info("refreshed the departures tables of %s and %s from coop/methods/departures.py", REPO_REPORT, DOCS_RECIPE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
