"""Which device a run computes on, and the numerics it promises there.

- :func:`resolve_device` turns ``--device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``,
  ``xpu``, ...) into a ``torch.device`` that exists here, or one line saying why not.
- :func:`use_device` makes ``cuda:N`` the current CUDA device, so that pinned memory, the caching
  allocator and the memory statistics are those of GPU N, not GPU 0.

What "fp32" and "the same command, the same numbers" mean on a GPU is fixed by
:func:`coop.utils.seed.configure_numerics`, which every run applies before it loads anything.
"""
from __future__ import annotations

import torch

from ..utils.errors import UserError


KIND_NAMES = {"cuda": "CUDA GPU", "mps": "Apple MPS device", "xpu": "Intel XPU"}


def _backend(kind: str):
    """torch's module for a device type (``torch.cuda``, ``torch.mps``, ``torch.xpu``), or None."""
    return getattr(torch, kind, None)


def device_available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    mod = _backend(kind)
    try:
        return bool(mod is not None and mod.is_available())
    except (AttributeError, RuntimeError):
        return False


def device_count(kind: str) -> int:
    if kind == "cpu":
        return 1
    count = getattr(_backend(kind), "device_count", None)
    try:
        return int(count()) if callable(count) else 1
    except (RuntimeError, AssertionError):
        return 0


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; any other device must exist here."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown --device {device!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type in ("meta",):
        raise UserError(f"--device {device} computes no numbers; use auto, cpu, cuda or cuda:N")
    if not device_available(dev.type):
        raise UserError(f"--device {device} was asked for but no {KIND_NAMES.get(dev.type, dev.type + ' device')} is visible "
                        f"(torch {torch.__version__}); use --device cpu, or auto to take a GPU when there is one")
    if dev.index is not None and dev.index >= device_count(dev.type):
        n = device_count(dev.type)
        raise UserError(f"--device {device}: this machine has {n} {dev.type} device{'s' if n != 1 else ''} "
                        f"({dev.type}:0{f'..{dev.type}:{n - 1}' if n > 1 else ''}); pick one of them")
    return dev


def use_device(dev: torch.device) -> None:
    """Make ``dev`` the current device of its kind (``cuda:1`` must not open a context on GPU 0)."""
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)
