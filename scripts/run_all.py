#!/usr/bin/env python
"""The whole sweep: zero-shot CLIP, CoOp at shots x seeds, the figure, the report.

    bash scripts/run_all.sh --demo          # offline demo: synthetic data, random tiny CLIP
    bash scripts/run_all.sh                 # real run: RN50 weights + data/caltech-101
    bash scripts/run_all.sh --shots "1 2 4 8 16" --seeds "1 2 3" --device cuda

Finished runs are skipped (--force redoes them). The demo writes into results/demo/ and every
number it produces comes from random weights: it is not an accuracy of CLIP or CoOp.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser, add_common_args, parse_int_list  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import DATA, RESULTS, SPLIT  # noqa: E402
from coop.model.block_mods import BLOCK_MODS, bonus_mods  # noqa: E402
from coop.methods.train_config import coop_epochs  # noqa: E402
from coop.runs.results import LONGER  # noqa: E402
from coop.methods.train_flags import add_train_args, train_config  # noqa: E402
from coop.pipeline.drawn import is_stale, mark_drawn  # noqa: E402

log = logging.getLogger("run_all")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--demo", action="store_true",
                   help="offline demo on synthetic data with random:tiny, into results/demo/")
    p.add_argument("--shots", default="1 2 4", help='shots to train (default: "%(default)s")')
    p.add_argument("--seeds", default="1 2 3", help='seeds (default: "%(default)s")')
    p.add_argument("--templates", default="single", help="zero-shot prompt(s), see scripts/zeroshot.py")
    p.add_argument("--no-report", dest="report", action="store_false", help="do not regenerate the report")
    p.add_argument("--print-commands", action="store_true",
                   help="print the sweep's pending runs as one shell command each (for xargs -P, GNU parallel or a "
                        "SLURM array; see docs/parallel.md) and exit; then run_all with the same flags (without --force) "
                        "collects them; with --only, just those runs")
    p.add_argument("--only", action="append", metavar="RUN", default=None,
                   help="make only this run (e.g. coop/shots1_seed1, zeroshot, baselines/linear_probe/shots1_seed1; "
                        "repeatable), beside other such processes on the same folders; draws nothing")
    p.add_argument("--baselines", default="all", metavar="NAMES", type=baseline_names,
                   help="after CoOp, on the same few-shot images and test features (seconds to minutes from a warm "
                        f"cache): all (default), none, or names separated by spaces: {baseline_help()}")
    p.add_argument("--protocol", default="fewshot", choices=["fewshot", "base2new"],
                   help="fewshot (default): the assignment's sweep over all classes; base2new: CoOp's repository's "
                        "second protocol -- zero-shot CLIP, CoOp and CoCoOp trained on the base half of the classes, "
                        "tested on base and new (records in RESULTS/base2new/; see docs/base2new.md)")
    p.add_argument("--base2new-shots", dest="b2n_shots", type=int, default=None,
                   help="shots per base class in --protocol base2new (default: 16, as CoOp's base2new scripts)")
    p.add_argument("--tip-search", default="fewshot", choices=["fewshot", "val"],
                   help="Tip-Adapter's alpha/beta search: on the few-shot validation set (default), or on the whole "
                        "val part as Tip-Adapter's code does")
    p.add_argument("--no-longer", dest="longer", action="store_false",
                   help="leave out the check of under-training (section 8 of the report): plain CoOp at the smallest "
                        "shot count again with twice the epochs, paired with the default runs by seed (by default it "
                        "runs; at 1 shot its crops are the 2-shot runs', so it encodes nothing more)")
    add_common_args(p)
    add_train_args(p)
    # the bonus (a transformer-block modification trained with CoOp's context) runs by default, on CoOp's crops
    p.set_defaults(block_mod=DEFAULT_BLOCK_MOD)
    for action in p._actions:
        if action.dest == "block_mod":
            action.type = block_mod_names
            action.help = (f"the bonus: CoOp with these text-block modifications too, each on the same crops as its "
                           f"own figure line: all (default: {', '.join(BLOCK_MODS)}), none, or names separated by "
                           f"spaces")
    return p.parse_args(argv)


DEFAULT_BLOCK_MOD = "all"


def block_mod_names(spec: str) -> str:
    """--block-mod as typed, once every name in it is known (one line from the parser otherwise)."""
    try:
        bonus_mods(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def baseline_names(spec: str) -> str:
    """--baselines as typed, once every name in it is a method or group of coop.methods.table."""
    from coop.methods.table import selected

    try:
        selected(spec)
    except Exception as e:  # one line, from the parser: "argument --baselines: ..."
        raise argparse.ArgumentTypeError(str(e).replace("--baselines ", "")) from None
    return spec


def baseline_help() -> str:
    from coop.methods.table import methods

    table = methods()
    groups = sorted({m.group for m in table.values() if m.group})
    return "; ".join([", ".join(f"{k} = {m.name}" for k, m in table.items())] +
                     [f"{g} = {' and '.join(m.name for m in table.values() if m.group == g)}" for g in groups])


def finish(results: Path, changed: bool, report: bool) -> None:
    """The figure, then the report -- redone when a run changed, or when they are missing or drawn
    from other records than the folder holds now."""
    from coop.report.plot import plot_figures
    from coop.runs.results import load_results
    from coop.runs.selection import fingerprint
    from coop.pipeline.sweep import summary_lines

    for line in summary_lines(results):
        log.info("  %s", line)
    loaded = load_results(results)
    fp = fingerprint(loaded)
    png = results / "fewshot.png"
    if changed or is_stale(png, results, fp):
        plot_figures(loaded, results / "fewshot")  # fewshot.png: the assignment's; fewshot_all.png: with the rest
        mark_drawn(png, results, fp)
        log.info("wrote %s", png)
    if report:
        finish_report(results, changed)


def finish_report(results: Path, changed: bool) -> None:
    """The one report of the results folder (few-shot and base-to-new records both), after either protocol."""
    from coop.report.document import sweep_report, write_report

    out, fp = sweep_report(results)
    if changed or is_stale(out, results, fp):
        write_report(results, out)
        mark_drawn(out, results, fp)
        log.info("wrote the report: %s", out)


def execute(plan, after, args: argparse.Namespace, argv) -> int:
    """Either list the plan's pending runs as commands (--print-commands) or run them, then ``after``."""
    from coop.pipeline.sweep import run_sweep

    if args.print_commands:
        from coop.pipeline.commands import print_commands

        print_commands(plan, sys.argv[1:] if argv is None else list(argv), args.only)
    else:
        run_sweep(plan, after=after, only=args.only)
    return 0


