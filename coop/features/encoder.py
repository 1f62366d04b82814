"""Running CLIP's frozen image encoder over many (image, view) pairs, fed by a DataLoader.

Decoding, cropping and normalising run in ``torch.utils.data.DataLoader`` worker processes
(``workers``; 0 = in this process), with pinned memory on CUDA, so that on a GPU the encoder, not
one Python thread decoding JPEGs, sets the pace. Items are sorted by image, and a worker keeps the
image it decoded last, so the many crops of one image cost one decode. Workers ship uint8 pixels;
the conversion to float and CLIP's normalisation run per batch on the encoder's device
(``views.to_input``, the same values as per image).

Every batch is padded to exactly ``batch_size`` inputs (with copies of its first input): an image's
feature is then independent of which other images share its batch or where it sits in it (the
convolution kernels pick their algorithm by batch shape; across batch *sizes* features differ by
about 1e-7 relative in fp32).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..data.folders import load_image
from ..model.precision import autocast
from ..utils.cpus import default_workers  # noqa: F401  (re-exported)
from ..utils.progress import bar
from .views import ImageView, to_input

log = logging.getLogger(__name__)

Item = Tuple[str, Optional[int]]  # (relpath, crop index or None)




@dataclass
class EncodeOptions:
    batch_size: int = 32
    workers: Optional[int] = None  # None: default_workers()
    precision: str = "fp32"

    @classmethod
    def of(cls, cfg) -> "EncodeOptions":
        """The options a run's config (TrainConfig or ZeroShotConfig) asks for."""
        return cls(batch_size=cfg.encode_batch_size, workers=cfg.workers, precision=cfg.precision)


class ViewDataset(Dataset):
    """``items[i]`` -> (uint8 pixels [3, R, R], i, error or ""), decoding each image once per run of items."""

    def __init__(self, image_root: Path, items: Sequence[Item], view: ImageView):
        self.image_root, self.items, self.view = Path(image_root), list(items), view
        self._last: Tuple[Optional[str], object] = (None, None)
        R = getattr(view, "resolution")
        self._blank = torch.zeros(3, R, R, dtype=torch.uint8, device="cpu")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        rel, index = self.items[i]
        if self._last[0] != rel:
            try:
                self._last = (rel, load_image(self.image_root / rel))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # PIL: broken PNG -> SyntaxError
                self._last = (rel, f"{type(e).__name__}: {e}")
        img = self._last[1]
        if isinstance(img, str):
            return self._blank, i, img
        return self.view.pixels(img, rel, index), i, ""


def _collate(batch):
    xs, idx, errors = zip(*batch)
    return torch.stack(xs), torch.tensor(idx, device="cpu"), list(errors)


def _init_worker(_: int) -> None:
    torch.set_num_threads(1)  # the main process's encoder needs the cores


@contextlib.contextmanager
def channels_last(module: torch.nn.Module) -> Iterator[None]:
    """Run convolutions in channels-last layout (2-3x faster on CPU); the values are unchanged."""
    module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        module.to(memory_format=torch.contiguous_format)


def pad_to(x: torch.Tensor, n: int) -> torch.Tensor:
    """[b, ...] -> [n, ...], filled with copies of x[0] (b <= n)."""
    return x if len(x) == n else torch.cat([x, x[:1].expand(n - len(x), *x.shape[1:])])


@torch.inference_mode()
def encode(model: torch.nn.Module, image_root: Path, items: Sequence[Item], view: ImageView,
           opts: EncodeOptions, desc: str = "encoding images",
           checkpoint: Optional[Callable[[torch.Tensor, Dict[int, str], int], None]] = None,
           every: int = 2048) -> Tuple[torch.Tensor, Dict[int, str]]:
    """Features [len(items), D] (fp32, CPU; rows of unreadable images are NaN) and
    ``{item position: reason}`` for the unreadable ones. ``checkpoint(features, bad, k)`` is called
    each time about ``every`` more items are done, rows ``[0, k)`` final: the caller can keep them
    (the feature cache saves them, so a killed run loses minutes, not the hour a real-size run
    encodes)."""
    device = next(model.parameters()).device
    dim = model.text_projection.shape[1]
    out = torch.full((len(items), dim), float("nan"), device="cpu")
    bad: Dict[int, str] = {}
    if not items:
        return out, bad
    workers = default_workers() if opts.workers is None else opts.workers
    loader = DataLoader(ViewDataset(image_root, items, view), batch_size=opts.batch_size, shuffle=False,
                        num_workers=min(workers, max(0, len(items) // opts.batch_size)),
                        collate_fn=_collate, pin_memory=device.type == "cuda", worker_init_fn=_init_worker)
    saved = 0
    with channels_last(model.visual), bar(total=len(items), desc=desc, unit="img", mininterval=2.0,
              disable=len(items) < 4 * opts.batch_size) as progress:
        for x, idx, errors in loader:
            ok = torch.tensor([not e for e in errors], device="cpu")
            for i, e in zip(idx.tolist(), errors):
                if e:
                    bad[i] = e
            n_ok = int(ok.sum())
            if n_ok:
                x = x.to(device, non_blocking=True)  # straight from pinned memory, before any copy
                if n_ok < len(ok):
                    x = x[ok.to(device)]
                x = pad_to(to_input(x), opts.batch_size)
                with autocast(opts.precision, device):
                    f = model.encode_image(x.contiguous(memory_format=torch.channels_last))
                out[idx[ok]] = f[:n_ok].float().cpu()
            progress.update(len(idx))
            done = int(idx.max()) + 1  # the loader keeps the items' order
            if checkpoint is not None and done - saved >= every and done < len(items):
                checkpoint(out, bad, done)
                saved = done
    return out, bad
