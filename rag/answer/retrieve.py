"""Hybrid retrieval: BM25 and dense (Chroma) candidates fused by weighted reciprocal rank,
restricted by metadata to the districts the question names.

Chunks still waiting for their vectors (Index.pending) are found by BM25 alone, ranked on the
same scale: fusion works on ranks, never on raw scores, and on the dense side a pending chunk
takes the place its BM25 rank gives it (the dense ranks of the others move down to make room).
With nothing pending this is plain hybrid retrieval; with everything pending, plain BM25.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.core.settings import Settings
from rag.core.types import Hit
from rag.index.generations import Index


class HybridRetriever:
    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.settings = settings

    def _mask(self, districts: Sequence[str] | None) -> np.ndarray | None:
        if not districts:
            return None
        masks = [self.index.district_masks[d] for d in districts if d in self.index.district_masks]
        if not masks:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.clip(np.sum(masks, axis=0), 0, 1)

    def retrieve(self, query: str, k: int | None = None, districts: Sequence[str] | None = None) -> list[Hit]:
        """Fused hits, best first. `districts` restricts both retrievers."""
        s = self.settings
        k = k or s.top_k
        n = s.candidates
        bm25 = self.index.bm25.search(query, n, self._mask(districts))
        dense = self._dense(query, n, districts, bm25)
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, float]] = {}
        for r, (row, score) in enumerate(bm25):
            fused[row] = fused.get(row, 0.0) + s.bm25_weight / (s.rrf_k + r + 1)
            ranks.setdefault(row, {}).update(bm25=r, bm25_score=score)  # the raw score: how well, not just which first
        for r, (row, sim) in enumerate(dense):
            fused[row] = fused.get(row, 0.0) + s.dense_weight / (s.rrf_k + r + 1)
            ranks.setdefault(row, {})["dense"] = r
            if sim is None:
                ranks[row]["dense_standin"] = 1.0  # no vector yet: its BM25 rank stood in
            else:
                ranks[row]["dense_sim"] = sim
        order = sorted(fused, key=lambda i: -fused[i])[:k]
        top = fused[order[0]] if order else 1.0
        return [Hit(self.index.chunks[i], fused[i] / top, ranks.get(i, {})) for i in order]

    def _dense(
        self, query: str, n: int, districts: Sequence[str] | None, bm25: list[tuple[int, float]]
    ) -> list[tuple[int, float | None]]:
        """The dense ranking as (row, cosine), with pending chunks placed at their BM25 rank
        (cosine None); the first n."""
        idx = self.index
        dense: list[tuple[int, float | None]] = []
        if idx.vectors.count() > 0:  # a generation published before any vector: BM25 only
            qv = idx.embedder.embed_query(query)
            for cid, sim in idx.vectors.search(qv, min(n, idx.vectors.count()), districts):
                row = idx.row_of.get(cid)
                if row is not None:  # a vector without a chunk row: a stale server collection
                    dense.append((row, sim))
        if idx.pending:
            for r, (row, _score) in enumerate(bm25):  # ascending r: each lands at position r
                if idx.chunks[row].id in idx.pending:
                    dense.insert(min(r, len(dense)), (row, None))
        return dense[:n]
