"""A topic only other places regulate: "北京市对蚕种生产经营许可证有什么规定" when only 重庆 has a
蚕种 regulation. Such a question is refused, naming where the topic is found, rather than
answered with the nearest 北京 passage on 许可证.

A question word, or two neighbouring words joined (自动+驾驶), counts as the topic when a document
title of some other place holds it (titles name topics; everyday words such as 房东 or 小广告
rarely stand in one), and no text of the searched places holds it or any of its synonyms. On the
tuning sets (regions dev and train, Shanghai train, qa) it flags only unanswerable questions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rag.core.text import CJK, normalise
from rag.core.types import Chunk
from rag.query.question import Question
from rag.query.titles import title_core


@dataclass(frozen=True)
class PlaceTexts:
    """Each place's documents as one normalised text, its normalised titles, and those titles as
    users name them (rag.query.titles.title_core: 饮用水水源保护条例)."""

    text: Mapping[str, str]
    titles: Mapping[str, frozenset[str]]
    cores: Mapping[str, frozenset[str]]

    @staticmethod
    def of(documents: Iterable[list[Chunk]], names: tuple[str, ...], unplaced: str = "") -> PlaceTexts:
        """`names`: the index's place names and aliases, cut from the titles' cores."""
        texts: dict[str, list[str]] = {}
        titles: dict[str, set[str]] = {}
        cores: dict[str, set[str]] = {}
        for chunks in documents:
            place = chunks[0].district or unplaced
            title = normalise(chunks[0].title)
            titles.setdefault(place, set()).add(title)
            cores.setdefault(place, set()).add(title_core(chunks[0].title, names))
            texts.setdefault(place, []).append(title + "".join(normalise(c.text) for c in chunks))
        return PlaceTexts(
            {p: "\n".join(t) for p, t in texts.items()},
            {p: frozenset(t) for p, t in titles.items()},
            {p: frozenset(t) for p, t in cores.items()},
        )

    def elsewhere(self, q: Question, searched: list[str]) -> list[tuple[str, list[str]]]:
        """The question's topic words that only other places' documents speak of, each with
        the places whose titles hold it."""
        out: list[tuple[str, list[str]]] = []
        for w in _topics(q):
            forms = (w, *q.alts.get(w, ()))
            if any(f in self.text.get(p, "") for f in forms for p in searched):
                continue
            others = [p for p, ts in self.titles.items() if p not in searched and any(w in t for t in ts)]
            if others:
                out.append((w, others))
        return out


def _topics(q: Question) -> list[str]:
    """The question's words of two characters or more, and each two neighbours of them joined:
    jieba cuts 自动驾驶 and 实验动物 in two, each half common, the whole a topic."""
    ws = q.words  # a cut place name stays a gap, so no pair spans it
    joined = [a + b for a, b in itertools.pairwise(ws) if len(a) >= 2 and len(b) >= 2 and all(map(CJK.match, a + b))]
    return list(dict.fromkeys([*(w for w in ws if len(w) >= 2), *joined]))
