#!/usr/bin/env python
"""Zero-shot CLIP on the Caltech101 test split (prompt "a photo of a {}."; another --dataset brings its own
split and template), or evaluate a learned CoOp context with --context.

    python scripts/zeroshot.py                              # results/zeroshot.json
    python scripts/zeroshot.py --templates ensemble --out results/zeroshot_ensemble.json
    python scripts/zeroshot.py --context results/coop/shots4_seed1.pt   # results/eval_coop_shots4_seed1_<hash>.json
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser, add_common_args, add_encoder_args  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402

log = logging.getLogger("zeroshot")



def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    add_common_args(p)
    add_encoder_args(p)
    p.add_argument("--templates", default="single",
                   help="'single' (the dataset's template; Caltech101: CoOp's \"a photo of a {}.\"), 'ensemble' "
                        "(7 CLIP templates, averaged), or "
                        "templates separated by '|' (default: %(default)s)")
    p.add_argument("--context", default=None, help="a learned context (.pt from train_coop.py) to evaluate instead")
    p.add_output("--out", kind=lambda a: "evaluation" if a.context else "zeroshot", default=None,
                 help="result file (default: RESULTS/zeroshot.json)")
    return p.parse_args(argv)


ACTS_ON = ("force", "verbose", "out", "context")  # every other flag must change the run (coop.runs.flags)


def config_of(args: argparse.Namespace):
    """The run the flags ask for; a saved context (--context) brings its own prompt, so no templates."""
    from coop.methods.zeroshot import ZeroShotConfig

    return ZeroShotConfig(model=args.model, data_root=args.data_root, split_file=args.split_file, dataset=args.dataset,
                          templates="single" if args.context else args.templates, device=args.device,
                          results=args.results, cache_dir=args.cache_dir, clip_dir=args.clip_dir,
                          precision=args.precision, workers=args.workers, encode_batch_size=args.encode_batch_size)


def runs_of(args: argparse.Namespace) -> list:
    return [config_of(args)]


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from coop.utils.atomic import remove_stale_temp_files
    from coop.runs.preflight import check_run
    from coop.runs.overwrite import check_may_replace
    from coop.runs.results import read_result, write_result
    from coop.pipeline.sweep import already_done, result_path, single_run
    from coop.methods.zeroshot import ZeroShotConfig, evaluate_context, run_zeroshot, resolve_templates

    from coop.runs.flags import refuse_ignored

    resolve_templates(args.templates)  # bad templates fail before anything loads
    refuse_ignored(args, runs_of, ACTS_ON,
                   what="an evaluation of a saved context (--context)" if args.context else "zero-shot CLIP")
    cfg = config_of(args)
    check_run(cfg)
    remove_stale_temp_files(args.results)
    if args.context:
        from coop.methods.context import read_context
        from coop.utils.hashing import sha256_file

        read_context(args.context)  # a wrong file is one clear line, before anything else
        digest = sha256_file(args.context)
        out = Path(args.out) if args.out else evaluation_path(args.results, args.context, digest)
        old = read_result(out) if out.is_file() else None
        if not (old and old.get("kind") == "evaluation" and old.get("context_sha256") == digest):
            # an evaluation of another context, a run's record or a user's file: never replaced unasked
            check_may_replace(out, ("evaluation",) if old is None or old.get("kind") != "evaluation" else (),
                              args.force)
        with single_run(cfg, out):
            write_result(out, {**evaluate_context(cfg, args.context), "context_sha256": digest})
        return 0
    out = Path(args.out) if args.out else result_path(cfg)
    check_may_replace(out, ("zeroshot",), args.force)
    with single_run(cfg, out):
        if already_done(cfg, out, force=args.force):
            log.info("%s is already done (pass --force to redo it)", out)
            return 0
        write_result(out, run_zeroshot(cfg))
    return 0


def evaluation_path(results: str, context: str, digest: str) -> Path:
    """``RESULTS/eval_<folder>_<stem>_<8 hex of the context's SHA-256>.json``: two contexts never share one
    (``coop/shots4_seed1.pt`` and ``coop_adapter/shots4_seed1.pt`` included)."""
    ctx = Path(context).resolve()
    return Path(results) / f"eval_{ctx.parent.name}_{ctx.stem}_{digest[:8]}.json"


if __name__ == "__main__":
    sys.exit(main())
