"""Rerankers: an optional semantic judge of candidate sentences, after the lexical scorer.

The lexical scorer (answer.py) cannot tell "头一道关口" from "第一道防线"; a cross-encoder can.
None ships inside a PyPI package, so the default is "none" and a deployment brings its own
model by name or local path (bge-reranker-base, bge-reranker-v2-m3 …):

    RAG_RERANKER=cross-encoder RAG_RERANK_MODEL=/models/bge-reranker-base rag ask …

Scores are expected in [0, 1] (sentence-transformers applies a sigmoid to one-label models).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .errors import EmbedderError, InputError
from .settings import Settings

RERANKERS = ("none", "cross-encoder")


class Reranker(Protocol):
    """How well each passage answers the question, each in [0, 1]."""

    name: str

    def score(self, question: str, passages: list[str]) -> np.ndarray: ...


class CrossEncoderReranker:
    name = "cross-encoder"

    def __init__(self, model: str, max_length: int = 256) -> None:
        try:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(model, device="cpu", max_length=max_length)
        except Exception as e:  # a missing path, a hub name without network, a broken checkpoint
            raise EmbedderError(
                f"无法加载重排序模型 {model!r} (cannot load the cross-encoder {model!r}: {e}); "
                "请给出本地模型目录 (give a local model folder)"
            ) from e

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        out = self._model.predict([(question, p) for p in passages], convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(passages))


def make_reranker(settings: Settings) -> Reranker | None:
    """The reranker named by settings, or None for "none" (the default)."""
    name = settings.reranker
    if name == "none":
        return None
    if name == "cross-encoder":
        if not settings.rerank_model:
            raise InputError(
                "重排序需要模型路径：设置 RAG_RERANK_MODEL (the cross-encoder needs a model: set RAG_RERANK_MODEL)"
            )
        return CrossEncoderReranker(settings.rerank_model)
    raise InputError(f"未知的重排序后端 {name!r} (unknown reranker {name!r}; valid: {', '.join(RERANKERS)})")
