"""Image features, computed once by the frozen image encoder and cached on disk.

CLIP's image encoder never changes under CoOp, so every image needs it once per *view*, not once
per epoch. Test images have one view (CLIP's own preprocessing: resize, center crop). Training
images have ``V`` augmented views (RandomResizedCrop(scale 0.08-1, bicubic) + horizontal flip, as
CoOp); training draws one of them per image per epoch. View ``v`` of an image is a deterministic
function of (augmentation seed, image path, v), so the cache holds the same views whatever order
or batch the images were encoded in.

Cache layout: ``<cache_dir>/<weights sha256[:16]>/<view id>.pt``, where the view id hashes the
transform's full description. Entries are keyed by the image's path *and* content hash, so other
weights, another transform, or a changed image file never reuse a stale feature. Files are
written atomically under a lock, merging what concurrent runs added.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from tqdm import tqdm

from .atomic import torch_save
from .data import load_image
from .hashing import file_digest, sha256_json

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("COOP_CACHE", os.path.expanduser("~/.cache/coop-caltech101")))


class View:
    """One way of turning an image into the encoder's input; ``id`` names it in the cache."""

    def __init__(self, resolution: int, index: Optional[int] = None, aug_seed: int = 0,
                 scale: Tuple[float, float] = (0.08, 1.0)):
        self.resolution, self.index, self.aug_seed, self.scale = resolution, index, aug_seed, scale
        desc = {"v": CACHE_VERSION, "resolution": resolution, "mean": CLIP_MEAN, "std": CLIP_STD}
        if index is None:
            desc["transform"] = "clip: resize(bicubic) center_crop rgb to_tensor normalize"
        else:
            desc.update(transform="coop: random_resized_crop(bicubic) random_flip to_tensor normalize",
                        scale=scale, ratio=(3 / 4, 4 / 3), aug_seed=aug_seed, index=index)
        self.description = desc
        self.id = ("test" if index is None else f"train{index}") + "-" + sha256_json(desc)[:12]

    def __call__(self, img: Image.Image, relpath: str) -> torch.Tensor:
        """RGB image -> normalised [3, R, R] tensor."""
        R = self.resolution
        if self.index is None:  # CLIP's preprocessing (clip.clip._transform)
            img = TF.center_crop(TF.resize(img, R, interpolation=InterpolationMode.BICUBIC), [R, R])
        else:
            key = hashlib.sha256(f"{self.aug_seed}:{relpath}:{self.index}".encode()).digest()
            with torch.random.fork_rng(devices=[]):  # this view's randomness, independent of the rest
                torch.manual_seed(int.from_bytes(key[:8], "little"))
                i, j, h, w = RandomResizedCrop.get_params(img, scale=list(self.scale), ratio=[3 / 4, 4 / 3])
                flip = bool(torch.rand(1) < 0.5)
            img = TF.resized_crop(img, i, j, h, w, [R, R], interpolation=InterpolationMode.BICUBIC)
            if flip:
                img = TF.hflip(img)
        return TF.normalize(TF.to_tensor(img), CLIP_MEAN, CLIP_STD)


def file_key(image_root: Path, relpath: str) -> str:
    """Cache key of an image: its path and a hash of its bytes."""
    return f"{relpath}|{file_digest(image_root / relpath)}"


@contextlib.contextmanager
def channels_last(module: torch.nn.Module) -> Iterator[None]:
    """Run convolutions in channels-last layout (2-3x faster on CPU); the values are unchanged."""
    module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        module.to(memory_format=torch.contiguous_format)


