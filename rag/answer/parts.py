"""Questions of several questions: "需要提前多久通知？停水时间长了又该怎么办？" asks two things, and one
sentence rarely answers both. Each part's best sentence of the answer's own document joins the
evidence, so the answer holds every part instead of the one the whole question scored best.
"""

from __future__ import annotations

from rag.answer.score import AnswerParams, Scored, score_sentences
from rag.core.types import Hit
from rag.query.question import Question


def with_parts(
    q: Question, group: list[Scored], hits: list[Hit], idf: dict[str, float], p: AnswerParams, floor: float
) -> list[Scored]:
    """`group` plus, for each part of `q`, its best sentence (scored ≥ `floor`) from the passages of
    the document `group` answers from; each passage's sentences in reading order."""
    if not q.parts or not group:
        return group
    doc = group[0].hit.chunk.doc_id
    same = [h for h in hits if h.chunk.doc_id == doc]
    have = {(s.hit.chunk.id, s.position) for s in group}
    out = list(group)
    for part in q.parts:
        best = next((s for s in score_sentences(part, same, idf, p) if s.coverage > 0), None)
        if best is None or best.score < floor or (best.hit.chunk.id, best.position) in have:
            continue
        have.add((best.hit.chunk.id, best.position))
        out.append(best)
    if len(out) == len(group):
        return group
    first: dict[str, int] = {}
    for s in out:
        first.setdefault(s.hit.chunk.id, len(first))
    return sorted(out, key=lambda s: (first[s.hit.chunk.id], s.position))
