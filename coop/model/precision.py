"""Numeric precision, as CoOp offers it (``TRAINER.COOP.PREC``): ``fp32``, ``amp`` or ``fp16``.

- ``fp32`` (our default): everything in single precision. Exact, and the same on every device.
- ``amp``: the weights stay fp32 and matrix products run under ``torch.autocast`` -- fp16 on CUDA
  (with a gradient scaler, as CoOp), bfloat16 on a CPU that supports it.
- ``fp16`` (CoOp's default): CLIP's weights converted to half precision by CLIP's own
  ``clip.model.convert_weights`` (the state OpenAI ships them in) and the context vectors in fp16.
  CUDA only: a CPU has no fast half-precision kernels.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Optional

import torch

from ..utils.errors import UserError

PRECISIONS = ("fp32", "amp", "fp16")


def cpu_supports_bf16() -> bool:
    """True if this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX on x86)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(precision: str, device: torch.device | str) -> None:
    """A clear error for a precision this device cannot run."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "fp16" and kind != "cuda":
        works = ("--precision amp (bfloat16 autocast: this CPU has native bfloat16) or fp32"
                 if kind == "cpu" and cpu_supports_bf16() else "--precision fp32 (this CPU has no native bfloat16, "
                 "so amp is not offered here either)")
        raise UserError(f"--precision fp16 (CoOp's default) needs a CUDA GPU, and the device is {device}; use {works}")
    if precision == "amp" and kind == "cpu" and not cpu_supports_bf16():
        raise UserError("--precision amp on a CPU uses bfloat16, which this CPU does not support natively "
                        "(it needs AVX512-BF16 or AMX; python scripts/check_env.py shows what this machine has); "
                        "use --precision fp32")


def autocast_dtype(device: torch.device | str) -> torch.dtype:
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """``torch.autocast`` for ``amp``; a no-op for ``fp32`` and ``fp16`` (whose weights carry the dtype)."""
    if precision != "amp":
        return contextlib.nullcontext()
    dev = torch.device(device)
    return torch.autocast(device_type=dev.type, dtype=autocast_dtype(dev))


def apply_to_model(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Put CLIP in the weights' dtype of ``precision`` (in place): fp16 converts as CLIP does."""
    if precision == "fp16":
        from clip.model import convert_weights

        convert_weights(model)
    return model


def grad_scaler(precision: str, device: torch.device | str) -> Optional["torch.amp.GradScaler"]:
    """CoOp's ``GradScaler`` for fp16 autocast on CUDA; bfloat16 needs none."""
    if precision == "amp" and torch.device(device).type == "cuda":
        if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
            return torch.amp.GradScaler("cuda")
        return torch.cuda.amp.GradScaler()
    return None


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype CLIP computes in (``clip.model.CLIP.dtype``: that of its first convolution)."""
    return model.visual.conv1.weight.dtype
