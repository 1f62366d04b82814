#!/usr/bin/env python
"""A finished sweep's time per stage, measured from its records, beside check_env.py's projection.

    python scripts/check_env.py --json check.json          # just before the sweep, on the same machine
    bash scripts/run_all.sh ...                            # the sweep
    python scripts/sweep_timing.py --results results --check check.json --out results/realsize.json
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402

log = logging.getLogger("sweep_timing")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--results", required=True, help="the sweep's results folder")
    p.add_argument("--check", default=None, help="check_env.py --json output made before the sweep (the projection)")
    p.add_argument("--out", default=None, help="also write the table and its rows as JSON here")
    p.add_argument("--note", default="", help="a line to keep with the table (machine, load, what was run)")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    from coop.report.sweep_timing import stages, table
    from coop.utils.atomic import write_json

    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"--results {results} is not a folder; give the folder a sweep wrote")
    check = None
    if args.check:
        try:
            check = json.loads(Path(args.check).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"--check {args.check} is not check_env.py's JSON ({e}); make it with "
                            f"python scripts/check_env.py --json {args.check}") from None
    rows = stages(results, check)
    if not rows:
        raise UserError(f"no finished run in {results}")
    lines = table(rows)
    print("\n".join(lines))
    if args.out:
        write_json(args.out, {"results": str(results), "note": args.note, "rows": rows, "table": lines,
                              "check_env": {k: (check or {}).get(k) for k in ("when", "cpu", "measurements")}})
        log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
