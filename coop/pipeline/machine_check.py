"""Is this machine ready, and how long will the experiment take here? (``scripts/check_env.py``)

Three parts, so that tests can fake the machine:

- *capabilities*: versions, whether torchvision's compiled ops load, the device, the CPU's flags
  (:func:`capabilities`); from them :func:`choose_precision` picks the fastest precision that works;
- *measurements*: a short timing of ``random:RN50`` (image encoder, the input path on synthetic
  JPEGs, one CoOp step) and of the demo's ``random:tiny``, in fp32 and amp (:func:`measure`);
- *projections*: the demo and the sweep from those unit costs and the work counts
  (:func:`project`, a pure function of the two dicts).
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..data.split import Split, make_split
from ..model.precision import autocast, cpu_supports_bf16
from ..measure import benchmark as B

log = logging.getLogger(__name__)

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
CPU_WHEELS = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
# The demo's work that does not scale with the counts: start-up and imports (about 4 s), the 27 baseline
# runs from the cache (about 5 s with the demo's capped linear probe and 4 Tip views), the zero-shot prompt
# ensemble, the figure and the report (about 3 s) -- about 13 s on 2 CPU cores of an AMD EPYC with AVX2
# (2026-12-04; cProfile of `run_all.sh --demo`, the whole demo measured 14.5 s, median of 3).
DEMO_FIXED_S = 13.0
UNCERTAINTY = 0.25


def dist_version(name: str) -> Optional[str]:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def clip_version() -> str:
    """The installed ``clip``: PyPI's clip-anytorch, OpenAI's repository, or missing."""
    v = dist_version("clip-anytorch")
    if v:
        return f"{v} (clip-anytorch)"
    try:
        import clip  # noqa: F401
    except ImportError:
        return "missing: pip install -r requirements.txt"
    return "OpenAI's clip from its repository"


def versions() -> Dict[str, str]:
    """The versions that matter here; torchvision's as its build says (``+cpu``), else its distribution's."""
    try:
        import torchvision
        tv = torchvision.__version__
    except Exception:  # noqa: BLE001 -- a broken install is reported by check_torchvision_ops
        tv = dist_version("torchvision") or "missing"
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": tv, "clip": clip_version(),
            "numpy": dist_version("numpy") or "missing", "scikit-learn": dist_version("scikit-learn") or "missing"}


def matching_torchvision(torch_version: str) -> Optional[str]:
    """The torchvision series built with ``torch_version`` (2.Y -> 0.(Y+15), 1.Y -> 0.(Y+1))."""
    m = re.match(r"([12])\.(\d+)", torch_version)
    return f"0.{int(m.group(2)) + (15 if m.group(1) == '2' else 1)}.*" if m else None


def torchvision_fix(torch_version: str = torch.__version__) -> str:
    base, tv = torch_version.split("+")[0], matching_torchvision(torch_version)
    pin = f'pip install "torch=={base}" "torchvision=={tv}"' if tv else "pip install torch torchvision"
    return f"reinstall torch and torchvision from one build: {pin} (CPU only: {CPU_WHEELS})"


def check_torchvision_ops() -> Dict[str, Any]:
    """Run ``torchvision.ops.nms`` on two boxes: torchvision's compiled ops must match torch's build."""
    try:
        import torchvision.ops

        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
        keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist()
        if keep != [0]:
            raise RuntimeError(f"nms kept {keep}, expected [0]")
    except Exception as e:  # noqa: BLE001 -- any failure here is the finding; it is reported, not raised
        first = (str(e).strip().splitlines() or [""])[0]
        return {"ok": False, "error": f"{type(e).__name__}: {first}", "fix": torchvision_fix()}
    return {"ok": True, "error": None, "fix": None}


def parse_cpuinfo(text: str) -> Dict[str, Any]:
    """CPU model name and the flags we care about from /proc/cpuinfo text (None: not listed)."""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    have = set(flags.group(1).split()) if flags else None
    return {"model": model.group(1).strip() if model else None,
            "flags": {f: (f in have) if have is not None else None for f in CPU_FLAGS}}


def cpu_info() -> Dict[str, Any]:
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        info = parse_cpuinfo("")
    info["model"] = info["model"] or platform.processor() or platform.machine()
    info.update(cores=os.cpu_count(), threads=torch.get_num_threads(), torch_bf16=cpu_supports_bf16())
    return info


def cpu_label(info: Dict[str, Any]) -> str:
    """"AMD EPYC, 2 cores (avx2 avx512f avx512_bf16; no amx_bf16)": which CPU a timing holds for."""
    flags = info.get("flags") or {}
    have = [f for f in CPU_FLAGS if flags.get(f)]
    lacks = [f for f in CPU_FLAGS if flags.get(f) is False]
    inner = " ".join(have) + (f"; no {' '.join(lacks)}" if lacks else "")
    return f"{info.get('model')}, {info.get('cores')} cores" + (f" ({inner})" if inner else "")


def device_info() -> Dict[str, Any]:
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {"cuda": cuda, "cuda_count": len(names), "cuda_names": names, "mps": mps}


def capabilities() -> Dict[str, Any]:
    return {"versions": versions(), "torchvision_ops": check_torchvision_ops(), "device": device_info(), "cpu": cpu_info()}


def choose_precision(device_type: str, cpu_bf16: bool, cuda: bool) -> Tuple[str, str]:
    """The fastest precision that works on ``device_type``, and why."""
    if device_type == "cuda":
        return "amp", ("CUDA: amp = fp16 autocast with CoOp's gradient scaler, the fastest; fp32 (the default) is "
                       "exact and matches the CPU's numbers; fp16 is CoOp's own setting")
    gpu = "; a CUDA GPU is visible: --device cuda is faster still" if cuda else ""
    if device_type == "cpu" and cpu_bf16:
        return "amp", ("this CPU computes bfloat16 natively (AVX512-BF16/AMX): amp = bfloat16 autocast, about 2x "
                       "faster image encoding, features within cosine 0.99999 of fp32 (the exact default)" + gpu)
    if device_type == "cpu":
        return "fp32", ("this CPU has no native bfloat16 (no AVX512-BF16/AMX): --precision amp is refused here "
                        "(emulated bfloat16 gains nothing over fp32) and fp16 needs CUDA" + gpu)
    return "fp32", f"{device_type}: the project measures and tests amp on CPUs and CUDA only; fp32 is exact" + gpu


def split_counts(split: Split, shots: Sequence[int] = (1, 2, 4), seeds: Sequence[int] = (1, 2, 3),
                 views: int = 4, epochs: Optional[int] = None) -> Dict[str, Any]:
    """The work a sweep over ``split`` does: test images, training crops per mode, steps (``epochs``:
    the same at every shot count, as the demo's; default CoOp's)."""
    n_cls = len(split.classnames)
    return {"n_test": len(split.test), "n_classes": n_cls, "shots": list(shots), "seeds": list(seeds),
            "epochs": epochs, "crops": {"fresh": B.crops_to_encode(split.train, shots, seeds, epochs=epochs),
                                        f"views{views}": B.crops_to_encode(split.train, shots, seeds, views, epochs)},
            "steps": sum(B.steps_per_run(n_cls, k, epochs=epochs) for k in shots) * len(seeds)}


def demo_tree(folder: Path) -> Tuple[Path, Split]:
    """The demo's own data (the same synthetic tree and split ``run_all.sh --demo`` makes) in ``folder``."""
    from ..data.synthetic import make_synthetic_data

    root = make_synthetic_data(folder)
    return root, Split(**make_split(root))


