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
    p.add_output("--out", kind="sweep_timing", default=None, help="also write the table and its rows as JSON here")
    p.add_argument("--force", action="store_true",
                   help="set aside a file at --out that is not a timing JSON, or a committed one (kept, renamed)")
    p.add_argument("--cache-dir", default=None, help="the sweep's feature cache folder (its size is reported)")
    p.add_argument("--no-draw", dest="draw", action="store_false",
                   help="do not time the figure and the report (drawn again into a temporary folder)")
    p.add_argument("--peak-rss-mb", type=float, default=None,
                   help="the sweep's peak memory measured outside it (e.g. /usr/bin/time -v), for records "
                        "that carry none")
    p.add_argument("--note", default="", help="a line to keep with the table (machine, load, what was run)")
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    from coop.measure.sweep_timing import drawing_rows, folder_mb, shares, stages, table
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
        if not isinstance(check, dict) or not isinstance(check.get("measurements", {}), dict):
            raise UserError(f"--check {args.check} is not check_env.py's JSON (no measurements object); make it "
                            f"with python scripts/check_env.py --json {args.check}")
    notes: list = []  # what the selection left out (other data, weights, code) or showed apart (other settings)
    rows = stages(results, check, notes)
    if not rows:
        raise UserError(f"no finished run in {results}")
    if args.draw:
        rows += drawing_rows(results)
    lines = table(rows)
    peaks = [r["peak_rss_mb"] for r in rows if r.get("peak_rss_mb")] + ([args.peak_rss_mb] if args.peak_rss_mb else [])
    totals = {"measured_s": sum(r["measured_s"] or 0.0 for r in rows), "shares": shares(rows),
              "peak_rss_mb": max(peaks) if peaks else None,
              "disk_mb": {"results": folder_mb(results), "cache": folder_mb(Path(args.cache_dir)) if args.cache_dir else None}}
    print("\n".join(lines + [f"note: {n}" for n in notes]))
    projected = [r for r in rows if r["measured_s"] and r["projected_s"]]
    if projected:
        m, pr = sum(r["measured_s"] for r in projected), sum(r["projected_s"] for r in projected)
        totals["projected_stages"] = {"measured_s": m, "projected_s": pr}
        print(f"\nprojected: check_env's unit costs for the records' model and precision times the work counted "
              f"from the records (model loading not included); those {len(projected)} stages took "
              f"{m / 60:.1f} min against {pr / 60:.1f} min projected ({m / pr:.2f})")
    elif check is not None:
        log.warning("nothing projected: %s holds no usable unit costs for the records' model and precision "
                    "(check_env.py times random:RN50, and random:tiny for the demo, on the machine it runs on)",
                    args.check)
    mb = lambda v: "—" if v is None else f"{v:,.0f} MB"  # noqa: E731
    print(f"total of the stages {totals['measured_s'] / 60:.1f} min (not the wall time: no model loading, no pauses); shares: "
          + ", ".join(f"{k} {v:.0%}" for k, v in totals["shares"].items())
          + f"; peak RSS {mb(totals['peak_rss_mb'])}; disk: results {mb(totals['disk_mb']['results'])}, "
            f"feature cache {mb(totals['disk_mb']['cache'])}")
    if args.out:
        write_json(args.out, {"kind": "sweep_timing", "results": str(results), "note": args.note, "rows": rows, "table": lines,
                              "totals": totals, "notes": notes,
                              "check_env": {k: (check or {}).get(k) for k in ("when", "cpu", "measurements")}})
        log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
