"""Stores: vectors in Chroma (through langchain's VectorStore), BM25 (bm25s) beside it, and an
embedding cache keyed by content hash so re-ingests and benchmarks never embed a text twice.

Chroma holds vectors and small metadata only; chunk texts live in the generation's
chunks.jsonl (storing documents in Chroma doubled its add time and disk through its full-text
index, and nothing reads them back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import StoreError


class BM25Store:
    """bm25s over the chunks' embed_text tokens, in the chunk table's order."""

    def __init__(self, retriever: Any, tokenizer: Callable[[str], list[str]]) -> None:
        self._r = retriever
        self._tok = tokenizer
        sc = retriever.scores
        # The score matrix as CSC arrays (one column per token): scoring a query is one bincount.
        self._data = np.asarray(sc["data"], dtype=np.float32)
        self._indices = np.asarray(sc["indices"])
        self._indptr = np.asarray(sc["indptr"])
        self.num_docs = int(sc["num_docs"])

    @staticmethod
    def build(texts: Sequence[str], tokenizer: Callable[[str], list[str]]) -> BM25Store:
        """bm25s' BM25 (Lucene variant, k1=1.5, b=0.75) with its score matrix computed here in
        numpy. bm25s' own `index` wants every document's token strings at once (≈ 45M str
        objects, several GB, at 100k chunks) and scores them in Python loops; here each text
        becomes an int32 array as it is tokenised and the matrix is built vectorised. The
        saved files are bm25s' format (BM25.load reads them); scores are equal to bm25s'."""
        import bm25s
        import scipy.sparse as sp

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import
        r = bm25s.BM25()
        vocab: dict[str, int] = {}
        n = len(texts)
        lens = np.empty(n, dtype=np.float32)
        nnz = np.zeros(n + 1, dtype=np.int64)
        cols: list[np.ndarray] = []
        tfs: list[np.ndarray] = []
        for i, text in enumerate(texts):
            ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokenizer(text) or ["∅"]), dtype=np.int32)
            lens[i] = len(ids)
            u, c = np.unique(ids, return_counts=True)
            cols.append(u)
            tfs.append(c.astype(np.float32))
            nnz[i + 1] = len(u)
        # Rows × tokens, CSR as built, then CSC (one column per token, rows sorted) in C.
        tf = np.concatenate(tfs) if tfs else np.zeros(0, dtype=np.float32)
        csr = sp.csr_matrix(
            (tf, np.concatenate(cols) if cols else tf.astype(np.int32), np.cumsum(nnz)), shape=(n, len(vocab))
        )
        del cols, tfs, tf
        # Lucene BM25: idf(t) · tf / (tf + k1·(1 − b + b·len/avglen)), computed in place in float32.
        avg = float(lens.mean()) if n else 1.0
        norm = (r.k1 * ((1 - r.b) + r.b * lens / avg)).astype(np.float32)
        csr.data /= csr.data + np.repeat(norm, np.diff(csr.indptr))
        csc = csr.tocsc()
        del csr
        df = np.diff(csc.indptr).astype(np.float64)
        csc.data *= np.repeat(np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32), np.diff(csc.indptr))
        data, row, indptr = csc.data, csc.indices.astype(np.int32), csc.indptr.astype(np.int64)
        r.scores = {"data": data, "indices": row, "indptr": indptr, "num_docs": n}
        r.vocab_dict = vocab
        r.nonoccurrence_array = None  # only BM25L/BM25+ have one
        return BM25Store(r, tokenizer)

    def save(self, path: Path) -> None:
        self._r.save(str(path))

    @staticmethod
    def load(path: Path, tokenizer: Callable[[str], list[str]]) -> BM25Store:
        import bm25s

        try:
            return BM25Store(bm25s.BM25.load(str(path)), tokenizer)
        except Exception as e:
            raise StoreError(f"无法读取 BM25 索引 (cannot load BM25 index at {path}: {e})") from e

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row; a repeated query token counts again, as in bm25s."""
        vocab = self._r.vocab_dict
        ids = [vocab[t] for t in self._tok(query) if t in vocab]
        if not ids:
            return np.zeros(self.num_docs, dtype=np.float32)
        # np.bincount over the query's postings: ~10× faster than bm25s' np.add.at at 100k rows.
        starts, ends = self._indptr[ids], self._indptr[np.asarray(ids) + 1]
        rows = np.concatenate([self._indices[a:b] for a, b in zip(starts, ends, strict=True)])
        vals = np.concatenate([self._data[a:b] for a, b in zip(starts, ends, strict=True)])
        s = np.bincount(rows, weights=vals, minlength=self.num_docs).astype(np.float32)
        return s * mask if mask is not None else s

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        s = self.scores(query, mask)
        k = min(k, len(s))
        if k <= 0:
            return []
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top])]
        return [(int(i), float(s[i])) for i in top if s[i] > 0]


def bm25_idf(store: BM25Store) -> dict[str, float]:
    """Inverse document frequency of every indexed token (from the bm25s score matrix)."""
    r = store._r
    indptr = np.asarray(r.scores["indptr"])
    n = float(r.scores["num_docs"])
    df = np.diff(indptr).astype(np.float64)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    vocab: dict[str, int] = r.vocab_dict
    # Vectorised (a dict over ~10^6 tokens at 100k chunks); bm25s' vocabulary may hold a token
    # past the matrix's last column (its empty-string token), which has no idf.
    ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
    ok = ids < len(idf)
    toks = [t for t, keep in zip(vocab.keys(), ok.tolist(), strict=True) if keep]
    return dict(zip(toks, idf[ids[ok]].tolist(), strict=True))
