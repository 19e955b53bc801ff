"""The embedding cache: vectors keyed by content hash, so re-ingests and benchmarks never embed a text twice."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.core.types import content_hash
from rag.index.embed import Embedder

SQL_VARS = 900  # SQLite's default limit on bound parameters is 999


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
            for s in range(0, len(keys), SQL_VARS):
                part = list(keys[s : s + SQL_VARS])
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
