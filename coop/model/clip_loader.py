"""Loading OpenAI CLIP: by model name (``RN50``), local checkpoint, or ``random:ARCH``.

We depend on the ``clip`` package (PyPI ``clip-anytorch``) and never edit it. Named weights are
looked up in CLIP's own cache (``~/.cache/clip/RN50.pt``) and verified against the SHA256 that
OpenAI publishes in the download URL before anything is downloaded. ``random:tiny`` and
``random:RN50`` build CLIP's real modules with random weights for tests and speed measurements:
their outputs are not CLIP accuracies.
"""
from __future__ import annotations

import logging
import os
import urllib.error
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

import torch

from ..utils.errors import UserError
from .device import resolve_device, use_device
from ..utils.hashing import sha256_file, state_dict_sha256

log = logging.getLogger(__name__)

# Arguments of clip.model.CLIP for the random architectures.
RANDOM_ARCHS = {
    # The real RN50: embed 1024, ResNet (3,4,6,3) width 64 at 224 px, text 12 layers x 512, 8 heads.
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, context_length=77, vocab_size=49408,
                 transformer_width=512, transformer_heads=8, transformer_layers=12),
    # Same code paths, small widths: builds and runs in well under a second. The text width is 128
    # because clip.model.build_model infers heads = width // 64 (2 heads, so multi-head paths run).
    "tiny": dict(embed_dim=64, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=8,
                 vision_patch_size=None, context_length=77, vocab_size=49408,
                 transformer_width=128, transformer_heads=2, transformer_layers=3),
}
RANDOM_PREFIX = "random:"


@dataclass(frozen=True)
class ClipInfo:
    """Where a loaded model came from; recorded in every result file."""

    name: str            # what the user asked for: "RN50", a path, or "random:tiny"
    sha256: str          # of the checkpoint file, or of the weights for random models
    path: Optional[str]  # the checkpoint file, None for random models
    random_weights: bool


def default_download_root() -> str:
    from ..utils.paths import default_clip_dir

    return str(default_clip_dir())


def _clip():
    with warnings.catch_warnings():  # clip imports pkg_resources, which warns on import
        warnings.simplefilter("ignore")
        import clip
    return clip


def random_clip(arch: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A CLIP of architecture ``arch`` ("tiny" or "RN50") with random weights, fp32, eval mode.

    It goes through ``clip.model.build_model`` like real weights do (the architecture is inferred
    back from the weight shapes, and weights are rounded to fp16 as OpenAI's checkpoints are), so a
    saved state_dict of it loads back to exactly the same model.
    """
    if arch not in RANDOM_ARCHS:
        raise UserError(f"unknown random architecture {arch!r}: use one of "
                        + ", ".join(RANDOM_PREFIX + a for a in RANDOM_ARCHS))
    from clip.model import CLIP, build_model

    _clip()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**RANDOM_ARCHS[arch])
    if arch == "tiny":
        # CLIP's init zeroes each residual branch's last BatchNorm, and a tiny random ResNet then
        # maps every image to almost the same direction (cosine 0.9999), so nothing could be
        # learned in the demo. Unit-free BatchNorm scales of 3 spread the features (cosine ~0.95)
        # while keeping CLIP's code paths. random:RN50 keeps CLIP's own init exactly.
        for m in model.visual.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.constant_(m.weight, 3.0)
    return build_model(model.state_dict()).float().eval()


def _named_checkpoint(name: str, download_root: Optional[str]) -> Path:
    """Path of verified OpenAI weights for ``name``, downloading them only when not cached."""
    clip = _clip()
    url = clip.clip._MODELS[name]
    expected = url.split("/")[-2]  # OpenAI puts the SHA256 in the URL
    root = Path(download_root or default_download_root())
    path = root / os.path.basename(url)
    how_to = (f"download {url} on a machine with network and put it at {path} "
              f"(or pass --model /path/to/{path.name}; --model random:RN50 runs with random weights)")
    if path.is_file():
        if sha256_file(path) == expected:
            return path
        raise UserError(f"{path} is truncated or corrupted (its SHA256 does not match OpenAI's). "
                        f"Delete it and run again to download it, or {how_to}")
    log.info("%s not found in %s; downloading it from OpenAI", path.name, root)
    try:
        clip.clip._download(url, str(root))
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        if path.is_file() and sha256_file(path) != expected:
            path.unlink()  # never leave a partial download where the next run would look
        raise UserError(f"CLIP {name} weights are not in {root} and could not be downloaded ({e}). "
                        f"To fix: {how_to}") from None
    return path


def weights_fingerprint(name: str) -> Optional[str]:
    """The SHA256 a model loaded from ``name`` will report, without loading it (None for random
    models and unknown names). Used to decide cheaply whether a finished result can be reused."""
    if name.startswith(RANDOM_PREFIX):
        return None
    clip = _clip()
    if name in clip.available_models():
        return clip.clip._MODELS[name].split("/")[-2]  # verified against the file when loading
    return sha256_file(name) if os.path.isfile(name) else None


def load_clip(name: str = "RN50", device: str = "auto",
              download_root: Optional[str] = None) -> Tuple[torch.nn.Module, Callable]:
    """Load CLIP and its preprocessing transform: ``model, preprocess = load_clip("RN50")``.

    ``name`` is an OpenAI model name (``clip.available_models()``), a local checkpoint (OpenAI's
    TorchScript archive or a plain state_dict), or ``random:tiny`` / ``random:RN50``. The model is
    returned in fp32 and eval mode on the resolved device, with a :class:`ClipInfo` as
    ``model.clip_info``. Every failure a user can fix raises :class:`UserError`.
    """
    clip = _clip()
    dev = resolve_device(device)
    use_device(dev)
    if name.startswith(RANDOM_PREFIX):
        arch = name[len(RANDOM_PREFIX):]
        model = random_clip(arch)
        info = ClipInfo(name, state_dict_sha256(model.state_dict()), None, True)
        log.warning("model %s has RANDOM weights: its numbers are not CLIP accuracies", name)
    else:
        if name in clip.available_models():
            path = _named_checkpoint(name, download_root)
        elif os.path.isfile(name):
            path = Path(name)
        elif os.path.exists(name):
            raise UserError(f"--model {name} is not a file; give the path of a CLIP checkpoint such as RN50.pt")
        else:
            raise UserError(f"--model {name}: no such file, and not a CLIP model name "
                            f"({', '.join(clip.available_models())}) or random:tiny / random:RN50")
        try:
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not ours to act on
                warnings.simplefilter("ignore", FutureWarning)
                model, _ = clip.load(str(path), device="cpu", jit=False)
        except Exception as e:  # torch.load / build_model errors on anything that is not CLIP
            raise UserError(f"{path} is not a CLIP checkpoint, or it is truncated "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                            f"Download RN50.pt again from OpenAI, or check the path") from None
        model = model.float().eval()
        info = ClipInfo(name, sha256_file(path), str(path), False)
    model = model.to(dev)
    model.clip_info = info
    preprocess = clip.clip._transform(model.visual.input_resolution)
    return model, preprocess