def _units(model: torch.nn.Module, coop: torch.nn.Module, root: Path, rels: List[str], precision: str,
           crops: int, batch: int, workers: Optional[int], step_repeat: int, encoder: bool) -> Dict[str, float]:
    """One precision's unit costs: encoder img/s (batch 32, channels-last), input path img/s, step s."""
    out: Dict[str, float] = {}
    if encoder:
        with autocast(precision, B.device_of(model)):
            out["encoder_img_s"] = B.image_throughput(model, batch=32, repeat=1)
    out["crops_img_s"] = B.pipeline_throughput(model, root, rels, precision, crops, workers=workers, batch=batch,
                                               warm_up=not encoder)  # the encoder has just run at this batch
    step = B.training_step(coop, model, naive=False, precision=precision)
    return {**out, "step_s": B.timeit(step, repeat=step_repeat, device=B.device_of(model))["median_s"]}


def measure(device: str, precisions: Sequence[str], root: Path, demo: Split, names: List[str]) -> Dict[str, Any]:
    """Time ``random:RN50`` and the demo's ``random:tiny`` here (about 15 s on 2 idle CPU cores).

    The RN50 input path is timed as a run makes it: batches of 32 (the encoder's pace depends on the
    batch size: on a 2-core CPU batches of 8 went 25% faster per image than a run's 32, and the
    projection was that much short -- issue 28), the run's DataLoader workers decoding beside the
    encoder, one batch straight after the encoder's own timing warmed it up."""
    from ..model.clip_loader import load_clip

    cpu0 = cpu_seconds()
    rels = sorted({it[0] for it in demo.train})[::7][:8]  # 8 images of different classes
    cuda = torch.device(device).type == "cuda"
    rn50 = dict(rels=rels, crops=16 if cuda else 4, batch=32, workers=None)
    t0 = time.perf_counter()
    model, _ = load_clip("random:RN50", device=device)
    load_s = time.perf_counter() - t0
    coop, units = B.build_coop(model, names), {}
    for p in precisions:
        log.info("measuring random:RN50 in %s", p)
        units[p] = _units(model, coop, root, precision=p, step_repeat=2, encoder=True, **rn50)
    log.info("measuring the base-to-new protocol's steps (CoOp M=4, CoCoOp) in fp32")
    from .base2new_projection import measure_base2new

    b2n = measure_base2new(model, names)
    del model, coop
    log.info("measuring the demo's random:tiny in fp32")
    t1 = time.perf_counter()
    tiny, _ = load_clip("random:tiny", device=device)
    demo_load_s = time.perf_counter() - t1
    # the demo's default precision, and its workers: 0 (run_all --demo cuts its 64-px crops in-process)
    demo_units = {"fp32": _units(tiny, B.build_coop(tiny, demo.classnames), root, rels, "fp32", crops=64, batch=32,
                                 workers=0, step_repeat=5, encoder=False)}
    wall = time.perf_counter() - t0
    from ..features.encoder import default_workers

    workers = f"{default_workers()} DataLoader worker{'s' if default_workers() != 1 else ''}"
    return {"model": "random:RN50", "device": device, "threads": torch.get_num_threads(), "load_s": load_s,
            "units": units, "base2new_units": b2n, "demo": {"model": "random:tiny", "load_s": demo_load_s, "units": demo_units},
            "elapsed_s": wall, "others_cpu_share": others_share(cpu0, cpu_seconds(), wall, os.cpu_count()),
            "what": f"encoder: batch 32 channels-last, 1 timed batch after 1 warm-up; input path: "
                    f"{len(rn50['rels'])} synthetic JPEGs x {rn50['crops']} fresh crops, {workers}, batches of "
                    f"{rn50['batch']} after the encoder's (tiny: {len(rels)} x 64 crops, in this process as the demo); "
                    f"CoOp step: batch 32, {len(names)} classes, median of 2 after 1 warm-up (tiny: of 5)"}


