"""What a document means by a term: its own definition article ("本办法所称归侨，是指回国定居的华侨",
"华侨房屋包括：…"), wherever it sits. A question that names the document ("重庆归侨侨眷权益保护办法
里，“归侨”是什么意思？") matches every article through the title's words, so the defining article
rarely ranks among the first hits; it is looked up in the first documents and scored beside them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.effective import first_per_document
from rag.core.text import normalise
from rag.core.types import Chunk, Hit
from rag.query.question import Question


def defining_hits(q: Question, hits: Sequence[Hit], by_doc: dict[str, list[Chunk]]) -> list[Hit]:
    """The chunks of the first hits' documents that define `q.defined` and are not among `hits`,
    each carrying its document's best hit's score and ranks."""
    term = q.defined
    if not term:
        return []
    t = re.escape(term)
    # Strict forms only: "所称X", or X opening a clause right before 是指/包括.
    rx = re.compile(
        rf"所称[“\"]?{t}|(?:^|[。；：，\s（(一二三四五六七八九十]|条)[“\"]?{t}[”\"]?[，,]?(?:是指|指的是|包括|主要包括)"
    )
    seen = {h.chunk.id for h in hits}
    out: list[Hit] = []
    for first in first_per_document(hits):
        for chunk in by_doc.get(first.chunk.doc_id, []):
            if chunk.id not in seen and rx.search(normalise(chunk.text)):
                out.append(Hit(chunk, first.score, first.ranks))
                seen.add(chunk.id)
    return out
