"""Citations and the machine-readable answer object (the `rag ask --json` contract)."""

from __future__ import annotations

from typing import Any

from rag.core.types import Answer, Chunk, Citation, Hit


def _chunk_fields(c: Chunk) -> dict[str, Any]:
    return {
        "doc_id": c.doc_id,
        "source": c.source,
        "title": c.title,
        "district": c.district,
        "section": c.section,
        "text": c.text,
    }


def citation_dict(c: Citation) -> dict[str, Any]:
    out = {"n": c.n, **_chunk_fields(c.chunk), "quote": c.quote, "score": round(c.score, 4)}
    if c.version is not None:  # additive keys, only for documents that come in versions
        v = c.version
        out.update(
            {
                "version_date": v.date or None,
                "version_label": v.label or None,
                "current": v.current,
                "superseded_by": v.superseded_by or None,
                "older_text": v.older_text,
            }
        )
    return out


def hit_dict(h: Hit) -> dict[str, Any]:
    return {**_chunk_fields(h.chunk), "score": round(h.score, 4)}


def answer_dict(a: Answer) -> dict[str, Any]:
    """The stable JSON object: question, answer, abstained, citations, retrieved, timings_ms
    and answer_span (plus optional extra keys such as mode / fallback_reason / rewritten_question)."""
    out: dict[str, Any] = {
        "question": a.question,
        "answer": a.answer,
        "abstained": a.abstained,
        "citations": [citation_dict(c) for c in a.citations],
        "retrieved": [hit_dict(h) for h in a.retrieved[:10]],
        "timings_ms": {k: round(v, 2) for k, v in a.timings_ms.items()},
    }
    out.update(a.extra)
    out.setdefault("answer_span", None)  # the shortest text that answers, when there is one
    return out
