"""Stores: vectors in Chroma (through langchain's VectorStore), BM25 (bm25s) beside it, and an
embedding cache keyed by content hash so re-ingests and benchmarks never embed a text twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .embed import Embedder, LangchainEmbeddings
from .errors import StoreError
from .types import Chunk, content_hash

COLLECTION = "zhengce-chunks"


class VectorStore(Protocol):
    def add(self, chunks: Sequence[Chunk]) -> None: ...

    def delete_docs(self, doc_ids: Sequence[str]) -> None: ...

    def search(
        self, vector: np.ndarray, k: int, districts: Sequence[str] | None = None
    ) -> list[tuple[str, float]]: ...

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
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    def _key(self, text: str) -> str:
        return content_hash(self.name, text, length=32)

    def embed_documents(self, texts: list[str], batch: int = 32, progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        keys = [self._key(t) for t in texts]
        if self._db is not None:
            with self._lock:
                for i, k in enumerate(keys):
                    row = self._db.execute("SELECT vec FROM emb WHERE key=?", (k,)).fetchone()
                    if row is None:
                        todo.append(i)
                    else:
                        out[i] = np.frombuffer(row[0], dtype=np.float32)
        else:
            todo = list(range(len(texts)))
        if progress:
            progress(len(texts) - len(todo))
        for s in range(0, len(todo), batch):
            idx = todo[s : s + batch]
            vecs = self.inner.embed_documents([texts[i] for i in idx])
            out[idx] = vecs
            if self._db is not None:
                with self._lock:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                        [(keys[i], vecs[j].astype(np.float32).tobytes()) for j, i in enumerate(idx)],
                    )
                    self._db.commit()
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
    (a collection without an embedding function would fall back to Chroma's ONNX download)."""

    def __init__(self, client: Any, embedder: CachedEmbedder | Embedder, collection: str = COLLECTION) -> None:
        from langchain_chroma import Chroma

        self._embedder = embedder
        try:
            self._vs = Chroma(
                collection_name=collection,
                embedding_function=LangchainEmbeddings(embedder),
                client=client,
                collection_metadata={"hnsw:space": "cosine"},
            )
        except Exception as e:  # noqa: BLE001 - chromadb raises many types
            raise StoreError(f"无法打开向量库 (cannot open Chroma collection {collection!r}: {e})") from e

    @property
    def collection(self) -> Any:
        return self._vs._collection

    def add(self, chunks: Sequence[Chunk], progress: Callable[[int], None] | None = None) -> None:
        if not chunks:
            return
        texts = [c.embed_text for c in chunks]
        if isinstance(self._embedder, CachedEmbedder):
            vecs = self._embedder.embed_documents(texts, progress=progress)
        else:
            vecs = self._embedder.embed_documents(texts)
        # Chroma caps batch size; upsert keeps re-adds idempotent.
        step = 2000
        for s in range(0, len(chunks), step):
            part = chunks[s : s + step]
            self.collection.upsert(
                ids=[c.id for c in part],
                embeddings=vecs[s : s + step],
                documents=[c.text for c in part],
                metadatas=[chunk_metadata(c) for c in part],
            )

    def delete_docs(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            self.collection.delete(where={"doc_id": {"$in": list(doc_ids)}})

    def search(
        self, vector: np.ndarray, k: int, districts: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        flt = {"district": {"$in": list(districts)}} if districts else None
        try:
            pairs = self._vs.similarity_search_by_vector_with_relevance_scores(
                embedding=vector.tolist(), k=k, filter=flt
            )
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"向量检索失败 (vector search failed: {e})") from e
        # Cosine space: the langchain score is a distance; report similarity.
        return [(str(doc.id), 1.0 - float(dist)) for doc, dist in pairs]

    def count(self) -> int:
        return int(self.collection.count())


class BM25Store:
    """bm25s over the chunks' embed_text tokens, in the chunk table's order."""

    def __init__(self, retriever: Any, tokenizer: Callable[[str], list[str]]) -> None:
        self._r = retriever
        self._tok = tokenizer

    @staticmethod
    def build(texts: Sequence[str], tokenizer: Callable[[str], list[str]]) -> BM25Store:
        import bm25s

        r = bm25s.BM25()
        r.index([tokenizer(t) or ["∅"] for t in texts], show_progress=False)
        return BM25Store(r, tokenizer)

    def save(self, path: Path) -> None:
        self._r.save(str(path))

    @staticmethod
    def load(path: Path, tokenizer: Callable[[str], list[str]]) -> BM25Store:
        import bm25s

        try:
            return BM25Store(bm25s.BM25.load(str(path)), tokenizer)
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"无法读取 BM25 索引 (cannot load BM25 index at {path}: {e})") from e

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        tokens = [t for t in self._tok(query) if t in self._r.vocab_dict]
        n = int(self._r.scores["num_docs"])
        if not tokens:
            return np.zeros(n, dtype=np.float32)
        s = np.asarray(self._r.get_scores(tokens), dtype=np.float32)
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
    inv = {i: t for t, i in r.vocab_dict.items()}
    return {inv[i]: float(idf[i]) for i in range(len(idf)) if i in inv}
