"""Answers that are a document's structure: "规划确立了哪些基本原则？" is answered by the items under
the heading （二）基本原则, "确定了哪几个重大项目？" by the sub-headings of 四、重大项目 — lists no
single sentence holds, but the headings do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.answer.score import Scored
from rag.core.text import normalise, split_sentences
from rag.core.types import Chunk, Hit
from rag.ingest.chunk import strip_marker
from rag.query.question import Question

_LEAD = re.compile(r"^\s*[—－-]{1,2}\s*([^。；，\n]{2,40})[。；，]")
MIN_NAME = 3  # a heading name this short ("总则") is too generic to match a question on
MAX_ITEMS = 12
MAX_OTHER_TERMS = 1  # question terms allowed outside the heading's name and the document's title


def heading_name(heading: str) -> str:
    """ "（二）基本原则" → "基本原则"; "四、重大项目" → "重大项目"."""
    return normalise(strip_marker(heading)).rstrip("。：:")


def _children(prefix: tuple[str, ...], chunks: Sequence[Chunk]) -> list[tuple[str, Chunk]]:
    """Direct sub-headings of `prefix`, each with its first chunk, in reading order."""
    out: dict[str, Chunk] = {}
    for c in chunks:
        if len(c.section_path) > len(prefix) and c.section_path[: len(prefix)] == prefix:
            sub = c.section_path[len(prefix)]
            if heading_name(sub):  # "第五条" names nothing: articles are not a list of items
                out.setdefault(sub + "；", c)
    return list(out.items())


def _leads(prefix: tuple[str, ...], chunks: Sequence[Chunk]) -> list[tuple[str, Chunk]]:
    """Paragraph leads ("——坚持以人民为中心。…") of the chunks directly under `prefix`."""
    out: list[tuple[str, Chunk]] = []
    for c in chunks:
        if c.section_path == prefix:
            # The lead as written ("坚持以人民为中心。"), so that the quote is text of the passage.
            out += [(m.group(0).lstrip("—－- "), c) for m in (_LEAD.match(line) for line in c.text.splitlines()) if m]
    return out


def section_items(question: Question, hits: Iterable[Hit], by_doc: dict[str, list[Chunk]]) -> list[Scored] | None:
    """The items of the heading a list question names, as evidence, or None when it names none.

    Looks at the headings of the best hits; a heading matches when its name (without numbering)
    is in the question. Its items are its sub-headings, else the "——" leads of its paragraphs.
    """
    q = question.normalised
    if question.kind != "list":
        return None
    terms = question.terms
    for hit in hits:
        path = hit.chunk.section_path
        doc_title = normalise(hit.chunk.title)
        for depth in range(len(path)):
            name = heading_name(path[depth])
            if len(name) < MIN_NAME or name not in q:
                continue
            # "保障措施里对资金有哪些要求" names the heading but asks about 资金: not its item list.
            rest = [t for t in terms if t not in name and t not in doc_title]
            if len(rest) > MAX_OTHER_TERMS:
                continue
            prefix = path[: depth + 1]
            doc = by_doc.get(hit.chunk.doc_id, [])
            items = _children(prefix, doc) or _leads(prefix, doc)
            if len(items) < 2:
                continue
            return [
                # Positions two apart: the items are not neighbouring sentences of the passage.
                Scored(Hit(chunk, hit.score, hit.ranks), text, 2 * pos, hit.score, 1.0)
                for pos, (text, chunk) in enumerate(_closed(items[:MAX_ITEMS]))
            ]
    return None


# An article's inline items: "…包括：（一）界碑、界桩；（二）监测站点；（三）宣传牌。"
_ITEM = re.compile(r"^[（(][一二三四五六七八九十]+[）)]")
_OPENS = re.compile(r"[：:](?:[（(]一[）)]|$)")


def lead_in_items(group: list[Scored], by_doc: dict[str, list[Chunk]]) -> list[Scored]:
    """A chosen lead-in announces the items that follow it: inside its passage ("下列条件：（一）…；
    （二）…"), the item sentences after it; at the passage's end ("具体体现在："), the sub-headings
    that follow. The group plus those items; otherwise the group unchanged."""
    # The chosen sentence itself may be the lead, with a weaker sentence of the article after it.
    for lead in dict.fromkeys((group[0], group[-1])):
        if _OPENS.search(lead.sentence) and (inline := _inline_items(group, lead)):
            return in_reading_order([*group, *inline])
    last = group[-1]
    chunk = last.hit.chunk
    if not last.sentence.endswith(("：", ":")) or not chunk.text.rstrip().endswith(last.sentence):
        return group
    items = _children(chunk.section_path, by_doc.get(chunk.doc_id, []))
    return group + [
        Scored(Hit(c, last.hit.score, last.hit.ranks), text, pos, last.score, last.coverage)
        for pos, (text, c) in enumerate(_closed(items[:MAX_ITEMS]))
    ]


def in_reading_order(group: list[Scored]) -> list[Scored]:
    """`group` with each passage's sentences in reading order, in the slots its sentences hold (a
    lead, then its items; a part's sentence among the answer's)."""
    by_chunk: dict[str, list[Scored]] = {}
    for s in group:
        by_chunk.setdefault(s.hit.chunk.id, []).append(s)
    ordered = {c: iter(sorted(ss, key=lambda s: s.position)) for c, ss in by_chunk.items()}
    return [next(ordered[s.hit.chunk.id]) for s in group]


def _inline_items(group: list[Scored], last: Scored) -> list[Scored]:
    """The item sentences right after `last` in its passage, not already in the group."""
    have = {(s.hit.chunk.id, s.position) for s in group}
    sentences = split_sentences(last.hit.chunk.text, drop_blank=True)
    out: list[Scored] = []
    for pos in range(last.position + 1, min(len(sentences), last.position + 1 + MAX_ITEMS)):
        text = sentences[pos].strip()
        if not _ITEM.match(text):
            break
        if (last.hit.chunk.id, pos) not in have:
            out.append(Scored(last.hit, text, pos, last.score, last.coverage))
    return out


def _closed(items: list[tuple[str, Chunk]]) -> list[tuple[str, Chunk]]:
    """Sub-headings are joined with "；"; the list ends with "。"."""
    if not items or not items[-1][0].endswith("；"):
        return items
    last, chunk = items[-1]
    return [*items[:-1], (last[:-1] + "。", chunk)]
