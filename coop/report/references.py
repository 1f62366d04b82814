"""The references the generated text cites, numbered as in report/REPORT.md's list (report/REPORT.template.md's text).

The report numbers its references in order of first citation. Every reference the generated part
cites is first cited in the hand-written text before the results markers (section 6), so the
generated text never changes which citation comes first; tests/test_report_structure.py checks both
the order and that these entries are the report's own. A standalone results file (the demo) lists
the ones it cites under the same numbers.
"""
from __future__ import annotations

from typing import Dict, Tuple

# key: (number in report/REPORT.md, the entry as its reference list gives it)
REFERENCES: Dict[str, Tuple[int, str]] = {
    "efron": (14, "B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993."),
    "mcnemar": (15, "Q. McNemar. Note on the Sampling Error of the Difference Between Correlated Proportions or "
                    "Percentages. Psychometrika 12(2):153–157, 1947."),
    "dietterich": (16, "T. G. Dietterich. Approximate Statistical Tests for Comparing Supervised Classification "
                       "Learning Algorithms. Neural Computation 10(7):1895–1923, 1998."),
    "piaggio": (17, "G. Piaggio, D. R. Elbourne, S. J. Pocock, et al. Reporting of Noninferiority and Equivalence "
                    "Randomized Trials: Extension of the CONSORT 2010 Statement. JAMA 308(24):2594–2604, 2012."),
}


def cite(key: str) -> str:
    """``[12]``: the citation of a reference in the report's numbering."""
    return f"[{REFERENCES[key][0]}]"


def cited_list(text: str) -> list:
    """The entries ``text`` cites, in the report's numbering, as ``["12. B. Efron ...", ...]``."""
    return [f"{n}. {entry}" for n, entry in sorted(REFERENCES.values()) if f"[{n}]" in text]
