#!/usr/bin/env python
"""Benchmark: naive CoOp vs ours (cached image features + exact fast text encoder), side by side.

Prints a table and writes ``results/bench-<date>.json`` (the reference numbers docs/speed.md quotes stay in
``results/bench.json``): (a) the full training step, (b) the text side forward+backward, (c) image
encoder throughput -- the model alone, and with --data-root the whole input path (JPEG decoding,
CLIP's test view or CoOp's fresh crops, DataLoader workers) in fp32 and amp, (d) peak memory,
(e) the projected time of the whole sweep (zero-shot + shots x seeds with CoOp's epochs) in the
default fresh-crop mode and with --views 4, from the measured unit costs.
Random weights are fine here: speed and memory do not depend on the weights' values.

    python scripts/bench.py --data-root ../shared/data/caltech101      # random:RN50 on the CPU
    python scripts/bench.py --device cuda --data-root data
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser, parse_int_list  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import RESULTS, SPLIT  # noqa: E402

log = logging.getLogger("bench")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--model", default="random:RN50", help="(default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--split-file", default=str(SPLIT), help="for class names and image counts")
    p.add_argument("--data-root", default=None,
                   help="Caltech101 images: if given, image throughput includes JPEG decoding and preprocessing")
    p.add_argument("--shots", default="1 2 4", help='shots of the projected sweep (default: "%(default)s")')
    p.add_argument("--seeds", default="1 2 3", help='seeds of the projected sweep (default: "%(default)s")')
    p.add_argument("--views", type=int, default=4, help="N of the approximate --views mode to project (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: train_coop's)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions of the fast measurements (default: %(default)s)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="skip the slow naive measurements")
    p.add_output("--out", kind="bench", default=None,
                 help="JSON to write (default: results/bench-<date>.json; results/bench.json holds the reference "
                      "numbers docs/speed.md quotes: replacing it takes --force)")
    p.add_argument("--force", action="store_true",
                   help="set aside a file at --out that is not a bench JSON, or the committed reference (kept, renamed)")
    return p.parse_args(argv)


def fmt_s(s) -> str:
    if s is None:
        return "—"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min"


def fmt_rate(r) -> str:
    return "—" if r is None else f"{r:.1f}"


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop.measure import benchmark as B
    from coop.utils.atomic import write_json
    from coop.model.clip_loader import load_clip
    from coop.model.device import resolve_device
    from coop.runs.provenance import environment, now
    from coop.data.split import read_split

    from coop.model.precision import cpu_supports_bf16
    from coop.pipeline.machine_check import cpu_info, cpu_label

    shots = parse_int_list(args.shots, "--shots")
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    for flag, value in (("--repeat", args.repeat), ("--views", args.views)):
        if value < 1:
            raise UserError(f"{flag} {value}: give a whole number of at least 1")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers {args.workers}: give 0 (decode in this process) or more")
    device = str(resolve_device(args.device))
    split = read_split(args.split_file)
    names = split.classnames
    out_path = Path(args.out or RESULTS / f"bench-{now()[:10]}.json")
    if not args.out:
        from coop.runs.outputs import claim

        claim(out_path, "bench", args.force)  # before the measurements, which take minutes
    t0 = time.perf_counter()
    model, _ = load_clip(args.model, device=device)
    load_s = time.perf_counter() - t0
    coop = B.build_coop(model, names)
    dev = B.device_of(model)
    out = {"kind": "bench", "model": args.model, "n_classes": len(names), "views": args.views, "started_at": now()}

    try:  # a failure half-way (a full disk, Ctrl-C) keeps the measurements made so far
        log.info("(b) text side, forward+backward over %d prompts", len(names))
        text = {m: B.timeit(B.text_step(coop, m), repeat=r, device=dev) for m, r in
                [("ours", args.repeat), ("truncated", 2), ("naive", 1)] if args.naive or m == "ours"}
        from coop.model.block_mods import BLOCK_MODS

        for mod in BLOCK_MODS:  # the modifications keep the fast path: their cost on top of ours
            text[f"ours+{mod}"] = B.timeit(B.text_step(B.build_coop(model, names, block_mod=mod), "ours"),
                                           repeat=args.repeat, device=dev)
        out["text_fwd_bwd"] = text
        log.info("(a) one training step, batch 32")
        step = {"ours": B.timeit(B.training_step(coop, model, naive=False), repeat=args.repeat, device=dev)}
        if args.naive:
            step["naive"] = B.timeit(B.training_step(coop, model, naive=True), repeat=1, device=dev)
        precisions = ["fp32"] + (["amp"] if device.startswith("cuda") or cpu_supports_bf16() else [])
        if "amp" in precisions:
            step["ours_amp"] = B.timeit(B.training_step(coop, model, naive=False, precision="amp"), repeat=args.repeat,
                                        device=dev)
        out["train_step"] = step
        log.info("(c) image encoder")
        img = {"ours_channels_last_img_s": B.image_throughput(model, fast=True, repeat=args.repeat),
               "plain_img_s": B.image_throughput(model, fast=False) if args.naive else None}
        if args.data_root:
            from coop.data.dataset import load_dataset

            root = load_dataset("caltech101").find_image_root(args.data_root)
            rels = [it[0] for it in split.test[::19][:128]]
            for prec in precisions:  # about 10 s each on 2 CPU cores; the crops: 16 images x 16 epochs
                img[f"test_view_{prec}_img_s"] = B.pipeline_throughput(model, root, rels, prec, workers=args.workers)
                img[f"fresh_crops_{prec}_img_s"] = B.pipeline_throughput(model, root, rels[:16], prec, crops_per_image=16,
                                                                         workers=args.workers)
            res = model.visual.input_resolution  # the input path alone, before and after issue 22's change
            img["input_path_ms_per_crop"] = {k: B.input_path_ms(root, rels[:16], res, 16, path=k) for k in B.INPUT_PATHS}
        out["image_encoder"] = img
        log.info("(d) peak memory, each in a fresh process")
        mem = {"ours": B.measure_in_child("ours", args.model, names, 3, device)}
        if args.naive:
            mem["naive"] = B.measure_in_child("naive", args.model, names, 1, device)
        out["memory"] = mem
        if device == "cpu":  # the tensors a step holds at its peak (torch.profiler; the CPU allocator's events)
            from coop.measure.step_memory import step_memory

            out["step_tensor_memory"] = step_memory(model, names, kinds=("ours", "naive") if args.naive else ("ours",))
        log.info("(f) the baselines of the sweep, from a warm cache (features of the real shapes)")
        out["baselines"] = B.baselines_seconds(len(names), model.text_projection.shape[1], shots, seeds,
                                               n_test=len(split.test))

        log.info("(g) CoCoOp, the base half's %d classes: naive (77 tokens) against ours (per-image prefix)",
                 (len(names) + 1) // 2)
        from coop.pipeline.base2new_projection import base2new_counts, measure_base2new, project_base2new
        from coop.measure.bench_cocoop import cocoop_step_times

        paths = ("naive", "fast") if args.naive else ("fast",)
        out["cocoop"] = cocoop_step_times(model, names[: (len(names) + 1) // 2], train_batch=1, eval_batch=32,
                                          repeat=max(1, min(args.repeat, 3)), eval_repeat=1, paths=paths)
        b2n_units = measure_base2new(model, names, repeat=2)
        b2n_counts = base2new_counts(len(split.test), len(names), seeds=seeds, views=args.views)

        crops = {"fresh": B.crops_to_encode(split.train, shots, seeds), "views": B.crops_to_encode(split.train, shots, seeds, args.views)}
        proj = {}
        for prec in precisions:
            test_rate = img.get(f"test_view_{prec}_img_s") or img["ours_channels_last_img_s"]
            crop_rate = img.get(f"fresh_crops_{prec}_img_s") or img["ours_channels_last_img_s"]
            for mode, n in crops.items():
                step_s = step["ours_amp" if prec == "amp" else "ours"]["median_s"]
                proj[f"{mode}_{prec}"] = B.project_sweep(len(split.test), n, len(names), shots, seeds, test_rate, crop_rate,
                                                         step_s, load_s=load_s)
        naive_total = None
        if args.naive:  # CoOp as usually written: every step encodes its 32 fresh crops and 100 full prompts
            first = proj["fresh_fp32"]
            naive_total = first["steps"] * step["naive"]["median_s"] + len(split.test) / img["plain_img_s"] + load_s
        out["projected_sweep"] = {**proj, "naive_total_s": naive_total, "crops": crops, "shots": shots, "seeds": seeds}
        rate = img.get("fresh_crops_fp32_img_s") or img["ours_channels_last_img_s"]
        out["projected_base2new"] = {"counts": b2n_counts, "units": b2n_units,
                                     **project_base2new(b2n_counts, b2n_units, rate, load_s)}
        out["environment"] = environment(device)
        cpu = cpu_info()
        out["environment"]["cpu"] = cpu_label(cpu)
        out["environment"]["cpu_flags"] = cpu["flags"]
        out["finished_at"] = now()

    except BaseException:
        write_json(out_path.with_name(out_path.stem + "-partial.json"), {**out, "complete": False})
        log.warning("the benchmark stopped; its measurements so far are in %s",
                    out_path.with_name(out_path.stem + "-partial.json"))
        raise

    rows = []

    def row(what, naive, ours, fmt=fmt_s, speed=True):
        ratio = f"{naive / ours:.1f}x" if speed and naive and ours else "—"
        rows.append((what, fmt(naive), fmt(ours), ratio))

    row("(a) training step, batch 32", step.get("naive", {}).get("median_s"), step["ours"]["median_s"])
    if "ours_amp" in step:
        row("    ... ours with --precision amp", step.get("naive", {}).get("median_s"), step["ours_amp"]["median_s"])
    row("(b) text fwd+bwd, 100 prompts", text.get("naive", {}).get("median_s"), text["ours"]["median_s"])
    row("    ... truncation only", text.get("naive", {}).get("median_s"), text.get("truncated", {}).get("median_s"))
    for mod in BLOCK_MODS:
        row(f"    ... ours with --block-mod {mod}", text.get("naive", {}).get("median_s"), text[f"ours+{mod}"]["median_s"])
    row("(c) image encoder alone, img/s", img["plain_img_s"], img["ours_channels_last_img_s"], fmt_rate, speed=False)
    for prec in precisions:
        if f"test_view_{prec}_img_s" in img:
            row(f"    ... test view + JPEG decode, {prec}", None, img[f"test_view_{prec}_img_s"], fmt_rate)
            row(f"    ... fresh crops via DataLoader, {prec}", None, img[f"fresh_crops_{prec}_img_s"], fmt_rate)
            if prec == "fp32":  # the encoder alone is measured in fp32
                share = img["fresh_crops_fp32_img_s"] / img["ours_channels_last_img_s"]
                rows.append(("    ... fresh crops / encoder alone, fp32", "—", f"{100 * share:.0f}%", "target ≥95%"))
    if "input_path_ms_per_crop" in img:
        ip = img["input_path_ms_per_crop"]
        for old, what in (("decode_per_crop", "decode per crop (before issue 22)"),
                          ("float_per_crop", "decode once, float per crop (c22aa4e)")):
            rows.append((f"    ... input path alone, ms/crop: {what}", f"{ip[old]:.2f}", f"{ip['ours']:.2f}",
                         f"{ip[old] / ip['ours']:.2f}x"))
    key = "cuda_max_allocated_mb" if device.startswith("cuda") else "peak_rss_mb"
    rows.append((f"(d) peak memory, MB ({key})", f"{mem['naive'][key]:.0f}" if "naive" in mem else "—",
                 f"{mem['ours'][key]:.0f}", "—"))
    if "step_tensor_memory" in out:
        tm = out["step_tensor_memory"]
        naive_mb = tm["naive"]["peak_mb"] if "naive" in tm else None
        row("    ... peak tensor memory of a step, MB", naive_mb, tm["ours"]["peak_mb"], lambda v: "—" if v is None else f"{v:.0f}")
    bl = out["baselines"]
    row(f"(f) baselines, {len(shots) * len(seeds)} (shots, seed) pairs x {len(bl) - 1} methods", None, bl["total"])
    rows.append(("    ... linear probe / Tip-Adapter / -F", "—", f"{bl['lp']:.0f}/{bl['tip']:.0f}/{bl['tip_f']:.0f} s", "—"))
    if "clap" in bl:
        rows.append(("    ... CLIP-Adapter / TaskRes / ZS-LP / CLAP", "—",
                     f"{bl['clip_adapter']:.0f}/{bl['taskres']:.0f}/{bl['zs_lp']:.0f}/{bl['clap']:.0f} s", "—"))
    for name, p in proj.items():
        mode, prec = name.split("_")
        label = "fresh crops (default)" if mode == "fresh" else f"--views {args.views} (approximate)"
        row(f"(e) sweep, {label}, {prec}", naive_total if name == "fresh_fp32" else None, p["total_s"])
    cc = out["cocoop"]
    row(f"(g) CoCoOp training step, batch 1, {cc['n_cls']} classes", cc.get("train_naive_wall_s"), cc["train_fast_wall_s"])
    row(f"    ... CoCoOp evaluation, {cc['eval_batch']} images", cc.get("eval_naive_wall_s"), cc["eval_fast_wall_s"])
    pb = out["projected_base2new"]
    for mode in ("fresh", f"views{args.views}"):
        row(f"(h) base-to-new protocol, {'fresh crops' if mode == 'fresh' else '--views ' + str(args.views)}, fp32",
            None, pb[mode]["total_s"])
    w = max(len(r[0]) for r in rows)
    lines = [f"Benchmark {args.model} on {device} ({torch.get_num_threads()} threads; {cpu_label(cpu)}), {now()}",
             f"| {'measure':{w}} | {'naive/old':>10} | {'ours':>10} | {'speed-up':>11} |",
             f"|{'-' * (w + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 13}|"]
    lines += [f"| {a:{w}} | {b:>10} | {c:>10} | {d:>11} |" for a, b, c, d in rows]
    for name, p in proj.items():
        lines.append(f"(e) {name}: {len(split.test)} test images + {p['crops']} training crops encoded in "
                     f"{fmt_s(p['encode_s'])} + {p['steps']} steps in {fmt_s(p['train_s'])} + load {fmt_s(load_s)}")
    print("\n".join(lines))
    out["table"] = lines
    write_json(out_path, out)
    log.info("wrote %s", out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
