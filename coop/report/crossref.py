"""Checks a rendering of the report can be read by: every reference resolves, no random number reads as
an accuracy.

    dangling(text)               # ["第 7.9 节", "图 7.3", ...]: references with no heading or caption here
    unlabelled_random(text)      # generated subsections that show random-weight numbers without saying so

References are what the text points to: ``第 N 节`` / ``第 N.M 节`` (also lists and ranges, ``第 3.2、3.3 节``,
``第 2–6 节``), ``N.M 节``, ``§N.M``, ``附录 A``, ``图 N.M``, ``表 N.M``. A section resolves to a heading
(``## 7. …``, ``### 7.9 …``, ``## 附录 A …``), a figure or table to a caption line (``图 7.1：…``,
``表 C.1（…）：…``). tests/test_report_states.py runs both on the report in every state it can be in.
"""
from __future__ import annotations

import re
from typing import List, Set

_SECTION_LIST = re.compile(r"第\s*((?:\d+(?:\.\d+)?)(?:\s*[、，和与及–-]\s*\d+(?:\.\d+)?)*)\s*节")
_BARE = re.compile(r"(?<![第\d.、–-])(?<!第 )(\d+\.\d+)\s*节")
_SIGN = re.compile(r"§\s*(\d+(?:\.\d+)?)")
_APPENDIX = re.compile(r"附录\s*([A-Z])")
# "图 7.1", not "测试图 5.5 min" (a count of test images, then a quantity with its unit)
_FIGTAB = re.compile(r"(?<!测试)(图|表)\s*(\d+\.\d+)(?!\d|\s*(?:min|ms|s\b|%|MiB|GB|倍|个|张))")
_CAPTION = re.compile(r"^(图|表)\s*(\d+\.\d+)(?:（[^）]*）)?：", re.M)
_HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", re.M)
_APPENDIX_HEADING = re.compile(r"^#{2,3}\s+附录\s*([A-Z])", re.M)


def _strip_code(text: str) -> str:
    """Without fenced code blocks, inline code and HTML comments (no references live there)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _expand(spec: str) -> List[str]:
    """"3.2、3.3" -> ["3.2", "3.3"]; "2–6" -> ["2", ..., "6"]; "7.9 和 7.10" -> both."""
    out: List[str] = []
    for part in re.split(r"\s*[、，和与及]\s*", spec.strip()):
        m = re.fullmatch(r"(\d+)\s*[–-]\s*(\d+)", part)
        if m:
            out += [str(i) for i in range(int(m.group(1)), int(m.group(2)) + 1)]
        elif part:
            out += [p for p in re.split(r"\s*[–-]\s*", part) if p]
    return out


def targets(text: str) -> Set[str]:
    """Everything a reference may point to in ``text``: section numbers, "附录 X", "图 N.M", "表 N.M"."""
    found = set(_HEADING.findall(text)) | {f"附录 {a}" for a in _APPENDIX_HEADING.findall(text)}
    return found | {f"{kind} {n}" for kind, n in _CAPTION.findall(text)}


def references(text: str) -> List[str]:
    """Every reference in ``text`` as the target it names (``"7.9"``, ``"附录 B"``, ``"图 7.1"``)."""
    body = _strip_code(text)
    refs: List[str] = []
    for m in _SECTION_LIST.finditer(body):
        refs += _expand(m.group(1))
    refs += _BARE.findall(body) + _SIGN.findall(body)
    refs += [f"附录 {a}" for a in _APPENDIX.findall(body)]
    refs += [f"{kind} {n}" for kind, n in _FIGTAB.findall(body)]
    return refs


def dangling(text: str) -> List[str]:
    """The references of ``text`` that no heading or caption of ``text`` answers, in order, once each."""
    have, out = targets(text), []
    for ref in references(text):
        if ref not in have and ref not in out:
            out.append(ref)
    return out


_ACCURACY_LIKE = re.compile(r"(?<![\d.])\d{1,3}\.\d{2}(?![\d])|\d%")
RANDOM_WORDS = ("随机权重", "RANDOM WEIGHTS", "不是准确率")


def unlabelled_random(generated: str) -> List[str]:
    """For a rendering of random-weight records: the headings of the generated subsections (### …) that
    show two-decimal numbers or percentages without saying, in the subsection, that they come from
    random weights -- plus ``"(start)"`` when the part does not open with the banner."""
    out = [] if any(w in generated.strip().split("\n", 1)[0] for w in RANDOM_WORDS) else ["(start)"]
    for chunk in re.split(r"^(?=### )", generated, flags=re.M):
        head = chunk.split("\n", 1)[0]
        if head.startswith("### ") and _ACCURACY_LIKE.search(_strip_code(chunk)) and not any(w in chunk for w in RANDOM_WORDS):
            out.append(head)
    return out
