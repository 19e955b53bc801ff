"""Rerankers: an optional semantic judge of candidate sentences, after the lexical scorer.

The lexical scorer (answer.py) cannot tell "头一道关口" from "第一道防线"; a cross-encoder can.
None ships inside a PyPI package, so the default is "none" and a deployment brings its own
one-label model as a local folder (bge-reranker-base, bge-reranker-v2-m3 …):

    RAG_RERANKER=cross-encoder RAG_RERANK_MODEL=/models/bge-reranker-base rag ask …

Judgements are probabilities in [0, 1] (a sigmoid over the model's logit, whatever its config
says), so the blend below means the same whatever the model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from rag.answer.score import Scored
from rag.core.errors import EmbedderError, InputError
from rag.core.settings import Settings

RERANKERS = ("none", "cross-encoder")


class Reranker(Protocol):
    """How well each passage answers the question, each in [0, 1]."""

    name: str

    def score(self, question: str, passages: list[str]) -> np.ndarray: ...


class CrossEncoderReranker:
    name = "cross-encoder"

    def __init__(self, model: str, max_length: int = 256) -> None:
        try:
            import torch
            from sentence_transformers import CrossEncoder

            # A sigmoid whatever the model's config says: logits of ±10 would swamp the blend.
            self._model = CrossEncoder(
                model, device="cpu", max_length=max_length, local_files_only=True, activation_fn=torch.nn.Sigmoid()
            )
        except Exception as e:  # a missing folder, a hub name offline, a broken checkpoint
            raise EmbedderError(
                f"无法加载重排序模型 {model!r}，请给出本地模型目录 "
                f"(cannot load the cross-encoder {model!r}; give a local model folder: {e})"
            ) from e
        labels = getattr(self._model.config, "num_labels", 1)
        if labels != 1:
            raise EmbedderError(
                f"重排序模型须只输出一个相关度分数，{model!r} 输出 {labels} 个 "
                f"(a reranker must output one relevance score; {model!r} outputs {labels})"
            )

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, dtype=np.float32)
        try:
            out = self._model.predict([(question, p) for p in passages], convert_to_numpy=True, show_progress_bar=False)
        except Exception as e:  # out of memory, a tokenizer error: a backend failure, not a crash
            raise EmbedderError(f"重排序模型运行失败 (the cross-encoder failed: {e})") from e
        return np.clip(np.asarray(out, dtype=np.float32).reshape(len(passages)), 0.0, 1.0)


def blend(scored: list[Scored], judged: np.ndarray, weight: float) -> list[Scored]:
    """Move the judged head of `scored` by weight × (judgement − 0.5) and the unjudged rest down
    by weight / 2, as if judged off-topic: a sentence the reranker rejects must not lose to one
    it never saw. Refusal then follows the reranker through the same threshold."""
    head = [replace(s, score=s.score + weight * (float(j) - 0.5)) for s, j in zip(scored, judged, strict=False)]
    rest = [replace(s, score=s.score - weight / 2) for s in scored[len(head) :]]
    return sorted(head + rest, key=lambda s: -s.score)


def make_reranker(settings: Settings) -> Reranker | None:
    """The reranker named by settings, or None for "none" (the default)."""
    name = settings.reranker
    if name == "none":
        return None
    if name != "cross-encoder":
        raise InputError(f"未知的重排序后端 {name!r} (unknown reranker {name!r}; valid: {', '.join(RERANKERS)})")
    assert settings.rerank_model  # Settings validates that a cross-encoder has a model
    return CrossEncoderReranker(settings.rerank_model)
