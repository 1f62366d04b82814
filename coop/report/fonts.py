"""Chinese figure labels when a CJK font is installed, English ones when not.

The report is Chinese, so its figures are labelled in Chinese -- if matplotlib can draw Chinese. Without
a CJK font every Chinese character would come out as an empty box (and matplotlib warns once per
glyph), so the figures fall back to English labels: a machine without the font (CI, a fresh
container) draws the same figures with English words, nothing fails. On Debian/Ubuntu
``apt-get install fonts-noto-cjk`` provides one.

    from coop.report.fonts import label
    ax.set_xlabel(label("每类的标注图像数", "Labelled images per class"))
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

log = logging.getLogger(__name__)

# Families that hold the CJK Unified Ideographs, most preferred first.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Source Han Sans SC", "Source Han Sans CN",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN",
                "Noto Serif CJK SC", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC")


@functools.lru_cache(maxsize=1)
def cjk_family() -> Optional[str]:
    """The first installed CJK family of :data:`CJK_FAMILIES` (registering system font files matplotlib's
    cache has not seen yet, e.g. a font installed after the cache was built), or None."""
    from matplotlib import font_manager as fm

    def installed():
        return {f.name for f in fm.fontManager.ttflist}

    names = installed()
    if not any(f in names for f in CJK_FAMILIES):
        for path in fm.findSystemFonts():
            low = path.lower()
            if any(k in low for k in ("cjk", "wqy", "wenquanyi", "droidsansfallback", "sourcehan", "uming")):
                try:
                    fm.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        names = installed()
    found = next((f for f in CJK_FAMILIES if f in names), None)
    if found is None:
        log.info("no CJK font found (e.g. apt-get install fonts-noto-cjk): figure labels are in English")
    return found


def use_cjk() -> bool:
    """Put the CJK family first in matplotlib's sans-serif list; True if there is one."""
    family = cjk_family()
    if family is None:
        return False
    import matplotlib

    current = list(matplotlib.rcParams["font.sans-serif"])
    if current[:1] != [family]:
        matplotlib.rcParams["font.sans-serif"] = [family] + [f for f in current if f != family]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212
    return True


def label(zh: str, en: str) -> str:
    """``zh`` when a CJK font can draw it (and is switched on), else ``en``."""
    return zh if use_cjk() else en