def demo_caps() -> str:
    from coop.methods.table import methods

    return "; ".join(f"{m.name}: {', '.join(f'{k} {v}' for k, v in m.demo.items())} (theirs: "
                     f"{', '.join(str(m.options[k]) for k in m.demo)})" for m in methods().values() if m.demo)


def baseline_configs(args: argparse.Namespace, shots, seeds) -> list:
    """The baselines' runs (coop.methods.table), on the same few-shot images as CoOp's runs of each (shots, seed)."""
    from coop.methods.baselines import BaselineConfig
    from coop.methods.table import method, selected

    common = {k: getattr(args, k) for k in ("model", "data_root", "split_file", "dataset", "sampling", "precision",
                                            "device", "workers", "encode_batch_size", "results", "clip_dir", "cache_dir")}
    out = []
    for key in selected(args.baselines):
        entry = method(key)
        options = dict(entry.demo) if args.demo else {}
        if "search" in entry.options:
            options["search"] = args.tip_search
        out += [BaselineConfig(method=key, shots=k, seed=s, demo=args.demo, options=options, **common)
                for k in shots for s in seeds]
    return out


# Flags run_all acts on itself; every other flag must change a run of the protocol (coop.runs.flags)
ACTS_ON = ("print_commands", "only", "force", "report", "verbose", "demo", "protocol")


