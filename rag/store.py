"""Stores: vectors in Chroma (through langchain's VectorStore), BM25 (bm25s) beside it, and an
embedding cache keyed by content hash so re-ingests and benchmarks never embed a text twice.

Chroma holds vectors and small metadata only; chunk texts live in the generation's
chunks.jsonl (storing documents in Chroma doubled its add time and disk through its full-text
index, and nothing reads them back).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .embed import Embedder, LangchainEmbeddings
from .errors import StoreError
from .types import Chunk, content_hash

COLLECTION = "zhengce-chunks"
HNSW = {"hnsw:space": "cosine"}
# District-scoped dense search avoids Chroma's `where` search, which took 40-70 ms at 100k chunks
# (300 ms on synthetic data) against 1 ms unfiltered. A small scope (a district's plans) is
# searched exactly over its vectors, fetched once and kept; a large one (a city's regulations)
# by an unfiltered search for more neighbours, filtered here.
SUBSET_MAX_VECTORS = 5_000  # scopes up to this size: exact search over a cached copy
SUBSET_CACHE_VECTORS = 50_000  # ≈ 75 MB of float32 at dim 384, across cached scopes
OVERFETCH_MAX = 2_000  # the most neighbours asked for to fill k from a large scope
_SQL_VARS = 900  # SQLite's default limit on bound parameters is 999


class VectorStore(Protocol):
    def add(self, chunks: Sequence[Chunk]) -> None: ...

    def delete_docs(self, doc_ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, k: int, districts: Sequence[str] | None = None) -> list[tuple[str, float]]: ...

    def count(self) -> int: ...


class CachedEmbedder:
    """An Embedder whose document vectors are cached in SQLite by (model, text) hash."""

    def __init__(self, inner: Embedder, path: Path | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    def key(self, text: str) -> str:
        return content_hash(self.name, text, length=32)

    def lookup(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of the given keys (absent keys are left out)."""
        found: dict[str, np.ndarray] = {}
        if self._db is None:
            return found
        with self._lock:
            for s in range(0, len(keys), _SQL_VARS):
                part = list(keys[s : s + _SQL_VARS])
                q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
                for k, blob in self._db.execute(q, part):
                    found[k] = np.frombuffer(blob, dtype=np.float32)
        return found

    def store(self, keys: Sequence[str], vecs: np.ndarray) -> None:
        if self._db is None:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vecs, strict=True)],
            )
            self._db.commit()

    def embed_documents(
        self, texts: list[str], batch: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keys = [self.key(t) for t in texts]
        found = self.lookup(keys)
        todo: list[int] = []
        for i, k in enumerate(keys):
            v = found.get(k)
            if v is None:
                todo.append(i)
            else:
                out[i] = v
        if progress:
            progress(len(texts) - len(todo))
        for s in range(0, len(todo), batch):
            idx = todo[s : s + batch]
            vecs = self.inner.embed_documents([texts[i] for i in idx])
            out[idx] = vecs
            self.store([keys[i] for i in idx], vecs)  # committed per batch: a killed ingest keeps its work
            if progress:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def chunk_metadata(c: Chunk) -> dict[str, Any]:
    return {
        "doc_id": c.doc_id,
        "district": c.district or "",
        "title": c.title,
        "source": c.source,
        "section": json.dumps(list(c.section_path), ensure_ascii=False),
        "order": c.order,
    }


class ChromaStore:
    """Chroma through langchain's `Chroma` VectorStore; embeddings always passed explicitly
    (a collection without an embedding function would fall back to Chroma's ONNX download).

    `create=False` opens an existing collection only and raises StoreError when it is missing,
    so a reader never silently gets a fresh empty collection (e.g. after a server reset).
    """

    def __init__(
        self, client: Any, embedder: CachedEmbedder | Embedder, collection: str = COLLECTION, create: bool = True
    ) -> None:
        from langchain_chroma import Chroma

        self._embedder = embedder
        self._client = client
        self.name = collection
        self._subsets: OrderedDict[tuple[str, ...], tuple[list[str], np.ndarray] | int] = OrderedDict()
        self._subset_lock = threading.Lock()
        self._count: int | None = None
        self.scope_ids: dict[str, list[str]] | None = None  # chunk ids by district, if the caller knows them
        try:
            self._vs = Chroma(
                collection_name=collection,
                embedding_function=LangchainEmbeddings(embedder),
                client=client,
                collection_metadata=HNSW,
                create_collection_if_not_exists=create,
            )
        except Exception as e:  # chromadb raises many types
            if not create and _is_not_found(e):
                raise StoreError(
                    f"向量库中没有集合 {collection}，请重新运行 rag ingest "
                    f"(Chroma has no collection {collection!r}: the server's data was reset or removed; "
                    "re-run `rag ingest`)"
                ) from e
            raise StoreError(f"无法打开向量库 (cannot open Chroma collection {collection!r}: {e})") from e

    @property
    def collection(self) -> Any:
        return self._vs._collection

    def _batch(self) -> int:
        try:
            return max(1, min(int(self._client.get_max_batch_size()), 5000))
        except Exception:  # noqa: BLE001 - older servers lack the endpoint
            return 1000

    def add(self, chunks: Sequence[Chunk], progress: Callable[[int], None] | None = None) -> None:
        if not chunks:
            return
        texts = [c.embed_text for c in chunks]
        if isinstance(self._embedder, CachedEmbedder):
            vecs = self._embedder.embed_documents(texts, progress=progress)
        else:
            vecs = self._embedder.embed_documents(texts)
        self.add_vectors(chunks, vecs)

    def add_vectors(self, chunks: Sequence[Chunk], vecs: np.ndarray) -> None:
        """Vectors and metadata in batches Chroma accepts; upsert keeps re-adds idempotent."""
        self._changed()
        step = self._batch()
        try:
            for s in range(0, len(chunks), step):
                part = chunks[s : s + step]
                self.collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.ascontiguousarray(vecs[s : s + step], dtype=np.float32),
                    metadatas=[chunk_metadata(c) for c in part],
                )
        except Exception as e:
            raise StoreError(f"写入向量库失败 (cannot write to Chroma collection {self.name!r}: {e})") from e

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (to carry vectors into a new generation without re-embedding)."""
        out: dict[str, np.ndarray] = {}
        step = self._batch()
        for s in range(0, len(ids), step):
            got = self.collection.get(ids=list(ids[s : s + step]), include=["embeddings"])
            for i, v in zip(got["ids"], got["embeddings"], strict=True):
                out[i] = np.asarray(v, dtype=np.float32)
        return out

    def delete_docs(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            self.collection.delete(where={"doc_id": {"$in": list(doc_ids)}})
            self._changed()

    def search(self, vector: np.ndarray, k: int, districts: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first."""
        vector = np.asarray(vector, dtype=np.float32)
        try:
            if not districts:
                return self._query(vector, k)
            key = tuple(sorted(set(districts)))
            scope = self._scope(key)
            if isinstance(scope, tuple):
                return _top_k(scope, vector, k)
            hits = self._overfetch(vector, k, key, scope)
            return hits if hits is not None else self._query(vector, k, {"district": {"$in": list(key)}})
        except StoreError:
            raise
        except Exception as e:  # chromadb raises many types
            raise StoreError(f"向量检索失败 (vector search failed: {e})") from e

    def _query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        res = self.collection.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        # Cosine space: Chroma returns a distance; report similarity.
        return [(str(i), 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def _overfetch(self, vector: np.ndarray, k: int, key: tuple[str, ...], size: int) -> list[tuple[str, float]] | None:
        """The scope's best k from an unfiltered search for enough neighbours to expect them
        (k / the scope's share, doubled); None if they did not come (then Chroma filters)."""
        total = self.count()
        n = min(total, OVERFETCH_MAX, math.ceil(2 * k * total / max(size, 1)))
        res = self.collection.query(query_embeddings=[vector], n_results=n, include=["metadatas", "distances"])
        keep = set(key)
        hits = [
            (str(i), 1.0 - float(d))
            for i, d, m in zip(res["ids"][0], res["distances"][0], res["metadatas"][0], strict=True)
            if m and m.get("district") in keep
        ]
        return hits[:k] if len(hits) >= min(k, size) else None

    def _scope(self, key: tuple[str, ...]) -> tuple[list[str], np.ndarray] | int:
        """A small scope's ids and vectors, or a large scope's size. A generation's collection
        never changes after ingest (and writes clear this cache), so the copy never goes stale."""
        with self._subset_lock:
            if key in self._subsets:
                self._subsets.move_to_end(key)
                return self._subsets[key]
        if self.scope_ids is not None:  # known from the chunk table: no 30 ms metadata scan
            ids = [i for d in key for i in self.scope_ids.get(d, ())]
        else:
            ids = self.collection.get(where={"district": {"$in": list(key)}}, include=[])["ids"]
        value: tuple[list[str], np.ndarray] | int = len(ids)
        if len(ids) <= SUBSET_MAX_VECTORS:
            by_id = self.vectors(ids)
            ids = [i for i in ids if i in by_id]
            value = (ids, np.stack([by_id[i] for i in ids]) if ids else np.zeros((0, 1), dtype=np.float32))
        with self._subset_lock:
            self._subsets[key] = value
            held = [v for v in self._subsets.values() if isinstance(v, tuple)]
            while sum(len(v[0]) for v in held) > SUBSET_CACHE_VECTORS and len(held) > 1:
                oldest = next(k for k, v in self._subsets.items() if isinstance(v, tuple))
                del self._subsets[oldest]
                held = [v for v in self._subsets.values() if isinstance(v, tuple)]
        return value

    def count(self) -> int:
        if self._count is None:
            self._count = int(self.collection.count())
        return self._count

    def _changed(self) -> None:
        with self._subset_lock:
            self._subsets.clear()
            self._count = None


def _top_k(subset: tuple[list[str], np.ndarray], vector: np.ndarray, k: int) -> list[tuple[str, float]]:
    ids, vecs = subset
    if not ids:
        return []
    sims = vecs @ np.asarray(vector, dtype=np.float32)
    k = min(k, len(ids))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(ids[i], float(sims[i])) for i in top]


def _is_not_found(e: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(e, NotFoundError) or "does not exist" in str(e) or "not found" in str(e).lower()


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
