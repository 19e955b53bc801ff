"""Questions of several questions: "需要提前多久通知？停水时间长了又该怎么办？" asks two things, and one
sentence rarely answers both. Each part's best sentence of the answer's own document joins the
evidence, so the answer holds every part instead of the one the whole question scored best.
"""

from __future__ import annotations

from rag.answer.score import Scored
from rag.answer.structure import in_reading_order


def with_parts(group: list[Scored], parts: list[list[Scored]], floor: float) -> list[Scored]:
    """`group` plus, for each part's scored sentences (`parts`, best first), its best one (scored
    ≥ `floor`) from the document `group` answers from, each passage in reading order."""
    if not parts or not group:
        return group
    doc = group[0].hit.chunk.doc_id
    have = {(s.hit.chunk.id, s.position) for s in group}
    out = list(group)
    for scored in parts:
        best = next((s for s in scored if s.hit.chunk.doc_id == doc and s.coverage > 0), None)
        if best is None or best.score < floor or (best.hit.chunk.id, best.position) in have:
            continue
        have.add((best.hit.chunk.id, best.position))
        out.append(best)
    return in_reading_order(out) if len(out) > len(group) else group
