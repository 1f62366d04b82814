"""Images a run cannot read: never left out unseen.

An image of the split that no longer decodes (truncated, replaced by something else, unreadable) is
handled in one of two ways, decided where every image feature is computed (the feature cache,
:mod:`coop.features.cache`), so that every kind of run -- CoOp, each baseline, base-to-new, a method
added later -- gets it without asking:

* an image a run **learns from** (its few-shot training images, their crops or views, a baseline's
  validation images, the few-shot validation images a CoOp run is scored on for the bonus's guard) is refused, in one line naming the file: a "1-shot" run without its one image of
  a class trained on none of it, and a K-shot run missing an image is not a K-shot run. This is the
  default of every feature lookup;
* a **test** image is left out (the caller asks for that explicitly, ``leave_out=True``: only the
  test set does), and counted and named in every record's :func:`test_field` (``test_left_out``),
  beside ``n_test``, so a report states "N test images (M listed, K unreadable: ...)".
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from ..utils.errors import UserError

FIELD = "test_left_out"  # the record's field: {"count", "listed", "images": {relpath: reason}}


class UnreadableImages(UserError):
    """Images a run learns from could not be read; ``bad`` maps each to its reason."""

    def __init__(self, message: str, bad: Dict[str, str]):
        super().__init__(message)
        self.bad = dict(bad)


def refuse(bad: Dict[str, str], image_root: Path) -> None:
    """Raise :class:`UnreadableImages` if ``bad`` (``{relpath: reason}``) names any image."""
    if not bad:
        return
    rel, reason = next(iter(sorted(bad.items())))
    reason = reason.replace(str(Path(image_root) / rel), Path(rel).name)  # PIL repeats the whole path
    more = f" (and {len(bad) - 1} more: {', '.join(sorted(bad)[1:4])}{' ...' if len(bad) > 4 else ''})" \
        if len(bad) > 1 else ""
    raise UnreadableImages(
        f"image {Path(image_root) / rel}{more} cannot be read ({reason}), and this run learns from it: without it "
        f"the run would learn from fewer images of the class in {rel.split('/')[0]!r} than it says (a K-shot run "
        f"missing an image is not a K-shot run). Replace the file with a readable copy, or remake the split "
        f"without it (scripts/make_split.py leaves unreadable images out)", bad)


def test_field(listed: Sequence[str], bad: Dict[str, str]) -> Dict:
    """The record's ``test_left_out``: how many of the ``listed`` test images were left out, and which
    (relative path -> why), in the split's order."""
    images = {rel: bad[rel] for rel in listed if rel in bad}
    return {"count": len(images), "listed": len(listed), "images": images}