def plan_of(args: argparse.Namespace):
    """The sweep the flags ask for (pure: nothing is read or written)."""
    from dataclasses import replace

    from coop.methods.zeroshot import TEMPLATE_SETS, ZeroShotConfig
    from coop.pipeline.sweep import SweepPlan

    shots = parse_int_list(args.shots, "--shots")
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    if args.protocol == "base2new":
        from coop.methods.base2new import sweep_configs

        zs, runs = sweep_configs(args, seeds, args.demo)
        return SweepPlan(zs, runs, args.force)
    zs = ZeroShotConfig(model=args.model, data_root=args.data_root, split_file=args.split_file, dataset=args.dataset,
                        templates=args.templates, device=args.device, results=args.results,
                        cache_dir=args.cache_dir, clip_dir=args.clip_dir, demo=args.demo, precision=args.precision,
                        workers=args.workers, encode_batch_size=args.encode_batch_size)
    runs = [train_config(args, k, s, demo=args.demo, block_mod=None) for k in shots for s in seeds]
    # the other named prompt set, for the report's table of prompt wording (seconds: features are cached)
    runs += [replace(zs, templates=t, prompt_variant=True) for t in TEMPLATE_SETS if t != args.templates]
    for bonus in bonus_mods(args.block_mod):  # the bonus: CoOp with a text-block modification, on the same crops
        runs += [train_config(args, k, s, demo=args.demo, block_mod=bonus) for k in shots for s in seeds]
    if args.longer:  # section 8's check of under-training: the smallest shot count again, twice the epochs
        k = min(shots)
        runs += [train_config(args, k, s, demo=args.demo, block_mod=None, variant=LONGER,
                              epochs=2 * (args.epochs or coop_epochs(k))) for s in seeds]
    runs += baseline_configs(args, shots, seeds)
    return SweepPlan(zs, runs, args.force)


def runs_of(args: argparse.Namespace) -> list:
    plan = plan_of(args)
    return [plan.zeroshot, *plan.runs]


def prepare(args: argparse.Namespace) -> None:
    """--demo: its own synthetic data, random:tiny and small settings, in RESULTS/demo/ (made once)."""
    from coop.pipeline.sweep import DEMO_DIR, DEMO_EPOCHS, prepare_demo

    if args.dataset != "caltech101":  # its own images and split would fill --data-root and --split-file
        raise UserError(f"--demo runs its own synthetic data with random:tiny; it cannot take --dataset. Leave --demo "
                        f"out to run your data (with --model random:tiny for the same quick check)")
    given = [f for f, v, d in (("--model", args.model, "RN50"), ("--data-root", args.data_root, str(DATA)),
                               ("--split-file", args.split_file, str(SPLIT))) if v != d]
    if given:
        raise UserError(f"--demo runs its own synthetic data with random:tiny; it cannot take {', '.join(given)}. "
                        f"Leave --demo out to run your data and model")
    results = Path(args.results) / "demo" if args.results != str(RESULTS) else DEMO_DIR
    args.results = str(results)
    args.data_root, args.split_file = map(str, prepare_demo(results))
    args.model = "random:tiny"
    args.cache_dir = args.cache_dir or str(results / "cache")
    # the demo's 64-px crops are cut faster in this process than shipped from a worker (no effect on numbers)
    args.workers = 0 if args.workers is None else args.workers
    log.warning("DEMO: synthetic images and %s (random weights) -- no number here is an accuracy of CLIP or CoOp",
                args.model)
    if args.protocol == "fewshot":
        args.epochs = args.epochs or DEMO_EPOCHS
        log.warning("DEMO: %d epochs at every shot count (CoOp: 50/100/100), and each baseline capped as its "
                    "table entry says (%s), to check every stage in seconds", args.epochs, demo_caps())
    if args.protocol == "base2new":  # tiny: the synthetic classes have 6 training images each
        args.b2n_shots = 4 if args.b2n_shots is None else args.b2n_shots
        args.epochs = args.epochs or 3
        log.warning("DEMO base-to-new: %d shots per base class, %d epochs (the protocol's are 16 shots; CoOp 200, "
                    "CoCoOp 10 epochs)", args.b2n_shots, args.epochs)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from coop.methods.zeroshot import resolve_templates
    from coop.runs.flags import refuse_ignored

    parse_int_list(args.shots, "--shots")
    parse_int_list(args.seeds, "--seeds", minimum=0)
    resolve_templates(args.templates)
    if args.demo:
        prepare(args)
    refuse_ignored(args, runs_of, ACTS_ON, what=f"--protocol {args.protocol}",
                   hints={"shots": "--base2new-shots", "b2n_shots": "--shots"})
    plan = plan_of(args)
    if args.protocol == "base2new":
        def after(results: Path, changed: bool) -> None:
            from coop.report.base2new import finish_base2new

            finish_base2new(results / "base2new")
            if args.report:
                finish_report(results, changed)
    else:
        def after(results: Path, changed: bool) -> None:
            finish(results, changed, args.report)
    return execute(plan, after, args, argv)


if __name__ == "__main__":
    sys.exit(main())
