"""How an image becomes the image encoder's input: CLIP's test view and CoOp's training crops.

Test images: CLIP's preprocessing (``clip.clip._transform``; Dassl's test transform is the same):
resize the short side to 224 (bicubic), center crop 224, RGB, to tensor, CLIP's mean/std.

Training images: CoOp's augmentation (Dassl ``random_resized_crop`` + ``random_flip`` +
``normalize``): torchvision's ``RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3),
bicubic)`` then a horizontal flip with p = 0.5. CoOp draws these from the DataLoader workers'
random state; here crop ``index`` of an image (in the default mode: the epoch) is drawn from a
generator seeded by ``(crop_seed, image path, index)``, with torchvision's own ``get_params``. The
distribution is the same; the crop no longer depends on which worker, batch or order made it, so
it can be computed once and cached.

A view is computed in two halves: ``pixels`` (PIL: crop, resize, flip -> uint8 [3, R, R]) per image,
in the DataLoader, and ``to_input`` (to float, /255, normalise) per batch, on the encoder's device.
Together they are ``to_tensor`` + ``normalize`` of torchvision bit for bit (the same element-wise
operations, in the same order; ``tests/test_features.py`` compares them with CoOp's and CLIP's own
transforms); a uint8 batch is a quarter of the bytes to ship from a worker or to a GPU.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Optional, Tuple

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode, RandomResizedCrop

from ..utils.hashing import sha256_json

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
FLIP_P = 0.5
FORMAT = 2  # bump when the computation of a view changes: old cache files stop matching


def to_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, R, R] -> the encoder's float input: ``to_tensor``'s /255, then CLIP's normalisation.

    The divisor is a tensor on the pixels' device: CUDA divides by a Python (CPU) scalar as a
    multiplication by its reciprocal, which differs from true division in the last bit for about half
    of the 256 values; by a tensor it divides, as the CPU does. In place after the one conversion, so a
    batch costs one float copy."""
    x = pixels.to(dtype=torch.float32)
    x.div_(torch.full((), 255.0, dtype=torch.float32, device=x.device))
    return TF.normalize(x, CLIP_MEAN, CLIP_STD, inplace=True)


class ImageView:
    """A way of turning an image into a normalised [3, R, R] tensor; ``id`` names it in the cache."""

    description: Dict[str, Any]
    resolution: int

    @property
    def id(self) -> str:
        return f"{self.description['kind']}-{sha256_json(self.description)[:12]}"

    def pixels(self, img: Image.Image, relpath: str, index: Optional[int] = None) -> torch.Tensor:
        """The view as uint8 [3, R, R], before normalisation."""
        raise NotImplementedError

    def __call__(self, img: Image.Image, relpath: str, index: Optional[int] = None) -> torch.Tensor:
        return to_input(self.pixels(img, relpath, index))


class TestView(ImageView):
    """CLIP's preprocessing: resize (bicubic), center crop, normalise."""

    __test__ = False  # not a pytest class

    def __init__(self, resolution: int):
        self.resolution = resolution
        self.description = {"kind": "test", "format": FORMAT, "resolution": resolution,
                            "transform": "resize(bicubic) center_crop rgb to_tensor normalize",
                            "mean": CLIP_MEAN, "std": CLIP_STD}

    def pixels(self, img: Image.Image, relpath: str, index: Optional[int] = None) -> torch.Tensor:
        R = self.resolution
        return TF.pil_to_tensor(TF.center_crop(TF.resize(img, R, interpolation=InterpolationMode.BICUBIC), [R, R]))


class TrainCrop(ImageView):
    """CoOp's training augmentation; crop ``index`` of an image is a function of (crop_seed, path, index)."""

    def __init__(self, resolution: int, crop_seed: str, scale: Tuple[float, float] = CROP_SCALE):
        self.resolution, self.crop_seed, self.scale = resolution, str(crop_seed), tuple(scale)
        self.description = {"kind": "crop", "format": FORMAT, "resolution": resolution,
                            "transform": "random_resized_crop(bicubic) random_flip to_tensor normalize",
                            "scale": self.scale, "ratio": CROP_RATIO, "flip_p": FLIP_P,
                            "mean": CLIP_MEAN, "std": CLIP_STD, "crop_seed": self.crop_seed}

    def params(self, img: Image.Image, relpath: str, index: int) -> Tuple[int, int, int, int, bool]:
        """(top, left, height, width, flip) of crop ``index``, drawn as torchvision draws them."""
        key = hashlib.sha256(f"{self.crop_seed}:{relpath}:{index}".encode()).digest()
        with torch.random.fork_rng(devices=[]):  # this crop's randomness, independent of the rest
            torch.default_generator.manual_seed(int.from_bytes(key[:8], "little"))  # the CPU generator only: seeding every device queues a lazy CUDA call per crop
            i, j, h, w = RandomResizedCrop.get_params(img, scale=list(self.scale), ratio=list(CROP_RATIO))
            flip = bool(torch.rand(1, device="cpu") < FLIP_P)
        return i, j, h, w, flip

    def pixels(self, img: Image.Image, relpath: str, index: Optional[int] = None) -> torch.Tensor:
        if index is None:
            raise ValueError("a training crop needs its index")
        R = self.resolution
        i, j, h, w, flip = self.params(img, relpath, index)
        # torchvision's resized_crop on a PIL image is exactly this crop, then this resize (without the
        # per-call checks, which cost as much as the resize at 64 px)
        img = img.crop((j, i, j + w, i + h)).resize((R, R), Image.BICUBIC)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return TF.pil_to_tensor(img)
