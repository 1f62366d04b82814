"""Figure and table numbers of the report, per section: 图 7.1, 表 7.2, 表 D.1.

Numbered per section so that a generated part (whose tables come and go with the records) never shifts
the numbers of the hand-written ones; :mod:`coop.report.crossref` checks that every 图/表 the text names
has its caption in the same rendering.
"""
from __future__ import annotations


class Numbering:
    """Hands out the next figure and table numbers of one section, and remembers them by key."""

    def __init__(self, section: str, figures: int = 0, tables: int = 0):
        """``figures``, ``tables``: how many the hand-written part of the section numbered before."""
        self.section = section
        self._fig, self._tab = figures, tables
        self.names: dict = {}

    def figure(self, key: str = "") -> str:
        self._fig += 1
        return self._keep(key, f"图 {self.section}.{self._fig}")

    def table(self, key: str = "") -> str:
        self._tab += 1
        return self._keep(key, f"表 {self.section}.{self._tab}")

    def _keep(self, key: str, name: str) -> str:
        if key:
            self.names[key] = name
        return name

    def ref(self, key: str, default: str = "") -> str:
        """The number given to ``key``, or ``default`` when that figure or table was not drawn."""
        return self.names.get(key, default)
