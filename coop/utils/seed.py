"""The seed recipe every run applies before it draws a random number, and the numerics it relies on.

:func:`configure_numerics` fixes what "fp32" and "the same command, the same numbers" mean on a GPU:
TF32 off for matrix products and cuDNN convolutions (fp32 is fp32 on every device; on Ampere and
later GPUs torch's default lets cuDNN convolutions use TF32, about 1e-3 relative), cuDNN
deterministic without autotuning, the math kernel for scaled-dot-product attention on CUDA (the
flash and memory-efficient CUDA kernels have non-deterministic backward passes; the text encoder's
sequences are short, so the math kernel costs little), cuBLAS's deterministic workspace, and torch's deterministic
algorithms where it has them (a warning, not a failure, where it has none). On a CPU these switches
change nothing. :func:`numerics_record` is what each run and the feature cache record of them.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, Optional

import numpy as np
import torch

# CUDA's documented setting for deterministic cuBLAS (read when cuBLAS starts, so set before any work).
CUBLAS_WORKSPACE = ":4096:8"


def configure_numerics(device: Optional[torch.device | str] = None) -> None:
    """fp32 is fp32 and the same command gives the same numbers (see the module docstring).

    The attention-kernel choice is made for ``device`` (left as it is when None): the math kernel on
    CUDA; torch's defaults elsewhere (torch's "cuda" SDPA switches also steer the CPU's kernels,
    whose flash kernel is deterministic).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")  # no TF32 inside fp32 matrix products
    if device is not None and hasattr(torch.backends.cuda, "enable_flash_sdp"):
        on_cuda = torch.device(device).type == "cuda"
        torch.backends.cuda.enable_flash_sdp(not on_cuda)
        torch.backends.cuda.enable_mem_efficient_sdp(not on_cuda)
        torch.backends.cuda.enable_math_sdp(True)
    torch.use_deterministic_algorithms(True, warn_only=True)


def numerics_record(device: torch.device | str) -> Dict[str, Any]:
    """What a result's numbers depend on beyond its settings: the device kind and the numeric switches."""
    return {"device_type": torch.device(device).type,
            "tf32_matmul": torch.get_float32_matmul_precision() != "highest",
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "sdpa_flash": bool(torch.backends.cuda.flash_sdp_enabled()) if hasattr(torch.backends.cuda, "flash_sdp_enabled") else None,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def set_seed(seed: int) -> None:
    """Seed ``random``, ``numpy``, ``torch`` and every CUDA device, after :func:`configure_numerics`.

    Seed 0 is a valid seed: it is applied like any other (no ``if seed:`` shortcut).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    configure_numerics()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
