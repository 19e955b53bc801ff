"""Hybrid retrieval: BM25 and dense (Chroma) candidates fused by weighted reciprocal rank,
restricted by metadata to the districts the question names.
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
        qv = self.index.embedder.embed_query(query)
        dense = self.index.vectors.search(qv, n, districts)
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, float]] = {}
        for r, (row, _score) in enumerate(bm25):
            fused[row] = fused.get(row, 0.0) + s.bm25_weight / (s.rrf_k + r + 1)
            ranks.setdefault(row, {})["bm25"] = r
        for r, (cid, sim) in enumerate(dense):
            found = self.index.row_of.get(cid)
            if found is None:  # a vector without a chunk row: a stale server collection
                continue
            row = found
            fused[row] = fused.get(row, 0.0) + s.dense_weight / (s.rrf_k + r + 1)
            ranks.setdefault(row, {})["dense"] = r
            ranks[row]["dense_sim"] = sim
        order = sorted(fused, key=lambda i: -fused[i])[:k]
        top = fused[order[0]] if order else 1.0
        return [Hit(self.index.chunks[i], fused[i] / top, ranks.get(i, {})) for i in order]
