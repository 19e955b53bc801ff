"""The whole pipeline as a langchain retriever: scope, hybrid search and refusal, returning the
cited passages as `Document`s with their citation metadata, for chains and agents built on langchain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from rag.answer.cite import citation_dict, hit_dict


class PipelineRetriever(BaseRetriever):
    """`invoke(question)` → the passages the extractive answer cites, best first, each with
    metadata n, doc_id, source, title, district, section, quote and score. A question the
    documents do not answer returns no passages (or, with `include_refused`, the nearest ones
    with n = None), so a chain built on it cannot answer from unrelated text."""

    pipeline: Any  # rag.answer.pipeline.Pipeline (Any: pydantic cannot validate it)
    district: str | None = None
    include_refused: bool = False

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        answer = self.pipeline.ask_extractive(query, self.district)
        if answer.abstained:
            refused = answer.retrieved if self.include_refused else []
            rows = [(h.chunk.id, {**hit_dict(h), "n": None, "quote": ""}) for h in refused]
        else:
            rows = [(c.chunk.id, citation_dict(c)) for c in answer.citations]
        return [LCDocument(page_content=r.pop("text"), id=cid, metadata=r) for cid, r in rows]
