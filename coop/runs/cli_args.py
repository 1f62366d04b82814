"""Parsing of the list-valued flags shared by the scripts (``--shots "1 2 4"``, ``--seeds 1,2,3``)."""
from __future__ import annotations

import argparse
from typing import List

from ..utils.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are user errors: ``main`` returns 2 after one ``error: ...`` line."""

    def __init__(self, description: str | None = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        # --res for --results would be taken silently, and run_all --print-commands copies the flags it
        # is given into its lines: only whole flag names, so that none is misread or passed on unseen
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(description=description, **kwargs)

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")

    def add_output(self, *flags: str, kind, **kwargs) -> argparse.Action:
        """An option naming a file (or folder) the script writes. ``kind`` (a kind of :mod:`coop.runs.outputs`,
        or a function of the parsed flags giving one) is checked as soon as the flags are parsed: a file of
        another kind is refused, or set aside with ``--force`` (which the script must have)."""
        action = self.add_argument(*flags, **kwargs)
        self.outputs = getattr(self, "outputs", []) + [(action, kind)]
        return action

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        self._note_given(args, ns)
        dataset_places(ns)
        if getattr(self, "outputs", None):
            from .outputs import claim

            if not hasattr(ns, "force") and any(kind != "folder" for _, kind in self.outputs):
                raise TypeError(f"{self.prog} declares output files but no --force")
            for action, kind in self.outputs:
                value = getattr(ns, action.dest, None)
                if value is not None:
                    claim(value, kind(ns) if callable(kind) else kind, bool(getattr(ns, "force", False)),
                          action.option_strings[-1])
        return ns, rest


    def _note_given(self, args, ns) -> None:
        """Which options the user typed (coop.runs.flags refuses those a command would ignore)."""
        import sys

        typed = list(sys.argv[1:] if args is None else args)
        flags = {}
        for action in self._actions:
            for opt in action.option_strings:
                if any(a == opt or a.startswith(opt + "=") for a in typed):
                    flags[action.dest] = opt
        setattr(ns, "_coop_given", [a.dest for a in self._actions if a.dest in flags])
        setattr(ns, "_coop_flags", flags)
        # a required flag has no default to compare with: it is always given
        setattr(ns, "_coop_defaults", {a.dest: a.default for a in self._actions if a.dest != "help" and not a.required})


def parse_int_list(text: str, flag: str, minimum: int = 1) -> List[int]:
    """``"1 2 4"`` or ``"1,2,4"`` -> ``[1, 2, 4]``; anything else is a clear user error."""
    items = text.replace(",", " ").split()
    try:
        values = [int(x) for x in items]
    except ValueError:
        raise UserError(f"{flag} {text!r} does not parse: give integers separated by spaces, e.g. {flag} \"1 2 4\"") from None
    if not values:
        raise UserError(f"{flag} is empty: give at least one integer, e.g. {flag} \"1 2 4\"")
    bad = [v for v in values if v < minimum]
    if bad:
        raise UserError(f"{flag} {text!r}: {bad[0]} is not allowed, each value must be >= {minimum}")
    if len(set(values)) != len(values):
        raise UserError(f"{flag} {text!r} repeats a value")
    return values


def add_common_args(p: argparse.ArgumentParser) -> None:
    """The flags every experiment script shares. Default folders are the project's own, whatever
    the current folder (coop.utils.paths)."""
    from ..utils.paths import CLIP_DIR_ENV, DATA, RESULTS, SPLIT

    p.add_argument("--model", default="RN50",
                   help="CLIP model name (looked up in --clip-dir), checkpoint path, or random:tiny / "
                        "random:RN50 (random weights: numbers are not CLIP accuracies) (default: %(default)s)")
    p.add_argument("--clip-dir", default=None,
                   help=f"folder of CLIP's weights (default: ${CLIP_DIR_ENV}, else ~/.cache/clip, CLIP's own)")
    p.add_argument("--dataset", default="caltech101",
                   help="caltech101 (default), or a JSON file describing your own images in class folders: its image "
                        "folder, split, prompt template, left-out and renamed folders (docs/running.md#your-own-images)")
    p.add_argument("--data-root", default=None,
                   help=f"the dataset's image folder or a folder above it (default: the dataset's; caltech101: {DATA}, "
                        f"where 101_ObjectCategories is found)")
    p.add_argument("--split-file", default=None,
                   help=f"split in CoOp's JSON format, e.g. CoOp's split_zhou_Caltech101.json (default: the dataset's; "
                        f"caltech101: {SPLIT})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--results", default=str(RESULTS), help="results folder (default: %(default)s)")
    p.add_argument("--cache-dir", default=None,
                   help="image-feature cache (default: $COOP_CACHE or ~/.cache/coop-caltech101)")
    p.add_argument("--force", action="store_true", help="redo runs whose result file already exists")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def dataset_places(ns: argparse.Namespace) -> None:
    """``--data-root`` and ``--split-file`` left out: the ``--dataset``'s own (Caltech101's: the project's
    ``data`` and ``splits/caltech101.json``). A dataset that cannot be read leaves them unset: the run's
    check then says in one line what is wrong with it."""
    if not (hasattr(ns, "dataset") and hasattr(ns, "data_root") and hasattr(ns, "split_file")):
        return
    if ns.data_root is not None and ns.split_file is not None:
        return
    from ..data.dataset import default_places

    try:
        images, split = default_places(ns.dataset)
    except UserError:
        return
    ns.data_root = images if ns.data_root is None else ns.data_root
    ns.split_file = split if ns.split_file is None else ns.split_file


def add_encoder_args(p: argparse.ArgumentParser) -> None:
    """How the image encoder runs: precision (part of the cached features' key), workers, batch."""
    from ..utils.cpus import default_workers
    from ..model.precision import PRECISIONS

    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32 (default: exact, any device); amp: autocast, fp16 on CUDA / bfloat16 on a CPU "
                        "that supports it (about 2x faster image encoding on such a CPU); fp16: CoOp's default, "
                        "CLIP and the context in half precision, CUDA only")
    p.add_argument("--workers", type=int, default=None,
                   help=f"DataLoader processes decoding and cropping images (default: half the cores, here {default_workers()})")
    p.add_argument("--encode-batch-size", type=int, default=32,
                   help="images per image-encoder batch (default: %(default)s; larger is faster on a GPU)")
