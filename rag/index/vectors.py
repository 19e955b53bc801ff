"""Dense vectors in Chroma (chromadb's public client API), searched whole or within a district.

Chroma holds vectors and small metadata only; chunk texts live in the generation's
chunks.jsonl (storing documents in Chroma doubled its add time and disk through its full-text
index, and nothing reads them back).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from rag.core.errors import StoreError
from rag.core.types import Chunk
from rag.index.cache import CachedEmbedder
from rag.index.embed import Embedder

COLLECTION = "zhengce-chunks"
HNSW = {"hnsw:space": "cosine"}
# District-scoped dense search avoids Chroma's `where` search, which took 40-70 ms at 100k chunks
# (300 ms on synthetic data) against 1 ms unfiltered. A small scope (a district's plans) is
# searched exactly over its vectors, fetched once and kept; a large one (a city's regulations)
# by an unfiltered search for more neighbours, filtered here.
SUBSET_MAX_VECTORS = 5_000  # scopes up to this size: exact search over a cached copy
SUBSET_CACHE_VECTORS = 50_000  # ≈ 75 MB of float32 at dim 384, across cached scopes
OVERFETCH_MAX = 2_000  # the most neighbours asked for to fill k from a large scope


class VectorStore(Protocol):
    def add(self, chunks: Sequence[Chunk]) -> None: ...

    def delete_docs(self, doc_ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, k: int, districts: Sequence[str] | None = None) -> list[tuple[str, float]]: ...

    def count(self) -> int: ...


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
    """One Chroma collection through chromadb's public client API. Vectors are always passed in
    (the collection has no embedding function, so Chroma never reaches for its ONNX download).

    `create=False` opens an existing collection only and raises StoreError when it is missing,
    so a reader never silently gets a fresh empty collection (e.g. after a server reset).
    """

    def __init__(
        self, client: Any, embedder: CachedEmbedder | Embedder, collection: str = COLLECTION, create: bool = True
    ) -> None:
        self._embedder = embedder
        self.client = client  # the Chroma client it was opened on (a reader can reopen through it)
        self.name = collection
        self._subsets: OrderedDict[tuple[str, ...], tuple[list[str], np.ndarray] | int] = OrderedDict()
        self._subset_lock = threading.Lock()
        self._count: int | None = None
        self.scope_ids: dict[str, list[str]] | None = None  # chunk ids by district, if the caller knows them
        try:
            if create:
                self.collection = client.get_or_create_collection(collection, metadata=HNSW, embedding_function=None)
            else:
                self.collection = client.get_collection(collection, embedding_function=None)
        except Exception as e:  # chromadb raises many types
            if not create and _is_not_found(e):
                raise StoreError(
                    f"向量库中没有集合 {collection}，请重新运行 rag ingest "
                    f"(Chroma has no collection {collection!r}: the server's data was reset or removed; "
                    "re-run `rag ingest`)"
                ) from e
            raise store_error(f"无法打开向量库 (cannot open Chroma collection {collection!r}: {e})", e) from e

    def _batch(self) -> int:
        try:
            return max(1, min(int(self.client.get_max_batch_size()), 5000))
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
            raise store_error(f"写入向量库失败 (cannot write to Chroma collection {self.name!r}: {e})", e) from e

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
            raise store_error(f"向量检索失败 (vector search failed: {e})", e) from e

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


UNREACHABLE = (
    "无法连接向量库（Chroma 服务器没有响应），请稍后再试；服务器恢复后自动重连 "
    "(the vector store is unreachable: the Chroma server did not answer; retry later, "
    "the app reconnects by itself once it is back)"
)


def unreachable(e: BaseException) -> bool:
    """Whether `e` (or what caused it) is a failure to reach the Chroma server at all."""
    import httpx

    seen: BaseException | None = e
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def store_error(message: str, e: BaseException) -> StoreError:
    """A StoreError with `message`, led by a plain statement when the server is unreachable."""
    return StoreError(f"{UNREACHABLE} — {message}" if unreachable(e) else message)


def _is_not_found(e: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(e, NotFoundError) or "does not exist" in str(e) or "not found" in str(e).lower()
