#!/usr/bin/env python
"""What to run first on a machine with a GPU: one command, a few minutes, one JSON of what it saw.

    python scripts/gpu_check.py                  # the first GPU (cuda), results in results/gpu_check/
    python scripts/gpu_check.py --device cuda:1

1. the demo end to end on the GPU in fp32, amp and fp16 (synthetic data, random weights: its
   numbers are not accuracies; it shows every path runs on CUDA);
2. CUDA fp32 against the CPU on the same images and prompts (random:RN50): the encoder's input bit
   for bit, image features, text features and logits, with the bound they must meet (fp32 is fp32:
   TF32 is off);
3. ``scripts/bench.py --device cuda`` on random:RN50, the numbers docs/gpu.md asks for.
Writes ``results/gpu_check/gpu_check.json`` (its ``ok`` says whether every check passed).
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import UserError, cli, setup_logging  # noqa: E402
from coop.utils.paths import PROJECT_ROOT, RESULTS  # noqa: E402

log = logging.getLogger("gpu_check")
# CUDA fp32 vs CPU fp32, relative to the largest magnitude: different kernels sum in other orders
# (about 1e-6); TF32 would be about 1e-3, so this bound tells the two apart.
FP32_BOUND = 1e-4


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--device", default="cuda", help="the GPU to check (default: %(default)s)")
    p.add_output("--out", kind="folder", default=str(RESULTS / "gpu_check"), help="folder for its runs and JSON (default: %(default)s)")
    p.add_argument("--skip-bench", action="store_true", help="leave out bench.py (about 2 minutes)")
    return p.parse_args(argv)


def run(cmd, log_file: Path) -> dict:
    t = time.perf_counter()
    with open(log_file, "w") as f:
        rc = subprocess.run([sys.executable, *map(str, cmd)], stdout=f, stderr=subprocess.STDOUT,
                            cwd=str(PROJECT_ROOT)).returncode
    return {"command": " ".join(map(str, cmd)), "exit_code": rc, "seconds": round(time.perf_counter() - t, 1),
            "log": str(log_file)}


def rel_diff(a, b) -> float:
    return float((a.float().cpu() - b.float().cpu()).abs().max() / b.float().abs().max().clamp_min(1e-12))


def compare_with_cpu(device: str, image_root: Path, relpaths, model_name: str = "random:RN50") -> dict:
    """Image features, text features and logits of ``model_name`` (random:RN50: the real architecture) on CUDA
    fp32 against the CPU."""
    import torch

    from coop.features.encoder import EncodeOptions, encode
    from coop.features.views import TestView
    from coop.methods.zeroshot import zeroshot_weights
    from coop.model.clip_loader import load_clip
    from coop.model.prompt_learner import CoOp
    from coop.utils.seed import configure_numerics

    out = {}
    names = ["cat", "airplane", "grand piano", "motorbike"]
    for dev in ("cpu", device):
        configure_numerics(dev)
        model, _ = load_clip(model_name, device=dev)
        feats, bad = encode(model, image_root, [(r, None) for r in relpaths], TestView(model.visual.input_resolution),
                            EncodeOptions(workers=0))
        w = zeroshot_weights(model, names, ["a photo of a {}."])
        torch.manual_seed(0)
        coop = CoOp(model, names)
        with torch.no_grad():
            text = coop.text_features(fast=True)
            logits = coop(feats.to(dev))
        out[dev] = {"image": feats, "zeroshot_text": w, "coop_text": text, "coop_logits": logits}
    diffs = {k: rel_diff(out[device][k], out["cpu"][k]) for k in out["cpu"]}
    # the encoder's input itself must be the CPU's bit for bit (uint8 -> /255 -> CLIP's normalisation on
    # the GPU): every uint8 value in every channel
    from coop.features.views import to_input

    pixels = torch.arange(256, dtype=torch.uint8).repeat(3, 1).reshape(1, 3, 16, 16)
    same_input = bool(torch.equal(to_input(pixels.to(device)).cpu(), to_input(pixels)))
    return {"relative_max_diff": diffs, "bound": FP32_BOUND, "input_bit_for_bit": same_input,
            "ok": same_input and all(d <= FP32_BOUND for d in diffs.values())}


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop.model.device import resolve_device
    from coop.runs.provenance import environment, now
    from coop.utils.atomic import write_json

    dev = resolve_device(args.device)
    if dev.type != "cuda":
        raise UserError(f"--device {args.device} is not a CUDA GPU; this check is for a machine with one")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"started_at": now(), "device": str(dev), "gpu": torch.cuda.get_device_name(dev),
              "capability": ".".join(map(str, torch.cuda.get_device_capability(dev))), "demo": {}}
    for prec in ("fp32", "amp", "fp16"):
        log.info("demo on %s in %s", dev, prec)
        report["demo"][prec] = run(["scripts/run_all.py", "--demo", "--device", str(dev), "--precision", prec,
                                    "--results", out_dir / prec, "--seeds", "1", "--no-report"],
                                   out_dir / f"demo_{prec}.log")
    log.info("CUDA fp32 against the CPU on the demo's images")
    data = out_dir / "fp32" / "demo" / "data" / "101_ObjectCategories"
    rels = sorted(str(p.relative_to(data)) for p in data.rglob("*.jpg"))[:32] if data.is_dir() else []
    report["fp32_vs_cpu"] = compare_with_cpu(str(dev), data, rels) if rels else {"ok": False, "error": "no demo data"}
    if not args.skip_bench:
        log.info("bench.py --device %s (random:RN50)", dev)
        report["bench"] = run(["scripts/bench.py", "--device", str(dev), "--repeat", "3",
                               "--out", out_dir / "bench.json"], out_dir / "bench.log")
    report["environment"] = environment(dev)
    report["ok"] = (all(r["exit_code"] == 0 for r in report["demo"].values()) and report["fp32_vs_cpu"]["ok"]
                    and report.get("bench", {}).get("exit_code", 0) == 0)
    report["finished_at"] = now()
    write_json(out_dir / "gpu_check.json", report)
    for prec, r in report["demo"].items():
        log.info("demo %-4s: exit %d in %.0f s (%s)", prec, r["exit_code"], r["seconds"], r["log"])
    for k, d in report["fp32_vs_cpu"].get("relative_max_diff", {}).items():
        log.info("fp32 CUDA vs CPU, %-14s relative max diff %.1e (bound %.0e)", k, d, FP32_BOUND)
    log.info("%s: %s", "ALL CHECKS PASSED" if report["ok"] else "SOME CHECKS FAILED", out_dir / "gpu_check.json")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
