"""Image features, computed once by the frozen image encoder and cached on disk.

CLIP's image encoder never changes under CoOp, so each (image, view) needs it once, whatever the
number of runs. Layout under ``<cache_dir>/<weights sha256[:16]>/<precision>/<device type>-<code>/``::

    test-<id>.pt                       every test image, CLIP's preprocessing
    crop-<id>/<image key hash>.pt      one training image: its crops, row k = crop index k

``<id>`` hashes the view's full description (transform, resolution, crop seed), so other weights,
precision, transform or crop seed never reuse a feature; ``<code>`` hashes the source of every
module on the feature path (:data:`FEATURE_MODULES`, and the installed ``clip`` package), so a
changed transform or encoder never reuses one either; the device type keeps CPU and GPU features
apart (amp is bfloat16 on a CPU, fp16 on CUDA). An image is keyed by its path *and* the hash of its
bytes, so a changed image is recomputed, and a crop file names the image it belongs to. A run loads only the files of its own
images. The whole CoOp sweep in the default mode is about 120,000 crops, 0.5 GB.

Every file verifies itself when loaded: its description, a SHA256 over its keys and feature bytes,
shapes, and finite values. A file that fails is reported once and recomputed. Files are written
atomically under a lock, merging what concurrent runs added.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from ..utils.atomic import torch_save
from ..utils.flocks import wait_for_lock
from .encoder import EncodeOptions, encode
from .left_out import refuse
from ..utils.hashing import cached_file_digest, source_sha256
from .views import ImageView

log = logging.getLogger(__name__)

FORMAT = 3  # 3: keyed by the feature path's code and the device type; crop files name their image
# The modules whose code decides an image's feature (with the installed clip package's code).
FEATURE_MODULES = ("data.folders", "features.cache", "features.encoder", "features.views",
                   "model.clip_loader", "model.precision", "utils.hashing")


def feature_code_sha256() -> str:
    return source_sha256(FEATURE_MODULES, salt=str(FORMAT))


def default_cache_dir() -> Path:
    return Path(os.path.expanduser(os.environ.get("COOP_CACHE") or "~/.cache/coop-caltech101"))  # empty = unset


def cache_dir_source(cache_dir: Optional[str | os.PathLike]) -> Tuple[Path, str]:
    """The feature cache's folder and what named it, for a message: ``--cache-dir``, ``$COOP_CACHE`` or
    the default (whose fix is ``--cache-dir``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser(), "--cache-dir"
    if os.environ.get("COOP_CACHE"):
        return default_cache_dir(), "$COOP_CACHE"
    return default_cache_dir(), "--cache-dir (default)"


def file_key(image_root: Path, relpath: str) -> str:
    """Cache key of an image: its path and a hash of its bytes."""
    return f"{relpath}|{cached_file_digest(image_root / relpath)}"


def checksum(keys: Sequence[str], features: torch.Tensor) -> str:
    h = hashlib.sha256(json.dumps(list(keys)).encode())
    h.update(features.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class CorruptCacheFile(Exception):
    pass


def read_feature_file(path: Path, description: Dict, dim: int) -> Dict[str, torch.Tensor]:
    """``{key: feature}`` of a verified cache file; raises CorruptCacheFile if anything is off."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        keys, feats = obj["keys"], obj["features"]
    except Exception as e:
        raise CorruptCacheFile(f"unreadable: {type(e).__name__}: {e}") from None
    if obj.get("format") != FORMAT or obj.get("description") != description:
        raise CorruptCacheFile("it describes another view or format")
    if not (isinstance(feats, torch.Tensor) and feats.dtype == torch.float32 and feats.dim() == 2
            and feats.shape == (len(keys), dim) and len(set(keys)) == len(keys)):
        raise CorruptCacheFile("its keys and features do not line up")
    if obj.get("sha256") != checksum(keys, feats):
        raise CorruptCacheFile("its checksum does not match its contents")
    if not torch.isfinite(feats).all():
        raise CorruptCacheFile("it holds non-finite features")
    return dict(zip(keys, feats))


class FeatureCache:
    """Features of (image, view, index) for one set of weights and one precision, on disk.

    ``cache_dir=None`` keeps them in memory only.
    """

    def __init__(self, cache_dir: Optional[str | os.PathLike], weights_sha256: str, opts: Optional[EncodeOptions] = None,
                 device_type: str = "cpu"):
        self.opts = opts or EncodeOptions()
        self.device_type = device_type
        self.checkpoint_every = 2048  # images encoded between saves: a killed run loses at most this much
        self.keep_bytes = 256 << 20  # crop files kept in memory between the runs of a sweep (least recent out first)
        self._kept: "OrderedDict[str, int]" = OrderedDict()  # crop file name -> its features' bytes
        self.code = feature_code_sha256()
        sub = f"{device_type}-{self.code[:12]}"
        self.dir = (Path(cache_dir) / weights_sha256[:16] / self.opts.precision / sub) if cache_dir is not None else None
        self.memory: Dict[str, Dict[str, torch.Tensor]] = {}  # file name -> key -> feature
        self._image_of: Dict[str, str] = {}  # crop file name -> the image key whose crops it holds
        self._warned = False  # a failed cache write is reported once per run

    # --- files ------------------------------------------------------------------------------------
    def _file(self, name: str) -> Optional[Path]:
        return self.dir / name if self.dir is not None else None

    def _description(self, view: ImageView, image: Optional[str] = None) -> Dict:
        """What a file must say it holds: the view, precision, device type, code and, for a crop
        file, the image (path and content hash) whose crops it holds."""
        d = {**view.description, "precision": self.opts.precision, "device_type": self.device_type,
             "code_sha256": self.code}
        return d if image is None else {**d, "image": image}

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        assert self.dir is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as lock:  # concurrent runs merge instead of overwriting
            wait_for_lock(lock, self.dir / ".lock", f"the feature cache in {self.dir}")
            yield

    def _load(self, name: str, view: ImageView, dim: int, image: Optional[str] = None) -> Dict[str, torch.Tensor]:
        if name in self.memory:
            return self.memory[name]
        path, entries = self._file(name), {}
        if path is not None and path.is_file():
            try:
                entries = read_feature_file(path, self._description(view, image), dim)
            except CorruptCacheFile as e:
                log.warning("feature cache file %s failed its check (%s); recomputing it", path, e)
        self.memory[name] = entries
        return entries

    def _save(self, name: str, view: ImageView, new: Dict[str, torch.Tensor], dim: int,
              image: Optional[str] = None) -> None:
        entries = self.memory.setdefault(name, {})
        entries.update(new)
        path = self._file(name)
        if path is None:
            return
        try:
            self._write(name, view, entries, dim, image, path)
        except (OSError, RuntimeError) as e:  # full disk (torch.save: RuntimeError), another user's folder
            if not self._warned:
                log.warning("could not write the feature cache in %s (%s); this run keeps its features in "
                            "memory. Free space, fix the folder or pass --cache-dir DIR", self.dir,
                            getattr(e, "strerror", None) or str(e).splitlines()[0])
                self._warned = True

    def _write(self, name: str, view: ImageView, entries: Dict[str, torch.Tensor], dim: int,
               image: Optional[str], path: Path) -> None:
        with self._lock():
            if path.is_file():  # what other processes wrote meanwhile
                try:
                    merged = read_feature_file(path, self._description(view, image), dim)
                    merged.update(entries)
                    entries.update(merged)
                except CorruptCacheFile:
                    pass  # replaced below by what this process holds
            keys = sorted(entries)
            feats = torch.stack([entries[k] for k in keys]).float().contiguous()
            path.parent.mkdir(parents=True, exist_ok=True)
            torch_save({"format": FORMAT, "description": self._description(view, image), "keys": keys,
                        "features": feats, "sha256": checksum(keys, feats)}, path)

    def _keep(self, names) -> None:
        """Crop files stay in memory for the next runs up to :attr:`keep_bytes` (a sweep reads the same
        images' crops for every method of a (shots, seed)); beyond it the least recently used are dropped
        and read from disk again when asked for (a real sweep's crops are GBs)."""
        for name in names:
            self._kept.pop(name, None)
            self._kept[name] = sum(t.numel() * t.element_size() for t in self.memory.get(name, {}).values())
        total = sum(self._kept.values())
        while self._kept and total > self.keep_bytes:
            name, size = self._kept.popitem(last=False)
            self.memory.pop(name, None)
            total -= size

    # --- lookups ----------------------------------------------------------------------------------
    def _get(self, model: torch.nn.Module, image_root: Path, view: ImageView,
             requests: Sequence[Tuple[str, str, str, Optional[int]]], desc: str, leave_out: bool = False) -> Tuple[Dict[Tuple[str, str], torch.Tensor], Dict[str, str]]:
        """requests: (file name, entry key, relpath, index) -> ({(file, key): feature}, {relpath: reason})."""
        dim = model.text_projection.shape[1]
        found: Dict[Tuple[str, str], torch.Tensor] = {}
        missing: List[Tuple[str, str, str, Optional[int]]] = []
        image_of = {r[0]: self._image_of.get(r[0]) for r in requests}
        for r in requests:
            f = self._load(r[0], view, dim, image_of[r[0]]).get(r[1])
            if f is None:
                missing.append(r)
            else:
                found[(r[0], r[1])] = f
        bad: Dict[str, str] = {}
        if missing:
            missing.sort(key=lambda r: (r[2], -1 if r[3] is None else r[3]))  # by image: one decode each
            done = [0]  # requests before done[0] are saved

            def keep(feats: torch.Tensor, failed: Dict[int, str], upto: int) -> None:
                """Save what is encoded up to ``upto`` (merged into each file): a kill loses only the rest."""
                per_file: Dict[str, Dict[str, torch.Tensor]] = {}
                for pos in range(done[0], upto):
                    r = missing[pos]
                    if pos in failed:
                        if r[2] not in bad and leave_out:  # else refused, in one line, once all are tried
                            log.warning("unreadable image left out: %s (%s)", image_root / r[2], failed[pos])
                        bad[r[2]] = failed[pos]
                        continue
                    per_file.setdefault(r[0], {})[r[1]] = found[(r[0], r[1])] = feats[pos].clone()
                done[0] = upto
                for name, new in per_file.items():
                    self._save(name, view, new, dim, image_of[name])

            feats, failed = encode(model, image_root, [(r[2], r[3]) for r in missing], view, self.opts, desc,
                                   checkpoint=keep, every=self.checkpoint_every)
            keep(feats, failed, len(missing))
        return found, bad

    def _keys(self, image_root: Path, relpaths: Sequence[str],
              leave_out: bool = False) -> Tuple[List[Optional[str]], Dict[str, str]]:
        keys, bad = [], {}
        for rel in relpaths:
            try:
                keys.append(file_key(image_root, rel))  # each image is read for its hash once per process
            except OSError as e:
                keys.append(None)
                bad[rel] = f"{type(e).__name__}: {e}"
                if leave_out:
                    log.warning("unreadable image left out: %s (%s)", image_root / rel, bad[rel])
        return keys, bad

    def test_features(self, model: torch.nn.Module, image_root: Path, relpaths: Sequence[str],
                      view: ImageView, leave_out: bool = False) -> Tuple[torch.Tensor, List[int], Dict[str, str]]:
        """Features [N_ok, D] of the readable images (CLIP's test view), their indices into ``relpaths``,
        and ``{relpath: reason}`` for the unreadable ones. An unreadable image is refused
        (:func:`coop.features.left_out.refuse`, after the readable ones are cached) unless ``leave_out``
        (the test set only: its dropped images are counted in every record)."""
        keys, bad = self._keys(image_root, relpaths, leave_out)
        name = f"{view.id}.pt"
        req = [(name, k, rel, None) for rel, k in zip(relpaths, keys) if k is not None]
        found, new_bad = self._get(model, image_root, view, req, f"encoding {len(req)} images", leave_out)
        bad.update(new_bad)
        if not leave_out:
            refuse(bad, image_root)
        index = [i for i, rel in enumerate(relpaths) if rel not in bad]
        feats = torch.stack([found[(name, keys[i])] for i in index]) if index else torch.empty(0, device="cpu")
        return feats, index, bad

    def crop_features(self, model: torch.nn.Module, image_root: Path, relpaths: Sequence[str], view: ImageView,
                      indices: Sequence[int], leave_out: bool = False) -> Tuple[torch.Tensor, List[int], Dict[str, str]]:
        """Features [U, N_ok, D] of the U distinct crop indices in ``indices`` (sorted), for every
        readable image; each is encoded once. Also the images' indices and the unreadable ones, which
        are refused unless ``leave_out`` (as :meth:`test_features`)."""
        keys, bad = self._keys(image_root, relpaths, leave_out)
        unique = sorted(set(indices))
        names = {k: f"{view.id}/{hashlib.sha256(k.encode()).hexdigest()[:24]}.pt" for k in keys if k is not None}
        self._image_of.update({name: k for k, name in names.items()})  # a crop file holds one image's crops
        req = [(names[k], str(c), rel, c) for rel, k in zip(relpaths, keys) if k is not None for c in unique]
        found, new_bad = self._get(model, image_root, view, req,
                                   f"encoding crops ({len(relpaths)} images x {len(unique)})", leave_out)
        bad.update(new_bad)
        index = [i for i, rel in enumerate(relpaths) if rel not in bad]
        if self.dir is not None:
            self._keep(names.values())
        if not leave_out:
            refuse(bad, image_root)
        if not index:
            return torch.empty(0, device="cpu"), index, bad
        return torch.stack([torch.stack([found[(names[keys[i]], str(c))] for i in index]) for c in unique]), index, bad
