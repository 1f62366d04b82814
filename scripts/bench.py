#!/usr/bin/env python
"""Benchmark: naive CoOp vs ours (cached image features + exact fast text encoder), side by side.

Prints a table and writes results/bench.json: (a) the full training step, (b) the text side
forward+backward, (c) image-encoder throughput, (d) peak memory, (e) the projected time of the
whole sweep (zero-shot + shots x seeds with CoOp's epochs), from the measured unit costs.
Random weights are fine here: speed and memory do not depend on the weights' values.

    python scripts/bench.py                         # random:RN50 on the CPU
    python scripts/bench.py --device cuda
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.cli_args import ArgumentParser, parse_int_list  # noqa: E402
from coop.errors import cli, setup_logging  # noqa: E402

log = logging.getLogger("bench")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--model", default="random:RN50", help="(default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--split-file", default="splits/caltech101.json", help="for class names and image counts")
    p.add_argument("--data-root", default=None,
                   help="Caltech101 images: if given, image throughput includes JPEG decoding and preprocessing")
    p.add_argument("--shots", default="1 2 4", help='shots of the projected sweep (default: "%(default)s")')
    p.add_argument("--seeds", default="1 2 3", help='seeds of the projected sweep (default: "%(default)s")')
    p.add_argument("--views", type=int, default=None, help="augmented views per training image (default: train_coop's)")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions of the fast measurements (default: %(default)s)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="skip the slow naive measurements")
    p.add_argument("--out", default="results/bench.json", help="(default: %(default)s)")
    return p.parse_args(argv)


def fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min"


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop import benchmark as B
    from coop.atomic import write_json
    from coop.clip_loader import load_clip, resolve_device
    from coop.prompt_learner import CoOp
    from coop.results import environment, now
    from coop.split import read_split
    from coop.train import TrainConfig

    shots = parse_int_list(args.shots, "--shots")
    seeds = parse_int_list(args.seeds, "--seeds", minimum=0)
    views = args.views or TrainConfig().views
    device = str(resolve_device(args.device))
    split = read_split(args.split_file)
    names = split.classnames
    t0 = time.perf_counter()
    model, _ = load_clip(args.model, device=device)
    load_s = time.perf_counter() - t0
    coop = CoOp(model, names)
    rows, out = [], {"model": args.model, "n_classes": len(names), "views": views, "started_at": now()}

    log.info("(b) text side, forward+backward over %d prompts", len(names))
    text = {m: B.timeit(B.text_step(coop, m), repeat=r) for m, r in
            [("ours", args.repeat), ("truncated", 2), ("naive", 1)] if args.naive or m == "ours"}
    from coop.block_mods import BLOCK_MODS

    for mod in BLOCK_MODS:  # the modifications keep the fast path: their cost on top of ours
        text[f"ours+{mod}"] = B.timeit(B.text_step(CoOp(model, names, block_mod=mod), "ours"), repeat=args.repeat)
    out["text_fwd_bwd"] = text
    log.info("(a) one training step, batch 32")
    step = {"ours": B.timeit(B.training_step(coop, model, naive=False), repeat=args.repeat)}
    if args.naive:
        step["naive"] = B.timeit(B.training_step(coop, model, naive=True), repeat=1)
    out["train_step"] = step
    log.info("(c) image encoder")
    img = {"ours_channels_last_img_s": B.image_throughput(model, fast=True),
           "plain_img_s": B.image_throughput(model, fast=False) if args.naive else None}
    if args.data_root:
        from coop.data import find_image_root
        from coop.features import View, encode_images

        root = find_image_root(args.data_root)
        rels = [it[0] for it in split.test[::20][:64]]
        t = time.perf_counter()
        encode_images(model, root, rels, View(model.visual.input_resolution))
        img["end_to_end_img_s"] = len(rels) / (time.perf_counter() - t)
    out["image_encoder"] = img
    log.info("(d) peak memory, each in a fresh process")
    mem = {"ours": B.measure_in_child("ours", args.model, names, 3, device)}
    if args.naive:
        mem["naive"] = B.measure_in_child("naive", args.model, names, 1, device)
    out["memory"] = mem

    encode_rate = img.get("end_to_end_img_s") or img["ours_channels_last_img_s"]
    unique = B.unique_train_images(split.train, shots, seeds)
    proj = B.project_sweep(len(split.test), unique, views, len(names), shots, seeds, encode_rate,
                           step["ours"]["median_s"], load_s=load_s)
    out["projected_sweep"] = {"ours": proj, "encode_rate_img_s": encode_rate, "unique_train_images": unique,
                              "shots": shots, "seeds": seeds}
    if args.naive:
        out["projected_sweep"]["naive"] = {"total_s": proj["steps"] * step["naive"]["median_s"]
                                           + len(split.test) / img["plain_img_s"] + load_s}
    out["environment"] = environment(device)
    out["environment"]["cpu"] = platform.processor() or platform.machine()
    out["finished_at"] = now()

    def row(what, naive, ours):
        speed = f"{naive / ours:.1f}x" if naive and ours else "-"
        rows.append((what, fmt_s(naive) if naive else "-", fmt_s(ours), speed))

    row("(a) training step, batch 32", step.get("naive", {}).get("median_s"), step["ours"]["median_s"])
    row("(b) text fwd+bwd, 100 prompts", text.get("naive", {}).get("median_s"), text["ours"]["median_s"])
    if "truncated" in text:
        row("    ... truncation only", text["naive"]["median_s"], text["truncated"]["median_s"])
    for mod in BLOCK_MODS:
        row(f"    ... ours with --block-mod {mod}", text.get("naive", {}).get("median_s"), text[f"ours+{mod}"]["median_s"])
    lines = [f"Benchmark {args.model} on {device} ({torch.get_num_threads()} threads), {now()}",
             f"| {'measure':34} | {'naive':>10} | {'ours':>10} | {'speed-up':>8} |",
             f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 10}|"]
    lines += [f"| {a:34} | {b:>10} | {c:>10} | {d:>8} |" for a, b, c, d in rows]
    plain = img["plain_img_s"]
    lines.append(f"| {'(c) image encoder, img/s':34} | {plain or 0:>10.1f} | {img['ours_channels_last_img_s']:>10.1f} | "
                 f"{(img['ours_channels_last_img_s'] / plain) if plain else 0:>7.1f}x |")
    if "end_to_end_img_s" in img:
        lines.append(f"| {'    ... with JPEG decode + resize':34} | {'':>10} | {img['end_to_end_img_s']:>10.1f} | {'':>8} |")
    key = "cuda_max_allocated_mb" if device.startswith("cuda") else "peak_rss_mb"
    lines.append(f"| {'(d) peak memory, MB (' + key + ')':34} | {mem.get('naive', {}).get(key, 0):>10.0f} | "
                 f"{mem['ours'][key]:>10.0f} | {'':>8} |")
    naive_total = out["projected_sweep"].get("naive", {}).get("total_s")
    lines.append(f"| {'(e) projected sweep':34} | {fmt_s(naive_total) if naive_total else '-':>10} | "
                 f"{fmt_s(proj['total_s']):>10} | {(naive_total / proj['total_s']) if naive_total else 0:>7.1f}x |")
    lines.append(f"(e) = {proj['images_encoded']} images encoded ({len(split.test)} test + {unique} train x {views} views) "
                 f"in {fmt_s(proj['encode_s'])} + {proj['steps']} steps in {fmt_s(proj['train_s'])} + load {fmt_s(load_s)}")
    print("\n".join(lines))
    out["table"] = lines
    write_json(args.out, out)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