def project(meas: Dict[str, Any], counts: Dict[str, Any]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Projected wall times: ``{"sweep": {"fresh_fp32": ...}, "demo": {"fp32": ...}}`` from the unit
    costs in ``meas`` and the work in ``counts`` (``{"sweep": split_counts(...), "demo": ...}``).
    Test images and training crops both go at the measured input-path rate."""
    sw, out = counts["sweep"], {"sweep": {}, "demo": {}}
    for prec, u in meas["units"].items():
        for mode, n in sw["crops"].items():
            out["sweep"][f"{mode}_{prec}"] = B.project_sweep(
                sw["n_test"], n, sw["n_classes"], sw["shots"], sw["seeds"], u["crops_img_s"], u["crops_img_s"],
                u["step_s"], load_s=meas.get("load_s", 0.0))
    dm, demo = counts.get("demo"), meas.get("demo")
    for prec, u in (demo["units"].items() if dm and demo else ()):
        p = B.project_sweep(dm["n_test"], dm["crops"]["fresh"], dm["n_classes"], dm["shots"], dm["seeds"],
                            u["crops_img_s"], u["crops_img_s"], u["step_s"], load_s=demo.get("load_s", 0.0),
                            epochs=dm.get("epochs"))
        out["demo"][prec] = {**p, "fixed_s": DEMO_FIXED_S, "total_s": p["total_s"] + DEMO_FIXED_S}
    return out


def amp_note(proj: Dict[str, Dict[str, Dict[str, float]]]) -> Optional[str]:
    """A warning when the measurement contradicts the capability rule (amp slower than fp32)."""
    sweep = proj["sweep"]
    if "fresh_amp" in sweep and sweep["fresh_amp"]["total_s"] > sweep["fresh_fp32"]["total_s"]:
        return "amp measured slower than fp32: noise if the machine was busy; if an idle rerun agrees, use fp32 here"
    return None


def cpu_seconds() -> Tuple[Optional[float], float]:
    """CPU seconds used by (every process, from /proc/stat, or None; this one and its finished workers)."""
    import resource

    own = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None, own
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK"), own  # all but idle and iowait


def others_share(before: Tuple[Optional[float], float], after: Tuple[Optional[float], float], wall_s: float,
                 cores: Optional[int]) -> Optional[float]:
    """The share of the machine's CPU time that other processes used between two :func:`cpu_seconds`."""
    if before[0] is None or after[0] is None or not cores or wall_s <= 0:
        return None
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / (wall_s * cores)


def busy_note(share: Optional[float]) -> Optional[str]:
    """A warning when other processes used a quarter or more of the CPU during the measurement."""
    return None if share is None or share < 0.25 else (
        f"other processes used {share:.0%} of the CPU during the measurement: times below may be several "
        f"times too slow (OpenMP threads compete for the cores); rerun when the machine is idle")
