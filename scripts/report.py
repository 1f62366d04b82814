#!/usr/bin/env python
"""Render the report's generated parts from result JSON files.

    python scripts/report.py --results results --out report/REPORT.md
    python scripts/report.py --results results/demo --out results/demo/REPORT_demo.md

FILE gets the whole report: report/REPORT.template.md's hand-written text with the generated parts filled
in, the markers gone and its links pointing back to report/. (A FILE that holds the markers itself,
``<!-- results:begin -->`` ... ``<!-- results:end -->`` and the others, has only its blocks replaced.)
The figures go into ``figures/`` beside FILE. Numbers from random weights (the demo) carry a banner
and are refused for report/REPORT.md, the template and any file with the markers (exit code 2).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402
from coop.utils.paths import RESULTS  # noqa: E402

log = logging.getLogger("report")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--results", default=str(RESULTS), help="results folder (default: %(default)s)")
    p.add_output("--out", kind="report", required=True, help="Markdown file to write or update")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="tables only, no images")
    p.add_argument("--force", action="store_true",
                   help="replace an --out file this project did not write (it is kept, renamed)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from coop.report.document import write_report

    results = Path(args.results)
    if not results.is_dir():
        from coop.utils.errors import UserError

        raise UserError(f"--results {results} is not a folder; run bash scripts/run_all.sh (or --demo) first")
    out = write_report(results, args.out, figures=args.figures)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
