#!/usr/bin/env python
"""Check this machine before a run: versions, torchvision's compiled ops, the device and the CPU's
bfloat16 support, the fastest precision that works here, and -- from a 10-20 s measurement of
random:RN50 (image encoder, input path on synthetic JPEGs, one CoOp step) -- how long the demo and
the sweep (fresh crops and --views 4) would take here. Needs no data, weights or network.

    python scripts/check_env.py                      # report on stdout (progress on stderr)
    python scripts/check_env.py --json check.json    # also as JSON
    python scripts/check_env.py --no-measure         # versions, device and precision only (seconds)

Exit code 0, or 1 when torchvision's ops do not load (the report names the fix).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coop.runs.cli_args import ArgumentParser  # noqa: E402
from coop.utils.errors import cli, setup_logging  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(__doc__)
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N "
                                                    "(default: %(default)s)")
    p.add_argument("--no-measure", dest="measure", action="store_false",
                   help="skip the 10-20 s measurement and the projections")
    p.add_output("--json", kind="check_env", default=None, metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument("--force", action="store_true",
                   help="set aside a file at --json that is not an earlier check's JSON (it is kept, renamed)")
    return p.parse_args(argv)


def fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s" if s < 90 else f"{s / 60:.0f} min"


def fmt_range(s: float, u: float) -> str:
    return f"{fmt_s(s)} ({fmt_s(s * (1 - u))}-{fmt_s(s * (1 + u))})"


def yes(v: Optional[bool]) -> str:
    return "unknown" if v is None else "yes" if v else "no"


def device_line(dev: Dict[str, Any], used: str) -> str:
    if dev["cuda"]:
        have = f"CUDA: {dev['cuda_count']} GPU{'s' if dev['cuda_count'] != 1 else ''} ({', '.join(dev['cuda_names'])})"
    else:
        have = "no CUDA GPU" + (", MPS available (--device mps)" if dev["mps"] else ", no MPS")
    return f"{used}; {have}"


def work_line(c: Dict[str, Any], modes=("fresh", "views4")) -> str:
    crops = ", ".join(f"{c['crops'][mode]:,} crops ({mode})" for mode in modes)
    return f"{c['n_test']:,} test images, {crops}, {c['steps']:,} steps"


def report_lines(r: Dict[str, Any], uncertainty: float) -> List[str]:
    v, cpu, ops = r["versions"], r["cpu"], r["torchvision_ops"]
    lines = [f"Environment check, {r['when']}",
             "  versions     " + ", ".join(f"{k} {val}" for k, val in
                                          (("Python", v["python"]), ("torch", v["torch"]),
                                           ("torchvision", v["torchvision"]), ("clip", v["clip"]),
                                           ("numpy", v["numpy"]), ("scikit-learn", v["scikit-learn"])))]
    if ops["ok"]:
        lines.append("  torchvision  its compiled ops load (torchvision.ops.nms ran)")
    else:
        lines += [f"  torchvision  BROKEN: {ops['error']}", f"               fix: {ops['fix']}"]
    lines += [f"  device       {device_line(r['device'], r['device_used'])}",
              f"  CPU          {cpu['model']}, {cpu['cores']} cores, torch uses {cpu['threads']} threads",
              "  CPU flags    " + ", ".join(f"{f} {yes(h)}" for f, h in cpu["flags"].items())
              + f"; torch: native bfloat16 {yes(cpu['torch_bf16'])}",
              f"  precision    {r['precision']['choice']}: {r['precision']['reason']}"]
    m, counts, proj = r.get("measurements"), r["counts"], r.get("projections")
    if not m:
        why = "torchvision must load first" if not ops["ok"] else "--no-measure"
        lines += [f"  measured     skipped ({why})",
                  f"  work         sweep: {work_line(counts['sweep'])}",
                  f"               demo (random:tiny): {work_line(counts['demo'], ('fresh',))}"]
    else:
        lines.append(f"  measured     {m['model']} on {m['device']} ({m['threads']} threads) in "
                     f"{m['elapsed_s']:.1f} s, model load {fmt_s(m['load_s'])}:")
        for p, u in m["units"].items():
            lines.append(f"               {p:5} image encoder {u['encoder_img_s']:.1f} img/s, input path "
                         f"{u['crops_img_s']:.1f} img/s, CoOp step {fmt_s(u['step_s'])}")
        lines.append("               demo's random:tiny: " + "; ".join(
            f"{p} input path {u['crops_img_s']:.0f} img/s, step {fmt_s(u['step_s'])}"
            for p, u in m["demo"]["units"].items()))
        lines.append(f"               ({m['what']})")
        for note in r["notes"]:
            lines.append(f"               warning: {note}")
        lines.append(f"  projected    ±{uncertainty:.0%} estimates from these unit costs (test images and crops at "
                     f"the input-path rate, + model load)")
        demo = ", ".join(f"{p} {fmt_range(d['total_s'], uncertainty)}" for p, d in proj["demo"].items())
        lines.append(f"               demo, projected (not run) from its counts, {work_line(counts['demo'], ('fresh',))} "
                     f"+ {fmt_s(next(iter(proj['demo'].values()))['fixed_s'])} fixed work: {demo}")
        for mode, label in (("fresh", "fresh crops (default)"), ("views4", "--views 4 (approximate)")):
            n = counts["sweep"]["crops"][mode]
            times = ", ".join(f"{k.split('_')[1]} {fmt_range(p['total_s'], uncertainty)}"
                              for k, p in proj["sweep"].items() if k.startswith(mode + "_"))
            lines.append(f"               sweep, {label}, {counts['sweep']['n_test']:,} test images + {n:,} crops + "
                         f"{counts['sweep']['steps']:,} steps: {times}")
        b2n, bc = proj.get("base2new"), counts.get("base2new")
        if b2n and bc:
            u = m["base2new_units"]
            lines.append(f"               base-to-new (--protocol base2new, fp32; CoOp step {fmt_s(u['coop_step_s'])}, "
                         f"CoCoOp step {fmt_s(u['cocoop_step_s'])}, CoCoOp eval {fmt_s(u['cocoop_eval_img_s'])}/image): "
                         f"{bc['crops']['fresh']:,} crops + {bc['coop_steps']:,} CoOp + {bc['cocoop_steps']:,} CoCoOp "
                         f"steps: fresh crops {fmt_range(b2n['fresh']['total_s'], uncertainty)}, --views 4 "
                         f"{fmt_range(b2n['views4']['total_s'], uncertainty)}")
    lines.append(f"  next         {r['next']}")
    return lines


def next_step(r: Dict[str, Any]) -> str:
    if not r["torchvision_ops"]["ok"]:
        return "fix torchvision (above), then rerun python scripts/check_env.py"
    prec = r["precision"]["choice"]
    flag = f" --precision {prec}" if prec != "fp32" else ""
    proj = r.get("projections")
    demo = f" (about {fmt_s(proj['demo']['fp32']['total_s'])})" if proj else ""
    sweep = f", about {fmt_s(proj['sweep'][f'fresh_{prec}']['total_s'])} here" if proj else ""
    gpu = "first python scripts/gpu_check.py (the GPU check, about 5 min); " if r["device"]["cuda"] else ""
    return (f"{gpu}bash scripts/run_all.sh --demo{demo}; then the real sweep: bash scripts/run_all.sh{flag} "
            f"(fresh crops{sweep}; it needs the RN50 weights and Caltech101, see README \"The real experiment\")")


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging()
    import torch

    from coop.data.split import read_split
    from coop.model.device import resolve_device
    from coop.pipeline import machine_check as M
    from coop.runs.provenance import now
    from coop.utils.atomic import write_json
    from coop.utils.paths import SPLIT

    device = str(resolve_device(args.device))
    r: Dict[str, Any] = {"kind": "check_env", "when": now(), **M.capabilities(), "device_used": device, "notes": []}
    choice, reason = M.choose_precision(torch.device(device).type, r["cpu"]["torch_bf16"], r["device"]["cuda"])
    r["precision"] = {"choice": choice, "reason": reason}
    split = read_split(SPLIT)
    r["counts"] = {"sweep": M.split_counts(split)}
    with tempfile.TemporaryDirectory(prefix="coop-check-") as tmp:
        root, demo = M.demo_tree(Path(tmp))
        from coop.pipeline.sweep import DEMO_EPOCHS

        r["counts"]["demo"] = M.split_counts(demo, epochs=DEMO_EPOCHS)
        if args.measure and r["torchvision_ops"]["ok"]:
            precisions = ["fp32"] + (["amp"] if choice == "amp" else [])
            r["measurements"] = m = M.measure(device, precisions, root, demo, split.classnames)
            r["projections"] = M.project(m, r["counts"])
            from coop.pipeline.base2new_projection import base2new_counts, project_base2new

            r["counts"]["base2new"] = base2new_counts(len(split.test), len(split.classnames))
            if m.get("base2new_units"):
                r["projections"]["base2new"] = project_base2new(r["counts"]["base2new"], m["base2new_units"],
                                                                m["units"]["fp32"]["crops_img_s"], m["load_s"])
            busy = M.busy_note(m["others_cpu_share"])
            amp = M.amp_note(r["projections"])
            r["notes"] += [n for n in (busy, amp) if n]
            if not busy and m["elapsed_s"] > 25:
                r["notes"].append(f"the measurement took {m['elapsed_s']:.0f} s (10-20 s on 2 idle cores): "
                                  f"this machine is slower, or another process shares its cores")
    r["uncertainty"] = M.UNCERTAINTY
    r["next"] = next_step(r)
    r["report"] = report_lines(r, M.UNCERTAINTY)
    print("\n".join(r["report"]))
    if args.json:
        write_json(args.json, r)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if r["torchvision_ops"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
