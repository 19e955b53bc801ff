"""Scope from the question: which districts it names, and which of those the index lacks.

Known districts come from the index. Unknown ones are found with jieba's place-name tags plus
the administrative suffix (…区/县/市), so "浦东新区" or "徐汇区" is noticed and refused rather than
answered from another district's plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.core.text import place_stem

_PLACE_FLAGS = {"ns", "nr", "nrt", "nz"}
_LEVEL = {"区": 0, "县": 0, "市": 1}  # 区/县 is more specific than 市


@dataclass(frozen=True)
class Scope:
    districts: tuple[str, ...]  # named districts the index holds
    unknown: tuple[str, ...]  # named districts the index does not hold


def _places(question: str) -> list[str]:
    import jieba.posseg as pseg

    words = [(w, f) for w, f in pseg.lcut(question)]
    out: list[str] = []
    for i, (w, f) in enumerate(words):
        if len(w) >= 3 and w[-1] in "区县市" and f in _PLACE_FLAGS:
            out.append(w)
        elif f in _PLACE_FLAGS and len(w) >= 2 and i + 1 < len(words) and words[i + 1][0] in ("区", "县", "新区"):
            out.append(w + words[i + 1][0])
    return out


def detect_scope(question: str, known: list[str]) -> Scope:
    """Districts named in the question, split into known (in the index) and unknown."""
    q = re.sub(r"\s+", "", question)
    found: list[str] = []
    for d in known:
        stem = place_stem(d)
        if d in q or (stem != d and stem in q):
            found.append(d)
    unknown: list[str] = []
    for p in _places(q):
        if p in known or any(p in d or place_stem(d) == place_stem(p) for d in known):
            continue
        if any(p in f for f in found):
            continue
        unknown.append(p)
    # The most specific level wins: "上海市金山区" is about 金山区, not every 上海市 document.
    named = found + unknown
    if named:
        finest = min(_LEVEL.get(n[-1], 0) for n in named)
        found = [d for d in found if _LEVEL.get(d[-1], 0) == finest]
        unknown = [u for u in unknown if _LEVEL.get(u[-1], 0) == finest]
    return Scope(tuple(dict.fromkeys(found)), tuple(dict.fromkeys(unknown)))