@torch.inference_mode()
def encode_images(model: torch.nn.Module, image_root: Path, relpaths: Sequence[str], view: View,
                  batch_size: int = 32, desc: str = "encoding images") -> Tuple[torch.Tensor, Dict[str, str]]:
    """Encode images with the frozen image encoder. Returns features [N_ok, D] (fp32, CPU) in the
    order of the readable ``relpaths``, and ``{relpath: reason}`` for the unreadable ones."""
    device = next(model.parameters()).device
    feats: List[torch.Tensor] = []
    bad: Dict[str, str] = {}
    with channels_last(model.visual), tqdm(total=len(relpaths), desc=desc, unit="img", mininterval=2.0,
                                            disable=len(relpaths) < batch_size) as bar:
        for start in range(0, len(relpaths), batch_size):
            batch = []
            for rel in relpaths[start: start + batch_size]:
                try:
                    batch.append(view(load_image(image_root / rel), rel))
                except (OSError, ValueError, Image.DecompressionBombError) as e:
                    log.warning("unreadable image left out: %s (%s)", image_root / rel, e)
                    bad[rel] = f"{type(e).__name__}: {e}"
            if batch:
                x = torch.stack(batch).to(device).contiguous(memory_format=torch.channels_last)
                feats.append(model.encode_image(x).float().cpu())
            bar.update(len(relpaths[start: start + batch_size]))
    dim = model.text_projection.shape[1]
    return (torch.cat(feats) if feats else torch.empty(0, dim)), bad


class FeatureCache:
    """Features of (image, view) pairs for one set of weights, on disk.

    ``get(model, image_root, relpaths, view)`` returns features for every readable image, computing
    and saving only the missing ones. Unreadable images are reported, not cached, never fatal.
    """

    def __init__(self, cache_dir: Optional[str | os.PathLike], weights_sha256: str):
        self.dir = Path(cache_dir) / weights_sha256[:16] if cache_dir is not None else None
        self.memory: Dict[str, Dict[str, torch.Tensor]] = {}  # view id -> key -> feature

    def _path(self, view: View) -> Optional[Path]:
        return self.dir / f"{view.id}.pt" if self.dir is not None else None

    def _load(self, view: View) -> Dict[str, torch.Tensor]:
        path = self._path(view)
        if path is None or not path.is_file():
            return {}
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if obj.get("description") != view.description:
                raise ValueError("the file describes another transform")
            return dict(zip(obj["keys"], obj["features"]))
        except Exception as e:  # a cache is only a cache: recompute rather than fail
            log.warning("ignoring unreadable feature cache %s (%s)", path, e)
            return {}

    def _save(self, view: View, new: Dict[str, torch.Tensor]) -> None:
        path = self._path(view)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent runs merge instead of overwriting
            entries = self._load(view)
            entries.update(new)
            keys = sorted(entries)
            torch_save({"description": view.description, "keys": keys,
                        "features": torch.stack([entries[k] for k in keys])}, path)
        self.memory[view.id] = entries

    def get(self, model: torch.nn.Module, image_root: Path, relpaths: Sequence[str], view: View,
            batch_size: int = 32) -> Tuple[torch.Tensor, List[int], Dict[str, str]]:
        """Features [N_ok, D] of the readable images, their indices into ``relpaths``, and the
        unreadable ones ``{relpath: reason}``."""
        if view.id not in self.memory:
            self.memory[view.id] = self._load(view)
        entries = self.memory[view.id]
        keys, bad = [], {}
        for rel in relpaths:
            try:
                keys.append(file_key(image_root, rel))
            except OSError as e:
                keys.append(None)
                bad[rel] = f"{type(e).__name__}: {e}"
        missing = [rel for rel, k in zip(relpaths, keys) if k is not None and k not in entries]
        if missing:
            feats, new_bad = encode_images(model, image_root, missing, view, batch_size,
                                           desc=f"encoding {view.id.split('-')[0]} view")
            bad.update(new_bad)
            ok = [rel for rel in missing if rel not in new_bad]
            key_of = dict(zip(relpaths, keys))  # the keys hashed above: each file is read for its hash once
            new = {key_of[rel]: f.clone() for rel, f in zip(ok, feats)}
            if new:  # nothing readable: nothing to save (and torch.stack of nothing would fail)
                self._save(view, new)
            entries = self.memory.setdefault(view.id, entries)
            entries.update(new)
        index = [i for i, (rel, k) in enumerate(zip(relpaths, keys)) if rel not in bad]
        feats = torch.stack([entries[keys[i]] for i in index]) if index else torch.empty(0)
        return feats, index, bad
